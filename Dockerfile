# One image for the API and the workers of the distributed deployment (docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1

WORKDIR /app
# The CPU build of torch first: an unpinned torch would pull several GB of CUDA packages.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY pyproject.toml README.md ./
COPY retrieval ./retrieval
COPY ingest ./ingest
COPY api ./api
COPY workers ./workers
COPY migrations ./migrations
RUN pip install .

RUN useradd --create-home semsearch
USER semsearch
EXPOSE 8000
CMD ["semsearch", "serve", "--host", "0.0.0.0", "--port", "8000"]
