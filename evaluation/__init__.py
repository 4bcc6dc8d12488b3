"""The evaluation harness: BEIR retrieval sets (beir.py) and sentence-pair sets (pairs.py)."""
