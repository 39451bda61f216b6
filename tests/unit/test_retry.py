from __future__ import annotations

import random

import pytest

from celline_jobs_nb.core.errors import InvalidInputError
from celline_jobs_nb.core.models import JobInfo, JobStatus
from celline_jobs_nb.core.resources import Resources
from celline_jobs_nb.core.retry import RetryPolicy, failure_kind

G = 1024**3


def failed(reason: str | None = None, exit_code: int | None = 1, signal: int | None = None, attempt: int = 1):
    return JobInfo(job_id="j1", name="n", status=JobStatus.FAILED, reason=reason, exit_code=exit_code,
                   signal=signal, attempt=attempt, resources=Resources.parse("mem=8G,time=1:00:00"))


@pytest.mark.parametrize(("reason", "signal", "kind"), [
    ("exit code 3", None, "exit"), ("TIMEOUT (TimeLimit)", None, "timeout"), ("OUT_OF_MEMORY", None, "oom"),
    ("NODE_FAIL", None, "node_fail"), ("killed by signal SIGSEGV", 11, "signal"),
    ("lost: the job's processes ended without recording an exit code", None, "lost"),
])
def test_failure_kinds(reason, signal, kind):
    assert failure_kind(failed(reason, signal=signal)) == kind


def test_only_failed_jobs_have_a_failure_kind():
    job = failed()
    job.status = JobStatus.CANCELLED
    assert failure_kind(job) is None


def test_policy_decides_which_failures_retry():
    policy = RetryPolicy(max_retries=2, retry_on=("exit", "oom"), exit_codes=(1, 2))
    assert policy.should_retry(failed("exit code 1"))
    assert not policy.should_retry(failed("exit code 3", exit_code=3))
    assert not policy.should_retry(failed("TIMEOUT"))
    assert policy.should_retry(failed("OUT_OF_MEMORY", attempt=2))
    assert not policy.should_retry(failed("OUT_OF_MEMORY", attempt=3))  # 1 + 2 retries used up


def test_backoff_grows_with_jitter_and_is_capped():
    policy = RetryPolicy(max_retries=5, backoff=10, backoff_factor=2, max_backoff=35, jitter=0.2)
    rng = random.Random(1)
    delays = [policy.delay(a, rng) for a in (1, 2, 3, 4)]
    assert 8 <= delays[0] <= 12 and 16 <= delays[1] <= 24
    assert all(d <= 35 * 1.2 for d in delays[2:])
    assert len({round(policy.delay(1), 6) for _ in range(20)}) > 1  # jitter spreads a batch


def test_resources_bumped_on_oom_and_timeout_and_capped():
    policy = RetryPolicy(max_retries=3, max_memory=12 * G, max_walltime=5400)
    assert policy.next_resources(failed("OUT_OF_MEMORY")).memory == 12 * G
    assert policy.next_resources(failed("TIMEOUT")).walltime == 5400
    assert policy.next_resources(failed("exit code 1")).memory == 8 * G


def test_policy_round_trips_and_rejects_nonsense():
    policy = RetryPolicy.parse({"max_retries": 2, "max_memory": "64G", "retry_on": ["oom"]})
    assert RetryPolicy.parse(policy.to_dict()) == policy
    assert RetryPolicy.parse(3) == RetryPolicy(max_retries=3)
    with pytest.raises(InvalidInputError, match="unknown failure kind 'gremlins'"):
        RetryPolicy(max_retries=1, retry_on=("gremlins",))
    with pytest.raises(InvalidInputError, match="unknown retry setting 'tries'"):
        RetryPolicy.parse({"tries": 3})
    with pytest.raises(InvalidInputError, match="invalid max_retries"):
        RetryPolicy(max_retries=-1)
