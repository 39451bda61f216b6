"""Property tests: every parser of outside text raises only our typed errors, never crashes.
(The SLURM and PBS output parsers have theirs next to their unit tests: test_slurm_parse.py,
test_pbs_parse.py.)"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from celline_jobs_nb.core.errors import CellineJobsError, ParseError
from celline_jobs_nb.core.jobfiles import parse_exit_record, parse_progress, parse_tqdm_progress
from celline_jobs_nb.core.models import validate_job_id
from celline_jobs_nb.core.resources import Resources
from celline_jobs_nb.store.legacy import parse_legacy_records, record_to_job

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)
legacy_record = st.dictionaries(
    st.sampled_from(["job_id", "name", "status", "command", "start_time", "end_time", "log_file", "working_dir",
                     "resources", "exit_code", "job_type", "created_at", "other"]),
    json_values, max_size=10,
)


@settings(max_examples=300)
@given(st.dictionaries(st.text(max_size=20), legacy_record, max_size=5) | st.lists(legacy_record, max_size=5))
def test_any_jobs_json_imports_to_safe_jobs(data):
    for record in parse_legacy_records(json.dumps(data)):
        job = record_to_job(record)
        validate_job_id(job.job_id)  # whatever the file said, the id is a safe file name
        assert job.scheduler == "imported"  # never handed to a scheduler: nothing in the file runs
        assert job.status.final or job.status.value == "unknown"


@given(st.binary(max_size=300))
def test_jobs_json_bytes_raise_only_parse_errors(data):
    try:
        parse_legacy_records(data.decode("utf-8", errors="replace"))
    except ParseError:
        pass


@given(json_values)
def test_exit_and_progress_files_raise_only_parse_errors(value):
    text = json.dumps(value)
    for parse in (parse_exit_record, parse_progress):
        try:
            parse(text)
        except ParseError:
            pass
    parse_tqdm_progress(text)


@given(st.dictionaries(st.text(max_size=12), json_values, max_size=6))
def test_resource_dicts_raise_only_our_errors(value):
    try:
        Resources.from_dict(value)
    except CellineJobsError:
        pass
