"""One poller per project, whatever the clients: 200 requests and 10 event sockets on a project with a
SLURM job cost the scheduler only the poller's own calls (counted on the real single-node SLURM)."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from jobapi_server import start_server
from support import require_test_cluster
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from benchmarks.cluster import CountingPath
from celline_jobs_nb.monitor import JobMonitor

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
WINDOW = 8.0


def test_clients_never_make_the_server_call_the_scheduler(tmp_path: Path) -> None:
    require_test_cluster()
    root = tmp_path / "root"
    (root / "p").mkdir(parents=True)
    monitor = JobMonitor(root / "p")
    job = monitor.submit_job("held in slurm", "sleep 300", scheduler="slurm")
    with CountingPath() as counter:
        server = start_server(root, tmp_path / "jupyter", extra_env=counter.env("server"))
        try:
            assert server.request("GET", "jobs?project=p")[0] == 200  # the project's poller starts here
            time.sleep(2.0)
            start = time.time()

            async def sockets() -> None:
                conns = [await websocket_connect(HTTPRequest(server.ws("events?project=p"),
                                                             headers={"Authorization": f"token {server.token}"}))
                         for _ in range(10)]
                await asyncio.sleep(WINDOW)
                for conn in conns:
                    conn.close()

            with ThreadPoolExecutor(10) as pool:
                socket_run = pool.submit(asyncio.run, sockets())
                statuses = list(pool.map(lambda _: server.request("GET", f"jobs/{job}?project=p")[0], range(200)))
                socket_run.result()
            elapsed = time.time() - start
            calls = counter.calls("server", since=start)
            everything = counter.calls("server")
        finally:
            server.stop()
            monitor.cancel_job(job, wait=10)
    assert statuses == [200] * 200
    assert everything, "the server's poller made no scheduler call at all: the counting wrappers were not used"
    interval = monitor.poll_interval("slurm")
    # the poller's own pace: one batched squeue (+ sacct for ends) per interval; never one per request
    assert len(calls) <= 2 * (elapsed / interval + 1), [c.command for c in calls]
