"""9. JobAPI server: CPU of a real ``jupyter server`` (with the celline-jobs extension) per second of
wall time while 50 WebSocket clients follow one growing log of a project holding 1,000 jobs, and an
events client is subscribed. Baseline: the same server and project with no client connected (what its
poller and Jupyter cost by themselves). Also: bytes each follower was sent / bytes appended."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import psutil

from celline_jobs_nb.core.models import JobInfo, JobStatus, utcnow
from celline_jobs_nb.monitor import JobMonitor

from .common import Row

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from jobapi_server import Server, start_server

FOLLOWERS = 50
LINE = "2026-11-28 21:00:00 INFO cellranger count: processed 1,000,000 reads of sample SRR2584863\n"


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


async def _follow(server: Server, job: str, start: int, seconds: float) -> tuple[float, int, int]:
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    def connect(path: str):
        return websocket_connect(HTTPRequest(server.ws(path), headers={"Authorization": f"token {server.token}"},
                                             connect_timeout=30))
    followers = [await connect(f"jobs/{job}/logs?project=p&from={start}") for _ in range(FOLLOWERS)]
    events = await connect("events?project=p")
    received = [0] * FOLLOWERS

    async def drain(i: int) -> None:
        while (msg := await followers[i].read_message()) is not None:
            received[i] += len(json.loads(msg).get("text", "").encode())

    tasks = [asyncio.ensure_future(drain(i)) for i in range(FOLLOWERS)]
    process = psutil.Process(server.process.pid)
    log = server.root / "p" / "logs" / f"{job}.log"
    await asyncio.sleep(1.0)
    cpu0, t0 = _cpu(process), time.monotonic()
    appended = 0
    with log.open("a") as handle:
        while time.monotonic() - t0 < seconds:
            handle.write(LINE * 5)
            handle.flush()
            appended += len(LINE) * 5
            await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # the last lines reach every follower
    cpu = (_cpu(process) - cpu0) / (time.monotonic() - t0)
    for conn in [*followers, events]:
        conn.close()
    for task in tasks:
        task.cancel()
    return cpu, appended, min(received) if received else 0


def run(quick: bool) -> list[Row]:
    seconds = 4.0 if quick else 15.0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        (root / "p").mkdir(parents=True)
        monitor = JobMonitor(root / "p")
        ended = utcnow() - timedelta(hours=1)
        monitor.store.insert_many([JobInfo(job_id=f"bench{i:05d}", name=f"job {i}", status=JobStatus.COMPLETED,
                                           command="true", start_time=ended, end_time=ended, submit_time=ended)
                                   for i in range(999)], source="bench")
        job = monitor.submit_job("growing log", "sleep 600")
        log = monitor.log_path(job)
        deadline = time.monotonic() + 30
        while not log.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        server = start_server(root, Path(tmp) / "jupyter")
        try:
            process = psutil.Process(server.process.pid)
            server.request("GET", "jobs?project=p")  # the project's hub and poller run from here on
            time.sleep(2.0)
            cpu0, t0 = _cpu(process), time.monotonic()
            time.sleep(seconds)
            idle = (_cpu(process) - cpu0) / (time.monotonic() - t0)
            cpu, appended, least = asyncio.run(_follow(server, job, log.stat().st_size, seconds))
        finally:
            server.stop()
            monitor.cancel_job(job, wait=5)
    return [
        Row("9. JobAPI server", f"server CPU s per s, {FOLLOWERS} log followers + events, 1,000 jobs", cpu, "CPU s/s",
            idle, "same server, its poller, no clients", target="< 0.25 CPU s/s", met=cpu < 0.25,
            note=f"{appended / seconds / 1024:.0f} KiB/s appended"),
        Row("9. JobAPI server", "bytes sent to the slowest follower / bytes appended", least / appended if appended
            else float("nan"), "ratio", target="= 1.0", met=least == appended),
    ]
