"""docker-compose.yml cannot run here (no Docker engine): read it against the settings instead."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from retrieval.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_every_semsearch_variable_is_a_setting() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    for file in ("docker-compose.yml", "Dockerfile"):
        used = set(re.findall(r"SEMSEARCH_([A-Z_]+)", (ROOT / file).read_text()))
        assert used <= fields, f"{file} sets {used - fields}, which Settings does not read"


def test_the_distributed_deployment_is_complete_and_consistent() -> None:
    services = compose()["services"]
    assert set(services) == {"qdrant", "redis", "postgres", "api", "worker"}
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no health check"

    for name in ("api", "worker"):
        environment = services[name]["environment"]
        settings = Settings(
            **{key.removeprefix("SEMSEARCH_").lower(): value for key, value in environment.items()}
        )
        # The refusal of `semsearch serve`/`worker` must not fire for this deployment.
        settings.ensure_separate_workers_allowed()
        assert settings.database_url is not None
        assert settings.database_url.startswith("postgresql+psycopg://")
        assert "@postgres:5432/" in settings.database_url
        assert settings.qdrant_url == "http://qdrant:6333"
        assert settings.broker_url == "redis://redis:6379/0"

    postgres = services["postgres"]["environment"]
    database_url = services["api"]["environment"]["SEMSEARCH_DATABASE_URL"]
    assert database_url.endswith(
        f"{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}@postgres:5432/"
        f"{postgres['POSTGRES_DB']}"
    )
    assert services["worker"]["command"][:2] == ["semsearch", "worker"]
    assert services["api"]["command"][:2] == ["semsearch", "serve"]
