"""A typed httpx client of the HTTP API; the CLI's remote commands use it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self

import httpx

from api.schemas import (
    CalibrateRequest,
    CalibrationPublic,
    CollectionCreate,
    CollectionPublic,
    DocumentIn,
    IngestRequest,
    JobPublic,
    SearchRequest,
    SearchResponse,
)


class ApiError(Exception):
    """The API answered with an error status; `detail` is its message."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(f"HTTP {status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail


class SemsearchClient:
    """Mirrors the routes of api/routes/ one method each."""

    def __init__(self, *, base_url: str, timeout_s: float = 60.0) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def create_collection(self, body: CollectionCreate) -> CollectionPublic:
        return CollectionPublic.model_validate(
            self._send("POST", "/collections", body.model_dump(mode="json"))
        )

    def get_collection(self, name: str) -> CollectionPublic:
        return CollectionPublic.model_validate(self._send("GET", f"/collections/{name}"))

    def ingest(self, collection: str, documents: Sequence[DocumentIn]) -> JobPublic:
        body = IngestRequest(documents=list(documents)).model_dump(mode="json")
        return JobPublic.model_validate(
            self._send("POST", f"/collections/{collection}/documents", body)
        )

    def get_job(self, job_id: str) -> JobPublic:
        return JobPublic.model_validate(self._send("GET", f"/jobs/{job_id}"))

    def search(
        self,
        collection: str,
        query: str,
        *,
        top_k: int | None = None,
        threshold: float | None = None,
        metadata_filter: Mapping[str, str | int | float | bool] | None = None,
    ) -> SearchResponse:
        body = SearchRequest(
            query=query,
            top_k=top_k,
            threshold=threshold,
            filter=dict(metadata_filter) if metadata_filter else None,
        ).model_dump(mode="json", exclude_none=True)
        return SearchResponse.model_validate(
            self._send("POST", f"/collections/{collection}/search", body)
        )

    def calibrate(self, collection: str, body: CalibrateRequest) -> CalibrationPublic:
        return CalibrationPublic.model_validate(
            self._send(
                "POST",
                f"/collections/{collection}/calibrate",
                body.model_dump(mode="json", exclude_none=True),
            )
        )

    def calibration_png(self, collection: str) -> bytes:
        return self._request("GET", f"/collections/{collection}/calibration.png").content

    def _send(self, method: str, path: str, body: Any = None) -> Any:
        response = self._request(method, path, body)
        return response.json() if response.content else None

    def _request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        """One call; ApiError for an error status or a service that cannot be reached."""
        try:
            response = self._http.request(method, path, json=body)
        except httpx.TransportError as exc:
            raise ApiError(
                503,
                f"cannot reach the semsearch service at {self._http.base_url} ({exc}); start it "
                "with `semsearch serve` or point --url / SEMSEARCH_URL at it",
            ) from exc
        if response.is_error:
            try:
                detail = str(response.json().get("detail", response.text))
            except ValueError:
                detail = response.text
            raise ApiError(response.status_code, detail)
        return response
