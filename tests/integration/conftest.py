"""A real app on a temporary data folder, real models, driven over HTTP (TestClient)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from facesocial.api.app import create_app
from facesocial.container import Container
from facesocial.settings import Settings
from facesocial.store.tables import (
    AiOperationLog,
    DetectionRequest,
    FaceData,
    FaceGroupMember,
    RecognitionSession,
    User,
)


@dataclass
class Api:
    client: TestClient
    container: Container
    key: str

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"X-API-Key": key or self.key}

    def post(
        self,
        path: str,
        *,
        files: dict | None = None,
        data: dict | None = None,
        json: dict | None = None,
        key: str | None = None,
    ) -> object:
        return self.client.post(path, files=files, data=data, json=json, headers=self.headers(key))

    def counts(self) -> dict[str, int]:
        """What is stored: rows per table and vectors in the index."""
        tables = {
            "users": User,
            "faces": FaceData,
            "members": FaceGroupMember,
            "sessions": RecognitionSession,
            "detections": DetectionRequest,
            "audit": AiOperationLog,
        }
        with self.container.database.session() as session:
            out = {
                name: int(session.scalar(select(func.count()).select_from(t)) or 0)
                for name, t in tables.items()
            }
        out["vectors"] = self.container.index.count(self.container.recognition.collection)
        return out


@pytest.fixture(scope="package")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data_dir: Path = tmp_path_factory.mktemp("facesocial")
    container = Container(Settings(data_dir=data_dir))
    container.prepare()
    key = container.keys.create("tests").secret
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        yield Api(client, container, key)
