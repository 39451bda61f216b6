from __future__ import annotations

import dataclasses
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from celline_jobs_nb import JobInfo, JobMonitor, JobStatus
from celline_jobs_nb.core.errors import InvalidInputError
from celline_jobs_nb.core.models import FINAL_STATUSES, JobType, new_job_id, validate_job_id
from celline_jobs_nb.core.transitions import can_transition


def test_seed_status_values_are_kept():
    assert [JobStatus(v).value for v in ("pending", "running", "completed", "failed", "cancelled")] == [
        "pending", "running", "completed", "failed", "cancelled"]
    assert {s for s in JobStatus if s.final} == {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED}
    assert JobStatus.PENDING.order < JobStatus.QUEUED.order < JobStatus.RUNNING.order < JobStatus.COMPLETED.order


def test_seed_jobinfo_fields_come_first():
    names = [f.name for f in dataclasses.fields(JobInfo)]
    assert names[:9] == ["job_id", "name", "status", "command", "start_time", "end_time", "log_file",
                         "working_dir", "resources"]
    for extra in ("scheduler", "native_id", "job_type", "submit_time", "exit_code", "reason", "attempt",
                  "retry_of", "depends_on", "array_parent", "array_index", "progress", "created_at"):
        assert extra in names


def test_seed_monitor_methods_exist():
    for name in ("submit_job", "get_job_status", "list_jobs", "cancel_job", "get_job", "retry_job", "logs",
                 "refresh", "wait"):
        assert callable(getattr(JobMonitor, name))


@given(st.sampled_from(list(JobStatus)), st.sampled_from(list(JobStatus)))
def test_final_states_never_change(old, new):
    if old in FINAL_STATUSES and new is not old:
        assert not can_transition(old, new)


@pytest.mark.parametrize(("old", "new", "allowed"), [
    ("pending", "running", True), ("running", "completed", True), ("completed", "running", False),
    ("running", "pending", False), ("queued", "held", True), ("held", "queued", True),
    ("running", "unknown", True), ("unknown", "completed", True), ("unknown", "pending", False),
    ("failed", "completed", False), ("running", "queued", False),
])
def test_transition_table(old, new, allowed):
    assert can_transition(JobStatus(old), JobStatus(new)) is allowed


def test_job_ids_are_short_unique_sortable_and_file_safe():
    ids = [new_job_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(re.fullmatch(r"[0-9a-z]{13}", i) for i in ids)


@pytest.mark.parametrize("bad", ["../etc", "a/b", "", "..", "a b", "x" * 65, "a\nb", "a\0b"])
def test_unsafe_job_ids_are_rejected(bad):
    with pytest.raises(InvalidInputError):
        validate_job_id(bad)


def test_job_type_parsing_is_forgiving_but_strict():
    assert JobType.parse("batch_correction") is JobType.BATCH_CORRECTION
    assert JobType.parse("Batch Correction") is JobType.BATCH_CORRECTION
    assert JobType.parse("custom scripts") is JobType.CUSTOM
    assert JobType.parse(None) is JobType.CUSTOM
    with pytest.raises(InvalidInputError, match="unknown job type"):
        JobType.parse("Sequencing")


def test_status_parse_error_lists_valid_values():
    with pytest.raises(InvalidInputError, match="use one of pending, queued"):
        JobStatus.parse("done")


def test_jobinfo_round_trips_through_dict():
    job = JobInfo(job_id=new_job_id(), name="n", command="true", depends_on=["a"], metadata={"k": [1]})
    again = JobInfo.from_dict(job.to_dict())
    assert again == job
    assert job.created_at.tzinfo is not None
