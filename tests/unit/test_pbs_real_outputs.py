"""PBS exit statuses and states as real installations report them (tests/data/pbs/real, see its
SOURCE.md): PBS's own negative codes per flavour, Torque's 271 on a job that never started, M.

Poll tests replay the recorded records through a CommandRunner stand-in. Torque is polled with
``qstat -x`` (XML); the recorded Torque samples are ``qstat -f`` text, so ``as_torque_xml`` carries
the same attribute values in the XML shape (``<Data><Job><attr>value</attr>...``) -- the values are
the recorded ones, only their envelope differs.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from support import Replay

from celline_jobs_nb.core.models import JobInfo, JobStatus
from celline_jobs_nb.core.paths import ProjectPaths
from celline_jobs_nb.schedulers.base import SchedulerContext
from celline_jobs_nb.schedulers.pbs import (
    OPENPBS,
    TORQUE,
    PbsRecord,
    PbsScheduler,
    interpret_exit_status,
    map_state,
    parse_qstat_full,
    parse_qstat_json,
)
from celline_jobs_nb.schedulers.pbs.exits import OPENPBS_EXEC_CODES, TORQUE_EXEC_CODES
from celline_jobs_nb.store.sqlite import JobStore

REAL = Path(__file__).resolve().parents[1] / "data" / "pbs" / "real"


def real(name: str) -> str:
    return (REAL / name).read_text(encoding="utf-8")


def code_table(name: str) -> dict[int, str]:
    return {int(code): label for code, label in (line.split() for line in real(name).splitlines() if line.strip())}


@pytest.fixture
def ctx(tmp_path):
    paths = ProjectPaths.of(tmp_path)
    return SchedulerContext(paths, JobStore(paths), {})


def poll_one(ctx, flavour: str, native_id: str, output: str, *, status=JobStatus.QUEUED, cancel=False,
             job_id: str = "j1"):
    context = SchedulerContext(ctx.paths, ctx.store, {"pbs_flavour": flavour})
    adapter = PbsScheduler(context)
    adapter.runner = Replay([(["qstat"], output, "", 0)])
    metadata = {"cancel_requested": True} if cancel else {}
    job = JobInfo(job_id=job_id, name="j", status=status, command="true", scheduler="pbs", native_id=native_id,
                  metadata=metadata)
    ctx.store.insert(job)
    result = adapter.poll([job])
    ctx.store.apply(result.updates)
    [update] = [u for u in result.updates if u.job_id == job_id]
    return update, ctx.store.get(job_id)


def as_torque_xml(record: PbsRecord) -> str:
    attrs = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in record.attributes.items() if "." not in k and "(" not in k)
    return f"<Data><Job><Job_Id>{escape(record.job_id)}</Job_Id>{attrs}</Job></Data>"


def openpbs_json(job_id: str, **attrs: object) -> str:
    import json
    return json.dumps({"timestamp": 1, "pbs_version": "20.0.1", "pbs_server": "pbs", "Jobs": {job_id: attrs}})


# -- the code tables cover every value the schedulers define -------------------------------------

def test_every_openpbs_exec_code_has_a_name_and_a_kind():
    recorded = code_table("openpbs-job-exec-codes.txt")
    for code, name in recorded.items():
        if code == 0:
            continue
        assert OPENPBS_EXEC_CODES[code][0] == name
        meaning = interpret_exit_status(code, OPENPBS)
        assert name in meaning.reason and meaning.kind and "could not run" not in meaning.reason
    kinds = {code: interpret_exit_status(code, OPENPBS).kind for code in recorded if code}
    assert kinds[-29] == "timeout" and kinds[-28] == "timeout"
    assert kinds[-27] == "oom" and kinds[-26] == "oom"
    assert kinds[-24] == kinds[-25] == "limit"
    assert kinds[-20] == "node_fail" and kinds[-14] == "node_fail"
    assert kinds[-11] == "preempted" and kinds[-19] == "cancelled"


def test_every_torque_exit_code_has_a_name_and_a_kind():
    recorded = code_table("torque-job-exit-codes.txt")
    for code, name in recorded.items():
        if code:
            assert TORQUE_EXEC_CODES[code][0] == name and name in interpret_exit_status(code, TORQUE).reason
    assert interpret_exit_status(-11, TORQUE).kind == "timeout"  # Torque: walltime (PBS Pro: rerun)
    assert interpret_exit_status(-10, TORQUE).kind == "oom"
    unknown = interpret_exit_status(-31, TORQUE)  # beyond the table: PBS's own, without a name
    assert unknown.reason == "PBS ended the job with its own code (Exit_status -31)" and unknown.kind


# -- a PBS Pro walltime kill is a timeout, not "PBS could not run the job" ----------------------

def test_openpbs_job_killed_at_its_walltime_after_running_is_a_timeout(ctx):
    line = real("metacentrum-qstat-x-f-exit-status.txt").splitlines()[1]  # "    Exit_status = -29"
    value = int(line.split("=")[1])
    output = openpbs_json("13030457.meta-pbs.metacentrum.cz", job_state="F", Exit_status=value,
                          stime="Mon Mar 13 08:00:00 2023", obittime="Mon Mar 13 14:00:05 2023",
                          exec_host="zenon41/0*8")
    _, job = poll_one(ctx, OPENPBS, "13030457.meta-pbs.metacentrum.cz", output, status=JobStatus.RUNNING)
    assert job.status is JobStatus.FAILED
    assert job.reason.startswith("PBS killed the job: it exceeded its walltime limit")
    assert "JOB_EXEC_KILL_WALLTIME" in job.reason and job.metadata["failure_kind"] == "timeout"
    assert job.start_time is not None and job.end_time is not None


def test_openpbs_limit_kill_by_signal_reads_the_kind_from_pbs_comment(ctx):
    output = openpbs_json("7.pbs", job_state="F", Exit_status=271, stime="Mon Mar 13 08:00:00 2023",
                          exec_host="n1/0", comment="job killed: vmem 205520896000b exceeded limit 204010946560b")
    _, job = poll_one(ctx, OPENPBS, "7.pbs", output, status=JobStatus.RUNNING)
    assert job.status is JobStatus.FAILED and job.signal == 15
    assert job.metadata["failure_kind"] == "oom" and "vmem" in job.reason


# -- Torque 271 on a job that never started is a deletion ----------------------------------------

def test_torque_271_never_started_with_a_dependency_comment_is_cancelled_with_that_reason(ctx):
    [record] = parse_qstat_full(real("torque-qstat-f-271-dependency-never-started.txt"), TORQUE)
    assert record.exit_status == 271 and not record.started
    _, job = poll_one(ctx, TORQUE, record.job_id, as_torque_xml(record))
    assert job.status is JobStatus.CANCELLED
    assert job.reason == ("DependencyNeverSatisfied: Job 48[].torque01.bcgsc.ca deleted because its dependency "
                          "of array 43[].torque01.bcgsc.ca can never be satisfied")
    assert job.metadata["failure_kind"] == "dependency"
    assert job.exit_code is None and job.signal is None and job.start_time is None


def test_torque_271_never_started_without_a_comment_is_a_deletion(ctx):
    # The recorded record without its dependency comment (derived: a qdel of a queued job).
    [record] = parse_qstat_full(real("torque-qstat-f-271-dependency-never-started.txt"), TORQUE)
    attrs = {k: v for k, v in record.attributes.items() if k not in ("comment", "depend")}
    xml = as_torque_xml(PbsRecord(record.job_id, record.state, attributes=attrs))
    _, job = poll_one(ctx, TORQUE, record.job_id, xml)
    assert job.status is JobStatus.CANCELLED and job.reason == "deleted before it started"
    assert job.metadata["failure_kind"] == "cancelled"


def test_torque_271_never_started_that_we_cancelled_is_cancelled_by_user(ctx):
    [record] = parse_qstat_full(real("torque-qstat-f-271-dependency-never-started.txt"), TORQUE)
    _, job = poll_one(ctx, TORQUE, record.job_id, as_torque_xml(record), cancel=True)
    assert job.status is JobStatus.CANCELLED and job.reason == "cancelled by user"


def test_torque_job_that_ran_keeps_its_exit_status(ctx):
    [record] = parse_qstat_full(real("torque-qstat-f-completed.txt"), TORQUE)
    assert record.started and record.exit_status == 0
    _, job = poll_one(ctx, TORQUE, record.job_id, as_torque_xml(record), status=JobStatus.RUNNING)
    assert job.status is JobStatus.COMPLETED and job.exit_code == 0
    ran = {**record.attributes, "exit_status": "271"}
    xml = as_torque_xml(PbsRecord("10.torque01.bcgsc.ca", "C", attributes=ran))
    _, killed = poll_one(ctx, TORQUE, "10.torque01.bcgsc.ca", xml, status=JobStatus.RUNNING, job_id="j2")
    assert killed.status is JobStatus.FAILED and killed.signal == 15 and killed.reason == "killed by signal SIGTERM"


# -- M: moved to another server is not cancelled --------------------------------------------------

def test_moved_job_stays_active_with_a_reason(ctx):
    assert map_state("M", OPENPBS)[0] is JobStatus.UNKNOWN and not JobStatus.UNKNOWN.final
    output = openpbs_json("13031539.meta-pbs.metacentrum.cz", job_state="M", queue="q@cerit-pbs.cerit-sc.cz")
    assert parse_qstat_json(output)[0].state == "M"
    _, job = poll_one(ctx, OPENPBS, "13031539.meta-pbs.metacentrum.cz", output)
    assert job.status is JobStatus.UNKNOWN and job.status.active
    assert "moved to another PBS server (q@cerit-pbs.cerit-sc.cz)" in job.reason and "may still run" in job.reason


def test_retry_decides_on_the_stored_kind_not_on_the_text(ctx):
    from celline_jobs_nb.core.resources import Resources
    from celline_jobs_nb.core.retry import RetryPolicy, failure_kind

    output = openpbs_json("9.pbs", job_state="F", Exit_status=-27, stime="Mon Mar 13 08:00:00 2023", exec_host="n1/0")
    _, job = poll_one(ctx, OPENPBS, "9.pbs", output, status=JobStatus.RUNNING)
    assert failure_kind(job) == "oom"
    job = job.__class__(**{**job.__dict__, "resources": Resources(memory=4 * 1024**3)})
    assert RetryPolicy(max_retries=1).next_resources(job).memory == 8 * 1024**3
    # Older rows without a stored kind are still read from their text.
    legacy = JobInfo(job_id="old", name="o", status=JobStatus.FAILED, reason="TIMEOUT (reported by Slurm)")
    assert failure_kind(legacy) == "timeout"
