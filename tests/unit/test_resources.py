from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from celline_jobs_nb import Resources
from celline_jobs_nb.core.errors import ResourceError
from celline_jobs_nb.core.resources import format_walltime, parse_memory, parse_walltime

G = 1024**3


@pytest.mark.parametrize(("text", "expected"), [
    ("32G", 32 * G), ("32gb", 32 * G), ("32GiB", 32 * G), ("512M", 512 * 1024**2), ("1.5T", int(1.5 * 1024**4)),
    ("100", 100 * 1024**2), (64, 64 * 1024**2), ("2048k", 2048 * 1024), ("1024b", 1024),
])
def test_memory(text, expected):
    assert parse_memory(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("1:30:00", 5400), ("90:00", 5400), ("2-00:00:00", 172800), ("1-12", 129600), ("2h", 7200),
    ("1h30m", 5400), ("45m", 2700), ("30", 1800), ("1d", 86400), ("10s", 10),
])
def test_walltime(text, expected):
    assert parse_walltime(text) == expected


@pytest.mark.parametrize(("spec", "message"), [
    ("mem=lots", "invalid memory 'lots'"), ("mem=-1G", "invalid memory"), ("mem=0", "invalid memory"),
    ("time=1:99:00", "invalid walltime"), ("time=abc", "invalid walltime"), ("cpus=0", "invalid cpus"),
    ("cpus=two", "invalid cpus"), ("colour=blue", "unknown resource 'colour'"), ("mem", "write key=value"),
    ("partition=a;rm", "invalid partition"), ("mem=99999999T", "at most 64P"),
])
def test_nonsense_is_rejected_with_a_clear_error(spec, message):
    with pytest.raises(ResourceError, match=message):
        Resources.parse(spec)


def test_parse_dict_and_summary():
    r = Resources.parse({"cpus": 4, "memory": "32gb", "walltime": "1:30:00", "queue": "batch", "gpus": 1})
    assert (r.cpus, r.memory, r.walltime, r.partition, r.gpus) == (4, 32 * G, 5400, "batch", 1)
    assert r.to_dict() == {"cpus": 4, "mem": "32G", "time": "01:30:00", "partition": "batch", "gpus": 1}
    assert r.summary() == "4 cpu · 32G · 01:30:00 · 1 gpu · batch"
    assert Resources.parse(r.to_dict()) == r


def test_merged_and_scaled():
    r = Resources.parse("cpus=2,mem=8G,time=1:00:00")
    assert r.merged(mem="64G").memory == 64 * G and r.merged(mem="64G").cpus == 2
    bumped = r.scaled(memory_factor=2, walltime_factor=1.5, max_memory=12 * G)
    assert (bumped.memory, bumped.walltime) == (12 * G, 5400)


def test_extra_directives_cannot_smuggle_lines():
    with pytest.raises(ResourceError, match="no newlines"):
        Resources(extra=("--qos=high\n#SBATCH --wrap=evil",))


@given(st.text(max_size=40))
def test_parsers_only_raise_resource_errors(text):
    for parse in (parse_memory, parse_walltime, Resources.parse):
        try:
            parse(text)
        except ResourceError:
            pass


@given(st.integers(min_value=1, max_value=366 * 86400))
def test_walltime_format_round_trips(seconds):
    assert parse_walltime(format_walltime(seconds)) == seconds
