"""The meeting life cycle under racing requests, through a real ``facesocial serve`` (embedded).

Found by an attack pass: ending and deleting one meeting at once answered 500 — the end commits
``ended``, then stores the summary in a second transaction, and a delete landing between the two
failed the summary's foreign key. Now such an end answers 200 or 404, never 500.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import RunningServer, running_server

pytestmark = [pytest.mark.integration]
API = "/api/v1/attention"
TRIALS = 80
# Several of each per meeting: a delete must land between the end's two transactions.
ACTIONS = ("end", "delete") * 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[RunningServer]:
    with running_server(
        tmp_path_factory.mktemp("attack-attention"), model_dir, FACESOCIAL_RATE_LIMITS__ENABLED="false"
    ) as running:
        yield running


def _started_meeting(client: httpx.Client) -> str:
    created = client.post(f"{API}/meetings", json={"title": "race"})
    assert created.status_code == 201, created.text
    meeting_id = str(created.json()["meeting"]["meeting_id"])
    assert client.post(f"{API}/meetings/{meeting_id}/start").status_code == 200
    return meeting_id


def test_end_racing_delete_never_answers_500(server: RunningServer) -> None:
    headers = {"X-API-Key": server.key}
    statuses: list[int] = []
    with httpx.Client(base_url=server.base, headers=headers, timeout=60) as client:
        for _ in range(TRIALS):
            meeting_id = _started_meeting(client)
            barrier = threading.Barrier(len(ACTIONS))
            results: dict[str, list[int]] = {"end": [], "delete": []}

            def call(
                action: str,
                meeting_id: str = meeting_id,
                barrier: threading.Barrier = barrier,
                results: dict[str, list[int]] = results,
            ) -> None:
                with httpx.Client(base_url=server.base, headers=headers, timeout=60) as own:
                    barrier.wait()
                    if action == "end":
                        results[action].append(own.post(f"{API}/meetings/{meeting_id}/end").status_code)
                    else:
                        results[action].append(own.delete(f"{API}/meetings/{meeting_id}").status_code)

            threads = [threading.Thread(target=call, args=(action,)) for action in ACTIONS]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            statuses.extend(results["end"] + results["delete"])
            # Whatever the order, one delete wins and the meeting is gone.
            assert 200 in results["delete"]
            assert client.get(f"{API}/meetings/{meeting_id}").status_code == 404
    # Each call completed (200), found no meeting (404) or a finished transition (409): never a 500.
    assert 500 not in statuses, f"{statuses.count(500)} of {TRIALS} end/delete races answered 500"
