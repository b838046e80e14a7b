"""``/api/v1/jobs`` over HTTP: a tenant reads, lists and cancels only its own jobs; its secret.

The app is the jobs router behind the real authentication middleware and error envelope, around
a container with the built-in job kinds (no models are loaded). Jobs are diagnostics probes
created directly (``submit_probe``); no worker runs, so they stay pending until a test moves them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from facesocial.api import errors as api_errors
from facesocial.api.auth_middleware import AuthMiddleware
from facesocial.api.routers import jobs
from facesocial.container import Container
from facesocial.jobs import periodic
from facesocial.jobs.builtin import PROBE_FILE, ProbeRequest, builtin_kinds, submit_probe
from facesocial.jobs.callbacks import CallbackSigner
from facesocial.jobs.port import JobKind
from facesocial.settings import Settings


class ProbeContainer(Container):
    @cached_property
    def job_kinds(self) -> dict[str, JobKind]:
        return builtin_kinds(self.settings.resolved_spool_dir())


@dataclass
class Caller:
    key: str
    tenant: uuid.UUID
    key_id: uuid.UUID

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.key}


@dataclass
class Api:
    client: TestClient
    container: ProbeContainer
    alice: Caller
    bob: Caller

    def probe(self, caller: Caller, priority: int = 5) -> str:
        return submit_probe(
            self.container.database,
            self.container.job_store,
            self.container.jobs,
            self.container.settings.resolved_spool_dir(),
            ProbeRequest(1, 0.0),
            tenant_id=caller.tenant,
            api_key_id=caller.key_id,
            priority=priority,
        )


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data = tmp_path_factory.mktemp("jobs-api")
    settings = Settings(data_dir=data)
    settings.models.model_dir = data / "no-models"
    settings.rate_limits.enabled = False
    container = ProbeContainer(settings)
    container.prepare()
    app = FastAPI(redirect_slashes=False)
    app.state.container = container
    api_errors.install(app)
    app.include_router(jobs.router)
    app.add_middleware(AuthMiddleware, container=container)
    callers = []
    for name in ("alice", "bob"):
        issued = container.keys.create(name)
        callers.append(Caller(issued.secret, issued.id, issued.id))  # a key without owner is its tenant
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, container, *callers)
    container.close()


def _spool(api: Api, job_id: str) -> Path:
    return api.container.settings.resolved_spool_dir() / job_id


def test_get_shows_the_callers_own_job(api: Api) -> None:
    job = api.probe(api.alice, priority=9)
    response = api.client.get(f"/api/v1/jobs/{job}", headers=api.alice.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert {
        k: body["job"][k] for k in ("job_id", "kind", "status", "priority", "attempts", "max_attempts")
    } == {
        "job_id": job,
        "kind": "diagnostics.probe",
        "status": "pending",
        "priority": 9,
        "attempts": 0,
        "max_attempts": 3,
    }
    assert body["job"]["progress_percentage"] == 0.0 and body["job"]["error"] is None


@pytest.mark.parametrize("method", ["get", "delete"])
def test_another_tenants_job_is_not_found(api: Api, method: str) -> None:
    job = api.probe(api.alice)
    unknown = f"job_{uuid.uuid4().hex}"
    foreign = getattr(api.client, method)(f"/api/v1/jobs/{job}", headers=api.bob.headers)
    missing = getattr(api.client, method)(f"/api/v1/jobs/{unknown}", headers=api.bob.headers)
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()  # identical: nothing says that it exists
    assert foreign.json()["error"]["code"] == "JOB_NOT_FOUND"
    mine = api.client.get(f"/api/v1/jobs/{job}", headers=api.alice.headers).json()
    assert mine["job"]["status"] == "pending"  # bob's DELETE changed nothing


def test_list_holds_only_the_callers_jobs(api: Api) -> None:
    bobs = {api.probe(api.bob) for _ in range(3)}
    alices = {api.probe(api.alice)}
    listed = api.client.get("/api/v1/jobs?limit=1000", headers=api.bob.headers).json()
    assert {j["job_id"] for j in listed["jobs"]} >= bobs
    assert not {j["job_id"] for j in listed["jobs"]} & alices
    assert listed["total"] == len(listed["jobs"])
    page = api.client.get("/api/v1/jobs?limit=2&offset=1", headers=api.bob.headers).json()
    assert len(page["jobs"]) == 2 and page["total"] == listed["total"]
    assert [j["job_id"] for j in page["jobs"]] == [j["job_id"] for j in listed["jobs"][1:3]]
    bad = api.client.get("/api/v1/jobs?status=lost", headers=api.bob.headers)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "VALIDATION_ERROR"


def test_delete_cancels_a_pending_job_and_its_files(api: Api) -> None:
    job = api.probe(api.alice)
    assert (_spool(api, job) / PROBE_FILE).is_file()
    response = api.client.delete(f"/api/v1/jobs/{job}", headers=api.alice.headers)
    assert response.status_code == 200
    assert response.json()["job"]["status"] == "cancelled"
    assert response.json()["job"]["completed_at"] is not None
    assert not _spool(api, job).exists()  # the kind's on_end ran
    again = api.client.delete(f"/api/v1/jobs/{job}", headers=api.alice.headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "JOB_NOT_CANCELLABLE"
    listed = api.client.get("/api/v1/jobs?status=cancelled", headers=api.alice.headers).json()
    assert job in {j["job_id"] for j in listed["jobs"]}


def test_callback_secret_is_per_key(api: Api) -> None:
    alice = api.client.get("/api/v1/jobs/callback-secret", headers=api.alice.headers).json()
    bob = api.client.get("/api/v1/jobs/callback-secret", headers=api.bob.headers).json()
    assert alice["secret"] != bob["secret"]
    assert alice["signature_header"] == "X-FaceSocial-Signature"
    key_file = api.container.settings.data_dir / "secrets" / "callback.key"
    master = CallbackSigner(key_file.read_text().strip().encode())
    assert alice["secret"] == master.secret_for(api.alice.tenant, api.alice.key_id)


def test_jobs_need_credentials(api: Api) -> None:
    response = api.client.get("/api/v1/jobs")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "MISSING_API_KEY"


def test_scheduled_upkeep_on_the_embedded_profile(api: Api) -> None:
    """The periodic functions that beat (or the embedded loop) runs, on SQLite."""
    job = api.probe(api.alice)
    store = api.container.job_store
    assert store.claim(job, "a-worker-that-dies", 0.001, ["diagnostics.probe"]) is not None
    swept = periodic.sweep(api.container)
    assert job in swept["requeued"] and job in swept["dispatched"]
    assert store.view(job, api.alice.tenant).status == "pending"
    assert periodic.partitions(api.container) == {"partitions_created": []}  # SQLite has none
    assert periodic.rollup(api.container)["services"] == 0
    assert periodic.run_logged("facesocial.maintenance.partitions", api.container) is not None
