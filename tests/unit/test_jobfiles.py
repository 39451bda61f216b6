from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from celline_jobs_nb import progress
from celline_jobs_nb.core.errors import InvalidInputError, ParseError
from celline_jobs_nb.core.jobfiles import (
    parse_exit_record,
    parse_progress,
    parse_tqdm_progress,
    read_exit_file,
    write_exit_file,
)
from celline_jobs_nb.core.logs import LogFollower, tail_lines


def test_exit_record_round_trip(tmp_path: Path):
    path = tmp_path / "x.exitcode"
    assert read_exit_file(path) is None
    write_exit_file(path, 3, None)
    record = read_exit_file(path)
    assert record.exit_code == 3 and record.signal is None and record.end_time.tzinfo is not None


def test_shell_exit_status_above_128_is_a_signal():
    record = parse_exit_record('{"exit_code": 137, "signal": null, "end_time": 1, "shell": true}')
    assert (record.exit_code, record.signal) == (None, 9)


def test_progress_file_seed_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CELLINE_JOB_ID", "abc")
    monkeypatch.setenv("CELLINE_JOBS_PROJECT", str(tmp_path))
    monkeypatch.delenv("CELLINE_JOBS_PROGRESS_FILE", raising=False)
    path = progress.report(42.5, "Aligning", sample="S1")
    assert path == tmp_path / "logs" / "abc_progress.json"
    parsed = parse_progress(path.read_text())
    assert (parsed.percent, parsed.stage, parsed.details) == (42.5, "Aligning", {"sample": "S1"})
    with pytest.raises(InvalidInputError):
        progress.report(150)


def test_progress_outside_a_job_does_nothing(monkeypatch: pytest.MonkeyPatch):
    for name in ("CELLINE_JOB_ID", "CELLINE_JOBS_PROJECT", "CELLINE_JOBS_PROGRESS_FILE"):
        monkeypatch.delenv(name, raising=False)
    assert progress.report(10) is None


def test_tqdm_lines_are_read_from_the_log_tail():
    tail = "start\nCounting:  10%|█         | 10/100\rCounting:  45%|████▌     | 45/100 [00:01<00:01]"
    found = parse_tqdm_progress(tail)
    assert (found.percent, found.stage) == (45.0, "Counting")
    assert parse_tqdm_progress("no progress here") is None


@given(st.text(max_size=200))
def test_file_parsers_only_raise_parse_errors(text):
    for parse in (parse_exit_record, parse_progress):
        try:
            parse(text)
        except ParseError:
            pass
    parse_tqdm_progress(text)


def test_tail_lines_reads_only_the_end(tmp_path: Path):
    log = tmp_path / "big.log"
    with log.open("w") as handle:
        for i in range(200_000):
            handle.write(f"line {i}\n")
    assert tail_lines(log, 3) == ["line 199997", "line 199998", "line 199999"]
    assert tail_lines(tmp_path / "missing.log", 3) == []


def test_follower_handles_appends_split_utf8_truncation_and_rotation(tmp_path: Path):
    log = tmp_path / "job.log"
    log.write_bytes(b"old\n")
    follower = LogFollower(log)
    assert follower.read_new().text == "old\n"
    snowman = "☃".encode()
    with log.open("ab") as handle:
        handle.write(b"a" + snowman[:1])
    assert follower.read_new().text == "a"  # half a character waits for the rest
    with log.open("ab") as handle:
        handle.write(snowman[1:] + b"\xff\n")
    assert follower.read_new().text == "☃\ufffd\n"
    log.write_bytes(b"new\n")  # truncated and rewritten
    chunk = follower.read_new()
    assert chunk.reset and chunk.text == "new\n"
    log.unlink()
    (tmp_path / "job.log").write_bytes(b"rotated\n")
    chunk = follower.read_new()
    assert chunk.text == "rotated\n"
