"""LogTail without a kernel: only new bytes, bounded buffer, pause, truncation, rotation, bad UTF-8."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from celline_jobs_nb.core.models import JobInfo, JobStatus, utcnow
from celline_jobs_nb.monitor import JobMonitor
from celline_jobs_nb.widgets import LogTail
from celline_jobs_nb.widgets.logtail import MAX_LINE_CHARS, START_TAIL_BYTES, clean_line


def shown(tail: LogTail) -> list[str]:
    """The lines a view rebuilds from the two traits (js/src/logbuffer.js)."""
    lines = list(tail.snapshot["lines"])
    if tail.tail.get("gen") == tail.snapshot["gen"]:
        lines += tail.tail["lines"]
    return lines[-tail.max_lines:]


def sends(tail: LogTail, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    monkeypatch.setattr(tail, "_send", lambda msg, buffers=None: messages.append(msg))
    return messages


def test_follows_only_new_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "job.log"
    log.write_text("one\ntwo\n")
    tail = LogTail(path=log, poll=False)
    assert tail.lines == ["one", "two"] and shown(tail) == ["one", "two"]
    messages = sends(tail, monkeypatch)
    assert tail.refresh_view() is False and messages == []  # nothing new: nothing sent
    with log.open("a") as handle:
        handle.write("three\nfour")
    assert tail.refresh_view() is True
    assert len(messages) == 1 and set(messages[0]["state"]) == {"tail"}
    assert messages[0]["state"]["tail"]["lines"] == ["three"]
    assert messages[0]["state"]["tail"]["partial"] == "four"  # a line still being written
    with log.open("a") as handle:
        handle.write(" and more\n")
    tail.refresh_view()
    assert shown(tail) == ["one", "two", "three", "four and more"] and tail.tail["partial"] == ""
    assert tail._follower is not None and tail._follower.total_bytes_read == log.stat().st_size
    tail.close()


def test_buffer_is_bounded_and_compacts_into_one_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "job.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    tail = LogTail(path=log, poll=False, max_lines=20)
    assert tail.lines == [f"line {i}" for i in range(80, 100)]
    messages = sends(tail, monkeypatch)
    with log.open("a") as handle:
        handle.write("".join(f"line {i}\n" for i in range(100, 130)))
    tail.refresh_view()
    assert len(messages) == 1 and set(messages[0]["state"]) == {"snapshot", "tail"}
    assert tail.lines == [f"line {i}" for i in range(110, 130)] and shown(tail) == tail.lines
    tail.close()


def test_pause_sends_nothing_and_resume_catches_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "job.log"
    log.write_text("a\n")
    tail = LogTail(path=log, poll=False)
    tail.follow = False
    messages = sends(tail, monkeypatch)
    with log.open("a") as handle:
        handle.write("b\nc\n")
    assert tail.refresh_view() is False and messages == []
    tail.follow = True  # resuming reads what was written meanwhile
    assert shown(tail) == ["a", "b", "c"] and len([m for m in messages if "tail" in m["state"]]) == 1
    tail.close()


def test_truncation_and_rotation_restart_from_the_new_start(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    log.write_text("old 1\nold 2\nold 3\n")
    tail = LogTail(path=log, poll=False)
    gen = tail.snapshot["gen"]
    log.write_text("new\n")  # truncated (smaller than what we read)
    tail.refresh_view()
    assert shown(tail) == ["new"] and tail.snapshot["gen"] == gen + 1
    assert "truncated or replaced" in tail.tail["info"]["notice"]
    rotated = tmp_path / "job.log.1"
    os.rename(log, rotated)
    log.write_text("after rotation 1\nafter rotation 2\n")
    tail.refresh_view()
    assert shown(tail) == ["after rotation 1", "after rotation 2"]
    tail.close()


def test_invalid_utf8_ansi_and_carriage_returns(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    log.write_bytes(b"caf\xc3\xa9 \xff\xfe bad\n\x1b[32mgreen\x1b[0m\n10%\r50%\r100%\nnul\x00here\r\n")
    tail = LogTail(path=log, poll=False)
    assert tail.lines == ["café \ufffd\ufffd bad", "\x1b[32mgreen\x1b[0m", "100%", "nulhere"]
    # A multi-byte character split across two writes stays whole.
    with log.open("ab") as handle:
        handle.write(b"\xe2\x82")
    tail.refresh_view()
    with log.open("ab") as handle:
        handle.write(b"\xac euro\n")
    tail.refresh_view()
    assert tail.lines[-1] == "€ euro"
    assert clean_line("x" * (MAX_LINE_CHARS + 10)).endswith("…[line cut]")
    tail.close()


def test_large_log_reads_only_its_end(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    with log.open("wb") as handle:
        handle.truncate(200 * 1024 * 1024)  # 200 MB (sparse), never read whole
        handle.seek(0, os.SEEK_END)
        handle.write(b"\nlast line\n")
    started = time.perf_counter()
    tail = LogTail(path=log, poll=False)
    assert time.perf_counter() - started < 2
    assert tail.lines[-1] == "last line"
    assert tail._follower is not None and tail._follower.total_bytes_read <= START_TAIL_BYTES
    tail.close()


def test_missing_file_waits_then_follows(tmp_path: Path) -> None:
    log = tmp_path / "later.log"
    tail = LogTail(path=log, poll=False)
    assert tail.lines == [] and "waiting for the log file" in tail.tail["info"]["notice"]
    log.write_text("appeared\n")
    tail.refresh_view()
    assert shown(tail) == ["appeared"] and tail.tail["info"]["notice"] is None
    tail.close()


def test_job_log_through_the_monitor(monitor: JobMonitor) -> None:
    monitor.store.insert(JobInfo(job_id="j1", name="Count", status=JobStatus.RUNNING, scheduler="imported",
                                 submit_time=utcnow()))
    monitor.paths.log_file("j1").write_text("hello\n")
    tail = LogTail(monitor, "j1", poll=False)
    assert tail.title == "Log of Count (j1)" and tail.lines == ["hello"]
    monitor.store.insert(JobInfo(job_id="j2", name="Never ran", status=JobStatus.CANCELLED, scheduler="imported",
                                 submit_time=utcnow()))
    tail.job_id = "j2"
    assert tail.lines == [] and tail.tail["info"]["notice"] == "no log: the job ended (cancelled) without writing one"
    tail.job_id = "missing"
    assert tail.lines == [] and "missing" in tail.tail["info"]["notice"]
    tail.job_id = ""
    assert tail.title == "" and tail.lines == []
    tail.close()


def test_own_ticker_without_a_monitor(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    log.write_text("start\n")
    tail = LogTail(path=log, interval=0.1)
    assert tail.polling and tail.poll_interval == pytest.approx(0.2)  # the floor of IntervalThread
    with log.open("a") as handle:
        handle.write("ticked\n")
    deadline = time.monotonic() + 5
    while tail.lines[-1:] != ["ticked"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tail.lines == ["start", "ticked"]
    thread = tail._ticker
    tail.close()
    assert not tail.polling and thread is not None and not thread.is_alive()
