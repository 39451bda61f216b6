"""The seed's JobAPI against a real ``jupyter server`` subprocess on 127.0.0.1 with a token: every
route with and without the token, XSRF on POST, path escapes, cancel and retry, log streams and
events over WebSocket."""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from jobapi_server import Server, start_server
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from celline_jobs_nb.monitor import JobMonitor

pytestmark = pytest.mark.slow
PAGE_MARK = "celline-jobs-page"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("jobapi-root")


@pytest.fixture(scope="module")
def server(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    (root / "p").mkdir()
    monitor = JobMonitor(root / "p")
    done = monitor.submit_job("done", "echo hello")
    monitor.wait([done], timeout=30)
    outside = tmp_path_factory.mktemp("outside")
    JobMonitor(outside).submit_job("secret", "true")
    (root / "link-out").symlink_to(outside)
    srv = start_server(root, tmp_path_factory.mktemp("jupyter-home"))
    yield srv
    srv.stop()
    for project in (root / "p", outside):
        mon = JobMonitor(project)
        for job in mon.store.active():
            mon.cancel_job(job.job_id, wait=0)


@pytest.fixture(scope="module")
def monitor(server: Server, root: Path) -> JobMonitor:
    return JobMonitor(root / "p")


def _done_id(monitor: JobMonitor) -> str:
    return next(j.job_id for j in monitor.list_jobs("completed") if j.name == "done")


async def _ws(server: Server, path: str, *, token: bool = True) -> object:
    headers = {"Authorization": f"token {server.token}"} if token else {}
    return await websocket_connect(HTTPRequest(server.ws(path), headers=headers, connect_timeout=10))


async def _messages(conn: object, until: float) -> list[dict]:
    """Every message until the socket closes or the deadline passes."""
    out = []
    while True:
        left = until - time.monotonic()
        if left <= 0:
            return out
        try:
            msg = await asyncio.wait_for(conn.read_message(), left)
        except asyncio.TimeoutError:
            return out
        if msg is None:
            return out
        out.append(json.loads(msg))


def _ws_status(server: Server, path: str, *, token: bool = True) -> int:
    async def attempt() -> int:
        try:
            conn = await _ws(server, path, token=token)
        except HTTPClientError as err:
            return err.code
        conn.close()
        return 101
    return asyncio.run(attempt())


def test_every_route_needs_the_token(server: Server, monitor: JobMonitor) -> None:
    job = _done_id(monitor)
    gets = ["jobs?project=p", "jobs?project=p&status=completed", f"jobs/{job}?project=p",
            f"jobs/{job}/progress?project=p"]
    for path in gets:
        assert server.request("GET", path)[0] == 200, path
        assert server.request("GET", path, token=False)[0] in (401, 403), path
    for path in (f"jobs/{job}/cancel?project=p", f"jobs/{job}/retry?project=p"):
        assert server.request("POST", path, token=False, body={})[0] in (401, 403), path
    for path in (f"jobs/{job}/logs?project=p", "events?project=p"):
        assert _ws_status(server, path) == 101, path
        assert _ws_status(server, path, token=False) in (401, 403), path
    page = f"{server.url}/celline-jobs/?project=p"
    assert server.request("GET", "", full_url=page)[0] == 200
    _, body = server.request("GET", "", full_url=page, token=False)
    assert PAGE_MARK in server.request("GET", "", full_url=page)[1]
    assert PAGE_MARK not in str(body)  # sent to the login page instead
    # nothing was cancelled or retried by the refused requests
    assert monitor.get_job(job).metadata.get("retried_by") is None


def test_list_get_and_progress_answer_the_seed_shapes(server: Server, monitor: JobMonitor) -> None:
    job = monitor.get_job(_done_id(monitor))
    status, body = server.request("GET", "jobs?project=p&status=completed")
    assert status == 200 and job.job_id in [j["job_id"] for j in body["jobs"]]
    assert all(j["status"] == "completed" for j in body["jobs"])
    status, info = server.request("GET", f"jobs/{job.job_id}?project=p")
    for name in ("job_id", "name", "status", "command", "start_time", "end_time", "log_file", "working_dir",
                 "resources"):
        assert name in info
    assert info["status"] == "completed" and info["end_time"].endswith("+00:00")
    status, progress = server.request("GET", f"jobs/{job.job_id}/progress?project=p")
    assert status == 200 and set(progress) >= {"progress", "stage", "details", "timestamp"}
    status, err = server.request("GET", "jobs/NOSUCHJOB?project=p")
    assert status == 404 and "NOSUCHJOB" in err["error"]
    status, err = server.request("GET", "jobs?project=p&status=finished")
    assert status == 400 and "finished" in err["error"]
    assert server.request("GET", "jobs")[0] == 400  # no project


def test_paths_outside_the_root_are_refused(server: Server, root: Path) -> None:
    for project in ("..", "../..", "/tmp", "p/../..", "link-out", "%2Ftmp"):
        status, body = server.request("GET", f"jobs?project={project}")
        assert status in (403, 404), project
        if project != "%2Ftmp":
            assert status == 403 and "outside" in body["error"], project
        assert _ws_status(server, f"events?project={project}") in (403, 404), project
    assert server.request("GET", "jobs?project=nonexistent")[0] == 404


def _opener_with_cookie(server: Server) -> tuple[urllib.request.OpenerDirector, http.cookiejar.CookieJar]:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(f"{server.url}/celline-jobs/?project=p&token={server.token}", timeout=30).read()
    return opener, jar


def test_xsrf_is_required_on_post_with_a_cookie(server: Server, monitor: JobMonitor) -> None:
    job, _ = _running_job_with_log(monitor)
    opener, jar = _opener_with_cookie(server)
    xsrf = next(c.value for c in jar if c.name == "_xsrf")
    url = server.api(f"jobs/{job}/cancel?project=p")
    with pytest.raises(urllib.error.HTTPError) as refused:
        opener.open(urllib.request.Request(url, data=b"{}", method="POST"), timeout=30)
    assert refused.value.code == 403
    assert monitor.get_job(job).status.active  # the refused request cancelled nothing
    req = urllib.request.Request(url, data=b"{}", method="POST", headers={"X-XSRFToken": xsrf})
    with opener.open(req, timeout=30) as resp:
        assert json.loads(resp.read()) == {"cancelled": True, "job_id": job}
    assert monitor.get_job(job).status.value == "cancelled"


def test_cancel_and_retry_take_effect(server: Server, monitor: JobMonitor) -> None:
    job, _ = _running_job_with_log(monitor)
    status, body = server.request("POST", f"jobs/{job}/retry?project=p", body={})
    assert status == 409 and "cancel it" in body["error"]
    assert server.request("POST", f"jobs/{job}/cancel?project=p")[1] == {"cancelled": True, "job_id": job}
    assert monitor.get_job(job).status.value == "cancelled"
    assert server.request("POST", f"jobs/{job}/cancel?project=p")[1]["cancelled"] is False
    status, body = server.request("POST", f"jobs/{job}/retry?project=p", body={"resources": "mem=bogus"})
    assert status == 400 and "mem" in body["error"]
    status, body = server.request("POST", f"jobs/{job}/retry?project=p", body={"resources": "mem=2G"})
    assert status == 200
    new = monitor.get_job(body["job_id"])
    assert new.retry_of == job and new.attempt == 2 and new.resources.memory == 2 * 1024**3
    assert monitor.get_job(job).metadata["retried_by"] == new.job_id
    monitor.cancel_job(new.job_id, wait=5)
    assert server.request("POST", f"jobs/{job}/retry?project=p", body=b"{not json")[0] == 400


def test_a_finished_log_is_sent_whole_then_the_stream_closes(server: Server, monitor: JobMonitor) -> None:
    job = _done_id(monitor)

    async def run() -> list[dict]:
        conn = await _ws(server, f"jobs/{job}/logs?project=p")
        return await _messages(conn, time.monotonic() + 10)
    messages = asyncio.run(run())
    assert "".join(m.get("text", "") for m in messages if m["type"] == "log") == "hello\n"
    assert messages[-1]["type"] == "end"

    async def last_bytes() -> list[dict]:
        conn = await _ws(server, f"jobs/{job}/logs?project=p&from=-3")
        return await _messages(conn, time.monotonic() + 10)
    messages = asyncio.run(last_bytes())
    assert "".join(m.get("text", "") for m in messages if m["type"] == "log") == "lo\n"
    assert _ws_status(server, f"jobs/{job}/logs?project=p&from=x") == 400


def _running_job_with_log(monitor: JobMonitor) -> tuple[str, Path]:
    job = monitor.submit_job("follow me", "sleep 120")
    path = monitor.log_path(job)
    deadline = time.monotonic() + 20
    while (not path.exists() or monitor.get_job(job).status.value != "running") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.exists()
    return job, path


def test_a_log_stream_sees_an_appended_line_within_half_a_second(server: Server, monitor: JobMonitor) -> None:
    job, path = _running_job_with_log(monitor)

    async def run() -> float:
        conn = await _ws(server, f"jobs/{job}/logs?project=p&from={path.stat().st_size}")
        await _messages(conn, time.monotonic() + 0.5)  # settle
        with open(path, "a") as handle:
            handle.write("appended line\n")
        appended = time.monotonic()
        seen = ""
        while "appended line\n" not in seen:
            left = appended + 0.5 - time.monotonic()
            assert left > 0, f"not seen within 0.5 s (got {seen!r})"
            msg = await asyncio.wait_for(conn.read_message(), left)
            seen += json.loads(msg).get("text", "")
        conn.close()
        return time.monotonic() - appended
    try:
        assert asyncio.run(run()) < 0.5
    finally:
        monitor.cancel_job(job, wait=5)


def test_fifty_followers_each_read_exactly_the_appended_bytes(server: Server, monitor: JobMonitor) -> None:
    job, path = _running_job_with_log(monitor)
    start = path.stat().st_size
    lines = [f"line {i} " + "x" * (i % 70) + "\n" for i in range(400)]
    appended = "".join(lines)

    async def follower() -> tuple[str, int]:
        conn = await _ws(server, f"jobs/{job}/logs?project=p&from={start}")
        text, server_read = "", 0
        deadline = time.monotonic() + 60
        while len(text.encode()) < len(appended.encode()) and time.monotonic() < deadline:
            msg = json.loads(await asyncio.wait_for(conn.read_message(), 60))
            assert msg["type"] == "log", msg
            text += msg["text"]
            server_read = msg["bytes_read"]
        conn.close()
        return text, server_read

    async def writer() -> None:
        await asyncio.sleep(0.5)
        with open(path, "a") as handle:
            for i, line in enumerate(lines):
                handle.write(line)
                handle.flush()
                if i % 20 == 0:
                    await asyncio.sleep(0.05)

    async def run() -> list[tuple[str, int]]:
        followers = [asyncio.ensure_future(follower()) for _ in range(50)]
        await writer()
        return await asyncio.gather(*followers)
    try:
        results = asyncio.run(run())
    finally:
        monitor.cancel_job(job, wait=5)
    assert len(results) == 50
    for text, server_read in results:
        assert text == appended
        assert server_read == len(appended.encode())  # the server read only the new bytes, once each


def test_events_report_status_changes_batched_per_tick(server: Server, monitor: JobMonitor) -> None:
    async def run() -> tuple[str, list[dict]]:
        conn = await _ws(server, "events?project=p")
        hello = json.loads(await asyncio.wait_for(conn.read_message(), 10))
        assert hello["type"] == "hello"
        job = monitor.submit_job("evented", "echo evented")
        seen: list[dict] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(
                e["job_id"] == job and e.get("status") == "completed" for m in seen for e in m["events"]):
            seen.append(json.loads(await asyncio.wait_for(conn.read_message(), deadline - time.monotonic())))
        conn.close()
        return job, seen
    job, seen = asyncio.run(run())
    assert all(m["type"] == "changes" for m in seen)
    events = [e for m in seen for e in m["events"] if e["job_id"] == job and e["kind"] == "status"]
    assert events and events[-1]["status"] == "completed"
    assert any(j["job_id"] == job for m in seen for j in m["jobs"])


def test_environment_values_stay_on_the_server(server: Server, monitor: JobMonitor) -> None:
    job = monitor.submit_job("env", "true", env={"API_KEY": "s3cret"})
    status, info = server.request("GET", f"jobs/{job}?project=p")
    assert status == 200 and "s3cret" not in json.dumps(info) and info["metadata"]["env"] == ["API_KEY"]


def test_serve_runs_the_api_and_page_on_localhost_behind_a_printed_token(tmp_path: Path) -> None:
    import re
    import signal
    import subprocess
    import sys

    from jobapi_server import free_port

    project = tmp_path / "proj"
    project.mkdir()
    JobMonitor(project).submit_job("served", "echo served")
    port = free_port()
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg")}
    proc = subprocess.Popen([sys.executable, "-m", "celline_jobs_nb", "--project", str(project), "serve",
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env)
    try:
        lines = [proc.stdout.readline() for _ in range(2)]
        url = re.search(r"http://\S+", lines[1]).group(0)
        assert url.startswith(f"http://127.0.0.1:{port}/celline-jobs/?project=.&token=")
        token = url.split("token=")[1]
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url, timeout=10) as resp:
                    assert PAGE_MARK in resp.read().decode()
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline
                time.sleep(0.2)
        req = urllib.request.Request(f"http://127.0.0.1:{port}/celline-jobs/api/v1/jobs?project=.",
                                     headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert [j["name"] for j in json.loads(resp.read())["jobs"]] == ["served"]
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/celline-jobs/api/v1/jobs?project=.", timeout=10)
        assert refused.value.code == 403
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_outside_a_project_says_so(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "celline_jobs_nb", "--project", str(tmp_path), "serve"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "no celline project" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / ".celline").exists()


# ---- docs/jobapi.yaml is true --------------------------------------------------------------------

SPEC_PATH = Path(__file__).resolve().parents[2] / "docs" / "jobapi.yaml"


def _spec() -> dict:
    import yaml

    return yaml.safe_load(SPEC_PATH.read_text())


def _deref(spec: dict, node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        target = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def _check(spec: dict, schema: dict, value: object, where: str) -> None:
    """The parts of OpenAPI schemas docs/jobapi.yaml uses: type, nullable, enum, required, properties, items."""
    schema = _deref(spec, schema)
    if value is None:
        assert schema.get("nullable") or "type" not in schema, f"{where}: null where {schema.get('type')} is documented"
        return
    kind = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "integer": int, "number": (int, float), "boolean": bool}
    if kind:
        assert isinstance(value, types[kind]) and not (kind in ("integer", "number") and isinstance(value, bool)), \
            f"{where}: {value!r} is not {kind}"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    if isinstance(value, dict):
        for name in schema.get("required", []):
            assert name in value, f"{where}: {name} missing"
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                _check(spec, sub, value[name], f"{where}.{name}")
        if schema.get("properties") and kind == "object" and "JobInfo" not in where:
            undocumented = set(value) - set(schema["properties"])
            assert not undocumented, f"{where}: undocumented fields {undocumented}"
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _check(spec, schema["items"], item, f"{where}[{i}]")


def _response_schema(spec: dict, path: str, method: str, status: int) -> dict:
    response = _deref(spec, spec["paths"][path][method]["responses"][str(status)])
    return response["content"]["application/json"]["schema"]


def test_every_route_is_documented_with_its_methods() -> None:
    from celline_jobs_nb.server.handlers import API_ROUTES

    spec = _spec()
    assert [p for p, _ in API_ROUTES] == list(spec["paths"])
    for path, handler in API_ROUTES:
        documented = {m for m in spec["paths"][path] if m in ("get", "post", "put", "delete", "patch")}
        implemented = {m for m in ("get", "post", "put", "delete", "patch")
                       if getattr(handler, m) is not getattr(__import__("tornado.web").web.RequestHandler, m)}
        websocket = any(spec["paths"][path][m].get("x-websocket") for m in documented)
        assert documented == implemented, path
        assert websocket == hasattr(handler, "write_message"), path


def test_every_answer_matches_the_document(server: Server, monitor: JobMonitor) -> None:
    spec = _spec()
    done = _done_id(monitor)
    answers = [
        ("/jobs", "get", "jobs?project=p"),
        ("/jobs", "get", "jobs?project=p&status=completed,failed&limit=5"),
        ("/jobs/{job_id}", "get", f"jobs/{done}?project=p"),
        ("/jobs/{job_id}/progress", "get", f"jobs/{done}/progress?project=p"),
        ("/jobs/{job_id}", "get", "jobs/NOPE?project=p"),
        ("/jobs", "get", "jobs?project=.."),
        ("/jobs/{job_id}/cancel", "post", f"jobs/{done}/cancel?project=p"),
        ("/jobs/{job_id}/retry", "post", f"jobs/{done}/retry?project=p"),
        ("/jobs/{job_id}/retry", "post", "jobs/NOPE/retry?project=p"),
    ]
    for path, method, url in answers:
        status, body = server.request(method.upper(), url, body={} if method == "post" else None)
        assert str(status) in spec["paths"][path][method]["responses"], (url, status)
        _check(spec, _response_schema(spec, path, method, status), body, url)
    retried = server.request("POST", f"jobs/{done}/retry?project=p")[1]["job_id"]
    monitor.wait([retried], timeout=30)

    async def socket_messages() -> list[tuple[str, dict]]:
        out = []
        conn = await _ws(server, f"jobs/{done}/logs?project=p")
        out += [("/jobs/{job_id}/logs", m) for m in await _messages(conn, time.monotonic() + 5)]
        conn = await _ws(server, "events?project=p")
        JobMonitor(server.root / "p").submit_job("spec", "echo spec")
        out += [("/events", m) for m in await _messages(conn, time.monotonic() + 6)]
        conn.close()
        return out
    messages = asyncio.run(socket_messages())
    assert {p for p, _ in messages} == {"/jobs/{job_id}/logs", "/events"}
    assert any(m["type"] == "changes" for _, m in messages)
    for path, message in messages:
        _check(spec, _response_schema(spec, path, "get", 101), message, path)


def test_a_read_only_authorizer_allows_reading_and_refuses_cancel_and_retry(tmp_path: Path) -> None:
    """The handlers ask Jupyter's authorizer about the resource "celline-jobs": a deployment can
    grant read-only access."""
    root = tmp_path / "root"
    (root / "p").mkdir(parents=True)
    monitor = JobMonitor(root / "p")
    job, _ = _running_job_with_log(monitor)
    srv = start_server(root, tmp_path / "jupyter",
                       extra_args=("--ServerApp.authorizer_class=jobapi_server.ReadOnlyAuthorizer",))
    try:
        assert srv.request("GET", "jobs?project=p")[0] == 200
        assert srv.request("GET", f"jobs/{job}/progress?project=p")[0] == 200
        assert _ws_status(srv, f"jobs/{job}/logs?project=p") == 101
        assert srv.request("POST", f"jobs/{job}/cancel?project=p")[0] == 403
        assert srv.request("POST", f"jobs/{job}/retry?project=p")[0] == 403
        assert monitor.get_job(job).status.value == "running"
    finally:
        srv.stop()
        monitor.cancel_job(job, wait=5)
