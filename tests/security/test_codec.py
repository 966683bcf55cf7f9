"""A client never picks the codec (rpc.py's CVE-2022-35411 let a header choose pickle):
whatever fields, headers or content type a request carries, the API reads JSON, stores
JSON and answers JSON, and a worker decodes arguments as JSON. A pickle that would
create a marker file if anything ever unpickled it stays inert text throughout."""

from __future__ import annotations

from pathlib import Path

import httpx

from web._server import ServerThread
from web._tasks import make_app
from workhorse.backends.base import JobFilter
from workhorse.web import create_api_key, create_app


def pickle_bomb(marker: Path) -> bytes:
    """A protocol-0 pickle that runs ``touch marker`` when unpickled."""
    return f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()


async def test_no_field_header_or_content_type_picks_another_codec(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    bomb = pickle_bomb(marker)
    app = make_app(f"sqlite:///{tmp_path / 'jobs.db'}")
    server = ServerThread(create_app(app, session_secret="codec-test-session-secret")).start()
    try:
        token = (await create_api_key(app, tenant="acme")).token
        store = await app.backend()
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as client:
            for field in ("serializer", "codec", "content_type", "encoding"):
                body = {"task": "echo", "args": [bomb.decode()], field: "pickle"}
                response = await client.post("/jobs", json=body)
                assert response.status_code == 422, (field, response.text)
            for content_type in ("application/x-python-pickle", "application/octet-stream"):
                response = await client.post(
                    "/jobs", content=bomb, headers={"Content-Type": content_type}
                )
                assert 400 <= response.status_code < 500, (content_type, response.text)
            assert await store.job_count(filter=JobFilter()) == 0, "a refused request stored"

            pickle_headers = {
                "X-Serializer": "pickle",
                "X-Codec": "pickle",
                "Accept": "application/x-python-pickle",
            }
            response = await client.post(
                "/jobs", json={"task": "echo", "args": [bomb.decode()]}, headers=pickle_headers
            )
            assert response.status_code == 201, response.text
            assert response.headers["content-type"].startswith("application/json")
            job_id = response.json()["id"]
            fetched = await client.get(f"/jobs/{job_id}", headers=pickle_headers)
            assert fetched.headers["content-type"].startswith("application/json")
            assert fetched.json()["args"] == [bomb.decode()]
        async with app.worker():
            result = await app.job(job_id).result(timeout=30)
        assert result == bomb.decode(), "the worker decoded the arguments as JSON text"
    finally:
        server.stop()
        await app.aclose()
    assert not marker.exists(), "something unpickled the payload"
