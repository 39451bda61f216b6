"""SLURM parsers and poll decisions, on real recorded outputs (tests/data/slurm, see its INDEX.md).

The poll tests replay recorded command outputs through a CommandRunner stand-in: the texts are
real, only their delivery is canned (the real cluster runs in tests/integration/test_slurm.py).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import Replay

from celline_jobs_nb.core.errors import ParseError, SchedulerError, SubmitError
from celline_jobs_nb.core.jobfiles import write_exit_file
from celline_jobs_nb.core.models import JobInfo, JobStatus
from celline_jobs_nb.core.paths import ProjectPaths
from celline_jobs_nb.core.resources import Resources
from celline_jobs_nb.core.usage import efficiency
from celline_jobs_nb.schedulers.base import SchedulerContext
from celline_jobs_nb.schedulers.slurm import (
    ACCOUNTING_META_KEY,
    SLURM_STATES,
    SlurmScheduler,
    map_state,
    normalise_state,
    parse_array_spec,
    parse_duration,
    parse_exit_code,
    parse_sacct,
    parse_sacct_table,
    parse_sbatch_output,
    parse_scontrol_jobs,
    parse_slurm_memory,
    parse_slurm_time,
    parse_squeue,
    parse_squeue_line,
    scontrol_accounting,
)
from celline_jobs_nb.store.sqlite import JobStore

DATA = Path(__file__).resolve().parents[1] / "data" / "slurm"
REF = DATA / "reference"
REC = DATA / "recorded"


def ref(name: str) -> str:
    return (REF / name).read_text(encoding="utf-8")


def rec(name: str) -> str:
    return (REC / name).read_text(encoding="utf-8")


def local(text: str) -> datetime:
    """What SLURM means by a naive timestamp: this machine's local time."""
    return datetime.fromisoformat(text).astimezone().astimezone(timezone.utc)


# -- states -----------------------------------------------------------------------------------

ISSUE_COMPACT_STATES = ["PD", "R", "CG", "CD", "F", "CA", "TO", "OOM", "NF", "PR", "S", "RQ", "RH", "RS", "SE",
                        "ST", "BF", "DL", "RV", "SI", "SO", "CF", "RD", "RF"]
LONG_STATES = ["PENDING", "RUNNING", "COMPLETING", "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY",
               "NODE_FAIL", "PREEMPTED", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD", "RESIZING", "SPECIAL_EXIT",
               "STOPPED", "BOOT_FAIL", "DEADLINE", "REVOKED", "SIGNALING", "STAGE_OUT", "CONFIGURING",
               "RESV_DEL_HOLD", "REQUEUE_FED"]


@pytest.mark.parametrize("state", ISSUE_COMPACT_STATES + LONG_STATES)
def test_every_slurm_state_is_mapped(state):
    status, known = map_state(state)
    assert known and status is not JobStatus.UNKNOWN
    assert map_state(state.lower()) == (status, True)


def test_compact_and_long_names_agree():
    for compact in ISSUE_COMPACT_STATES:
        assert map_state(compact)[0] is SLURM_STATES[normalise_state(compact)]


@pytest.mark.parametrize(("text", "expected"), [
    ("PD", JobStatus.QUEUED), ("R", JobStatus.RUNNING), ("CG", JobStatus.RUNNING), ("CD", JobStatus.COMPLETED),
    ("F", JobStatus.FAILED), ("CA", JobStatus.CANCELLED), ("TO", JobStatus.FAILED), ("OOM", JobStatus.FAILED),
    ("NF", JobStatus.FAILED), ("RH", JobStatus.HELD), ("RV", JobStatus.CANCELLED),
    ("CANCELLED by 0", JobStatus.CANCELLED),  # sacct with slurmdbd, after scancel by uid 0
    ("CANCELLED by 1234", JobStatus.CANCELLED),
    ("CANCELLED+", JobStatus.CANCELLED),  # sacct truncates long states with "+"
    ("  running  ", JobStatus.RUNNING),
])
def test_state_examples(text, expected):
    assert map_state(text) == (expected, True)


@pytest.mark.parametrize("text", ["", "WEIRD_NEW_STATE", "42", "PENDINGX"])
def test_unknown_states_map_to_unknown_not_an_error(text):
    assert map_state(text) == (JobStatus.UNKNOWN, False)


def test_every_state_in_the_recorded_squeue_outputs_is_known():
    seen = set()
    for name in ("squeue-pipe-t2-mixed.txt", "squeue-pipe-t4-array-running.txt", "squeue-pipe-t5-final.txt"):
        for line in ref(name).splitlines():
            seen.add(line.split("|")[2])
    for line in ref("squeue-O-t2-mixed.txt").splitlines():
        seen.add(line.split()[1])  # compact codes: CA, CD, F, PD, R
    assert {"PD", "R", "CD", "F", "CA", "TIMEOUT", "PENDING", "RUNNING", "COMPLETED"} <= seen
    assert all(map_state(s)[1] for s in seen), seen


# -- small field parsers ----------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("3:0", (3, None)), ("0:0", (0, None)), ("0:9", (None, 9)), ("0:15", (None, 15)), ("5:0", (5, None)),
    ("1:15", (1, 15)),
])
def test_exit_codes(text, expected):
    assert parse_exit_code(text) == expected


@pytest.mark.parametrize("text", ["", "3", "a:b", "3:0:1", "-1:0", "3 :0"])
def test_bad_exit_codes(text):
    with pytest.raises(ParseError):
        parse_exit_code(text)


def test_times_are_local_and_returned_as_utc():
    value = parse_slurm_time("2026-11-28T20:39:29")
    assert value == local("2026-11-28T20:39:29") and value.tzinfo is timezone.utc
    for empty in ("N/A", "NONE", "Unknown", "None", "", "(null)"):
        assert parse_slurm_time(empty) is None
    with pytest.raises(ParseError):
        parse_slurm_time("yesterday")


@pytest.mark.parametrize(("text", "seconds"), [
    ("00:00:04", 4), ("1:00", 60), ("00:01:23", 83), ("00:00.007", 0.007), ("1-02:03:04", 93784),
    ("365-00:00:00", 365 * 86400),
])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


def test_duration_none_and_errors():
    assert parse_duration("UNLIMITED") is None and parse_duration("") is None and parse_duration("INVALID") is None
    with pytest.raises(ParseError):
        parse_duration("4 seconds")


@pytest.mark.parametrize(("text", "size"), [
    ("95376K", 95376 * 1024), ("21694M", 21694 * 1024**2), ("4000Mc", 4000 * 1024**2), ("2Gn", 2 * 1024**3),
    ("0", 0), ("512", 512),
])
def test_memory(text, size):
    assert parse_slurm_memory(text) == size


def test_array_specs():
    assert parse_array_spec("1-4%2") == [1, 2, 3, 4]
    assert parse_array_spec("1,3,5") == [1, 3, 5]
    assert parse_array_spec("0-15:4") == [0, 4, 8, 12]
    assert parse_array_spec("1-3,7") == [1, 2, 3, 7]
    for bad in ("", "N/A", "4-1", "1-4:0", "a", "1--3"):
        with pytest.raises(ParseError):
            parse_array_spec(bad)
    with pytest.raises(ParseError):
        parse_array_spec("0-999999999")  # far beyond MaxArraySize: refused, not expanded


def test_sbatch_outputs():
    assert parse_sbatch_output(ref("sbatch-parsable.txt")) == ("1", None)
    assert parse_sbatch_output(ref("sbatch-plain.txt")) == ("2", None)
    assert parse_sbatch_output("123;cluster2\n") == ("123", "cluster2")  # --parsable on a federation
    assert parse_sbatch_output("sbatch: warning: something\n77\n") == ("77", None)
    with pytest.raises(ParseError):
        parse_sbatch_output("")
    with pytest.raises(ParseError):
        parse_sbatch_output(ref("sbatch-invalid-partition.stderr.txt"))


# -- squeue -----------------------------------------------------------------------------------

def test_squeue_poll_format_mid_run():
    records = {r.key: r for r in parse_squeue(rec("squeue-poll-t1-mixed.txt"))}
    assert set(records) == {"25", "26", "27", "28", "29_1", "29_2", "29_3", "29_4", "30", "31", "32", "33", "34"}
    assert records["25"].state == "RUNNING" and records["25"].nodes == "vm"
    assert records["25"].start == local("2026-11-28T21:45:48")
    assert records["28"].reason == "Dependency" and records["28"].start is None
    assert records["30"].reason == "JobHeldUser"
    assert records["31"].reason == "BeginTime"
    task = records["29_3"]
    assert (task.raw_id, task.array_job_id, task.task_index, task.display_id) == ("29", "29", 3, "29_3")
    assert records["25"].reason is None and records["25"].array_job_id is None


def test_squeue_poll_format_final():
    records = {r.key: r for r in parse_squeue(rec("squeue-poll-t2-final.txt"))}
    assert records["26"].state == "FAILED" and records["26"].reason == "NonZeroExitCode"
    assert records["27"].reason == "JobLaunchFailure"
    assert records["28"].state == "CANCELLED" and records["28"].reason == "DependencyNeverSatisfied"
    assert records["34"].state == "CANCELLED"  # cancelled while held keeps its pending reason
    assert {records[f"29_{i}"].raw_id for i in range(1, 5)} == {"35", "36", "37", "29"}  # last task keeps 29
    assert records["29_1"].end == local("2026-11-28T21:45:53")


def test_squeue_unexpanded_array_record():
    line = "29|29|1-4%2|29_[1-4%2]|PENDING|Priority|N/A|N/A|"
    record = parse_squeue_line(line)
    assert record.task_index is None and record.array_task == "1-4%2" and record.key == "29"


def test_squeue_queue_format_keeps_names_with_pipes_and_skips_broken_lines():
    text = rec("squeue-queue-t1.txt")
    with pytest.raises(ParseError):
        parse_squeue(text, with_user_and_name=True)  # a name with a newline splits its line
    records = parse_squeue(text, with_user_and_name=True, strict=False)
    names = {r.raw_id: r.name for r in records}
    assert names["32"] == 'odd | "name" $x <d>'
    assert names["33"] == "multi"  # the rest of that name was on the next line, which is skipped
    assert names["29"] == "array_job" and all(r.user == "root" for r in records)


def test_squeue_rejects_foreign_shapes():
    with pytest.raises(ParseError):
        parse_squeue(ref("squeue-pipe-t2-mixed.txt"))  # another field order: refused, not misread
    with pytest.raises(ParseError):
        parse_squeue_line("x|1|N/A|1|RUNNING|None|N/A|N/A|")


# -- sacct ------------------------------------------------------------------------------------

def test_sacct_with_slurmdbd_and_steps():
    records = {r.job_id: r for r in parse_sacct(ref("dbd-sacct-steps-final.txt"))}
    assert records["1"].state == "COMPLETED" and records["1"].exit_code == 0
    assert (records["2"].state, records["2"].exit_code, records["2"].signal) == ("FAILED", 3, None)
    assert (records["3"].exit_code, records["3"].signal) == (None, 9)
    assert records["11"].state == "CANCELLED"  # "CANCELLED by 0"
    assert records["12"].state == "TIMEOUT"
    assert records["7"].derived_exit_code == 5  # an srun step failed inside a job that exited 0
    assert records["6_1"].raw_id == "8"
    usage = records["10"].usage
    assert usage["max_rss_bytes"] == 95376 * 1024  # from the srun step: the job line has no MaxRSS
    assert usage["req_mem_bytes"] == 21694 * 1024**2 and usage["alloc_cpus"] == 1
    assert usage["elapsed_seconds"] == 150 and usage["cpu_seconds"] == pytest.approx(0.211)
    cpu_eff, mem_eff = efficiency(usage)
    assert 0 < mem_eff < 0.01 and 0 < cpu_eff < 0.01
    assert "." not in "".join(records)  # steps fold into their job


def test_sacct_never_started_jobs_keep_their_reason():
    records = {r.job_id: r for r in parse_sacct(ref("dbd-sacct-X-j-never-started.txt"))}
    assert records["4"].state == "CANCELLED" and records["4"].reason == "Dependency" and records["4"].start is None
    assert records["14"].state == "PENDING" and records["14"].reason == "JobHeldUser"


def test_sacct_jobcomp_filetxt_with_a_broken_name():
    records = {r.job_id: r for r in parse_sacct(ref("sacct-filetxt-t5-final.txt"))}
    assert records["2"].exit_code == 3 and records["3"].signal == 9
    assert records["12"].state == ""  # a name with spaces breaks filetxt: no state, so no evidence
    assert map_state(records["12"].state) == (JobStatus.UNKNOWN, False)
    assert records["15"].state == "COMPLETED"  # array tasks under their raw ids


def test_sacct_recorded_jobcomp_in_our_field_list():
    records = {r.job_id: r for r in parse_sacct(rec("sacct-c-final.txt"))}
    assert records["26"].exit_code == 3 and records["26"].submit == local("2026-11-28T21:45:48")
    assert records["27"].signal == 9 and records["34"].state == "CANCELLED"


def test_sacct_empty_and_headers():
    assert parse_sacct(ref("sacct-filetxt-unknown-id.txt")) == []
    assert parse_sacct(ref("dbd-sacct-j-unknown.txt")) == []
    assert parse_sacct("") == []
    with pytest.raises(ParseError):
        parse_sacct("1|2|3\n")
    rows = parse_sacct_table("JobID|State|JobName\n5|COMPLETED|a|b|c\n")
    assert rows == [{"JobID": "5", "State": "COMPLETED", "JobName": "a|b|c"}]


# -- scontrol ---------------------------------------------------------------------------------

def test_scontrol_multiline_records():
    [job] = parse_scontrol_jobs(ref("scontrol-show-job-12-completed.txt"))
    assert job["JobName"] == "my job \"quoted\" it's <b>bold</b> & more"
    assert job["JobState"] == "COMPLETED" and job["StdOut"].endswith("slurm-12.out")
    [timeout] = parse_scontrol_jobs(ref("scontrol-show-job-7-timeout.txt"))
    facts = scontrol_accounting(timeout)
    assert (facts.state, facts.exit_code, facts.signal) == ("TIMEOUT", None, 15)
    [dep] = parse_scontrol_jobs(ref("scontrol-show-job-4.txt"))
    assert dep["Reason"] == "DependencyNeverSatisfied" and dep["Dependency"] == "afterok:2(failed)"
    [odd] = parse_scontrol_jobs(rec("scontrol-odd-name.txt"))
    assert odd["JobName"] == 'odd | "name" $x <d>'


def test_scontrol_array_records_name_their_tasks():
    records = [scontrol_accounting(r) for r in parse_scontrol_jobs(ref("scontrol-show-job-8-array-running.txt"))]
    assert [(r.job_id, r.raw_id, r.state) for r in records] == [
        ("8_4", "8", "PENDING"), ("8_3", "17", "RUNNING"), ("8_2", "16", "RUNNING"), ("8_1", "15", "COMPLETED")]
    one_line = parse_scontrol_jobs(rec("scontrol-o-array.txt"))
    assert [r["ArrayTaskId"] for r in one_line] == ["4", "3", "2", "1"]


def test_scontrol_one_line_layout():
    records = parse_scontrol_jobs(ref("scontrol-show-job-oneliner-all-t5.txt"))
    assert len(records) == 17
    by_id = {r["JobId"]: r for r in records}
    assert by_id["2"]["ExitCode"] == "3:0"
    [odd] = parse_scontrol_jobs(ref("scontrol-show-job-oneliner-12.txt"))
    assert odd["JobName"] == "my job \"quoted\" it's <b>bold</b> & more" and odd["UserId"] == "root(0)"
    [fail] = parse_scontrol_jobs(rec("scontrol-o-fail.txt"))
    assert scontrol_accounting(fail).exit_code == 3 and parse_duration(fail["TimeLimit"]) == 365 * 86400


def test_scontrol_rejects_other_text():
    with pytest.raises(ParseError):
        parse_scontrol_jobs(ref("scontrol-show-job-unknown.stderr.txt"))
    assert parse_scontrol_jobs("") == []


# -- property tests: any text -> a result or ParseError, never another exception ---------------

PARSERS = [parse_exit_code, parse_slurm_time, parse_duration, parse_slurm_memory, parse_array_spec,
           parse_sbatch_output, parse_squeue, parse_sacct, parse_scontrol_jobs,
           lambda t: parse_squeue(t, with_user_and_name=True, strict=False), normalise_state, map_state]
TOKENS = st.sampled_from(["", "1", "29", "29_3", "N/A", "NONE", "None", "RUNNING", "CANCELLED by 0", "3:0", "0:9",
                          "2026-11-28T21:45:48", "9999-99-99T99:99:99", "1-4%2", "0-15:4", "vm", "|", "=", "JobId=",
                          "JobId=1", "JobName=a b", "ExitCode=x", "00:00.007", "95376K", "4000Mc", "\n", " ", "%",
                          "JobID|State|ExitCode", "JobID", "0" * 5000, "9" * 30])
TEXT = st.one_of(st.text(), st.lists(TOKENS, max_size=30).map("".join),
                 st.lists(st.lists(TOKENS, max_size=12).map("|".join), max_size=6).map("\n".join))


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_parsers_raise_only_parse_error(text):
    for parser in PARSERS:
        try:
            parser(text)
        except ParseError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(TOKENS, min_size=9, max_size=11).map("|".join), max_size=5).map("\n".join))
def test_squeue_lines_of_the_right_width(text):
    try:
        records = parse_squeue(text)
    except ParseError:
        return
    for record in records:
        assert record.key and record.state


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(ISSUE_COMPACT_STATES + LONG_STATES + ["BOGUS", "CANCELLED by 7"]), max_size=5))
def test_state_map_total(states):
    for state in states:
        status, known = map_state(state)
        assert isinstance(status, JobStatus) and (known or status is JobStatus.UNKNOWN)


# -- poll decisions on replayed real outputs --------------------------------------------------

@pytest.fixture
def ctx(tmp_path):
    paths = ProjectPaths.of(tmp_path)
    store = JobStore(paths)
    return SchedulerContext(paths, store, {})


def adapter_with(ctx, answers) -> tuple[SlurmScheduler, Replay]:
    adapter = SlurmScheduler(ctx)
    adapter.runner = Replay(answers)
    return adapter, adapter.runner


def tracked(ctx, native_id: str, *, status=JobStatus.QUEUED, submitted="2026-11-28T21:45:48", **extra) -> JobInfo:
    job = JobInfo(job_id=f"job{native_id}", name=f"job {native_id}", status=status, command="true",
                  scheduler="slurm", native_id=native_id, submit_time=local(submitted), **extra)
    ctx.store.insert(job)
    return job


def apply(ctx, result):
    ctx.store.apply(result.updates)
    return {u.job_id: u for u in result.updates}


SQUEUE_T2 = (["squeue"], rec("squeue-poll-t2-final.txt"), "", 0)


def test_poll_is_one_squeue_call_for_many_jobs(ctx):
    jobs = [tracked(ctx, n) for n in ("25", "26", "27", "28", "30", "31", "32", "33", "34")]
    for job in jobs:  # every finished job has its exit-code file, except the never-started ones
        if job.native_id in ("25", "32", "33"):
            write_exit_file(ctx.paths.exit_file(job.job_id), 0, None)
        elif job.native_id == "26":
            write_exit_file(ctx.paths.exit_file(job.job_id), 3, None)
        elif job.native_id == "27":
            write_exit_file(ctx.paths.exit_file(job.job_id), None, 9)
    adapter, runner = adapter_with(ctx, [SQUEUE_T2])
    ctx.store.set_meta(ACCOUNTING_META_KEY, f"jobcomp@{time.time():.0f}")
    result = adapter.poll(jobs)
    assert result.calls == 1 and runner.commands[0][:6] == ["squeue", "-h", "-r", "-t", "all", "-j"]
    assert runner.commands[0][6] == "25,26,27,28,30,31,32,33,34"
    updates = apply(ctx, result)
    assert updates["job25"].status is JobStatus.COMPLETED and updates["job25"].fields["exit_code"] == 0
    assert updates["job26"].status is JobStatus.FAILED and updates["job26"].fields["exit_code"] == 3
    assert updates["job26"].fields["reason"] == "exit code 3"
    assert updates["job27"].fields["signal"] == 9 and updates["job27"].fields["reason"] == "killed by signal SIGKILL"
    assert updates["job28"].status is JobStatus.CANCELLED
    assert updates["job28"].fields["reason"].startswith("DependencyNeverSatisfied")
    assert updates["job30"].status is JobStatus.HELD and updates["job30"].fields["reason"] == "JobHeldUser"
    assert updates["job31"].status is JobStatus.QUEUED and updates["job31"].fields["reason"] == "BeginTime"
    assert "start_time" not in updates["job31"].fields  # a pending job's %S is only an estimate
    assert updates["job34"].status is JobStatus.CANCELLED
    assert "start_time" not in updates["job34"].fields and "start_time" not in updates["job28"].fields  # never ran
    assert updates["job34"].fields["end_time"] == local("2026-11-28T21:45:49")
    assert ctx.store.get("job25").end_time == updates["job25"].fields["end_time"]


def test_failed_in_squeue_without_exit_file_asks_accounting_once(ctx):
    job = tracked(ctx, "26")
    adapter, runner = adapter_with(ctx, [SQUEUE_T2, (["sacct", "-c"], rec("sacct-c-final.txt"), "", 0)])
    ctx.store.set_meta(ACCOUNTING_META_KEY, f"jobcomp@{time.time():.0f}")
    result = adapter.poll([job])
    assert result.calls == 2 and runner.commands[1][:5] == ["sacct", "-c", "-P", "-j", "26"]
    update = apply(ctx, result)["job26"]
    assert (update.status, update.fields["exit_code"]) == (JobStatus.FAILED, 3)


def test_accounting_probe_happens_once_and_is_remembered(ctx):
    job = tracked(ctx, "26")
    answers = [SQUEUE_T2, (["sacct", "-c"], rec("sacct-c-final.txt"), "", 0),
               (["sacct", "-P"], "", ref("sacct-nodbd-plain-t2.stderr.txt"), 1)]
    adapter, _ = adapter_with(ctx, answers)
    assert adapter.poll([job]).calls == 3  # squeue, the sacct probe, sacct -c
    assert ctx.store.get_meta(ACCOUNTING_META_KEY).startswith("jobcomp@")
    other, runner2 = adapter_with(ctx, answers)  # another process: reads the remembered mode
    assert other.poll([job]).calls == 2
    assert [c[:2] for c in runner2.commands] == [["squeue", "-h"], ["sacct", "-c"]]


def test_job_that_left_squeue_is_resolved_from_its_exit_file_without_a_call(ctx):
    job = tracked(ctx, "999", status=JobStatus.RUNNING)
    write_exit_file(ctx.paths.exit_file(job.job_id), 0, None)
    adapter, _ = adapter_with(ctx, [(["squeue"], "", ref("squeue-unknown-id-h-pipe.stderr.txt"), 1)])
    ctx.store.set_meta(ACCOUNTING_META_KEY, f"jobcomp@{time.time():.0f}")
    result = adapter.poll([job])
    assert result.calls == 1
    assert apply(ctx, result)["job999"].status is JobStatus.COMPLETED


def test_job_that_left_squeue_is_resolved_from_jobcomp(ctx):
    job = tracked(ctx, "27", status=JobStatus.RUNNING, submitted="2026-11-28T21:45:49")
    adapter, _ = adapter_with(ctx, [(["squeue"], "", "", 0), (["sacct", "-c"], rec("sacct-c-final.txt"), "", 0)])
    ctx.store.set_meta(ACCOUNTING_META_KEY, f"jobcomp@{time.time():.0f}")
    result = adapter.poll([job])
    assert result.calls == 2
    update = apply(ctx, result)["job27"]
    assert (update.status, update.fields["signal"]) == (JobStatus.FAILED, 9)
    assert update.fields["start_time"] == local("2026-11-28T21:45:49")


def test_reused_ids_in_jobcomp_are_told_apart_by_time(ctx):
    # dbd-sacct-c-filetxt-final holds job 5 twice: run_long (cancelled, 20:39) and, after the
    # controller state was wiped, the odd-name job 5 (20:44, state lost to the filetxt bug).
    answers = [(["squeue"], "", "", 0), (["sacct", "-c"], ref("dbd-sacct-c-filetxt-final.txt"), "", 0)]
    ctx.store.set_meta(ACCOUNTING_META_KEY, f"jobcomp@{time.time():.0f}")
    old = tracked(ctx, "5", status=JobStatus.RUNNING, submitted="2026-11-28T20:39:50")
    adapter, _ = adapter_with(ctx, answers)
    assert apply(ctx, adapter.poll([old]))["job5"].status is JobStatus.CANCELLED
    ctx2 = SchedulerContext(ctx.paths, JobStore(ProjectPaths.of(ctx.paths.root / "other")), {})
    ctx2.store.set_meta(ACCOUNTING_META_KEY, f"jobcomp@{time.time():.0f}")
    new = tracked(ctx2, "5", status=JobStatus.RUNNING, submitted="2026-11-28T20:44:12")
    adapter, _ = adapter_with(ctx2, answers)
    update = apply(ctx2, adapter.poll([new]))["job5"]
    assert update.status is None and "missing_since" in update.fields["metadata"]  # a broken record is no evidence


def test_missing_without_evidence_is_kept_then_unknown_after_the_grace(ctx, caplog):
    job = tracked(ctx, "4242", status=JobStatus.RUNNING)
    answers = [(["squeue"], "", "", 0), (["sacct", "-c"], ref("sacct-filetxt-unknown-id.txt"), "", 0)]
    ctx.store.set_meta(ACCOUNTING_META_KEY, f"jobcomp@{time.time():.0f}")
    adapter, _ = adapter_with(ctx, answers)
    apply(ctx, adapter.poll([job]))
    job = ctx.store.get("job4242")
    assert job.status is JobStatus.RUNNING and job.metadata["missing_since"] > 0
    assert apply(ctx, adapter.poll([job])) == {}  # still within the grace period: nothing changes
    ctx.store.update(job.job_id, metadata={"missing_since": time.time() - adapter.missing_grace - 1})
    update = apply(ctx, adapter.poll([ctx.store.get("job4242")]))["job4242"]
    assert update.status is JobStatus.UNKNOWN and "no longer lists job 4242" in update.fields["reason"]
    assert ctx.store.get("job4242").status is JobStatus.UNKNOWN


def test_found_again_clears_the_missing_mark(ctx):
    job = tracked(ctx, "25", status=JobStatus.UNKNOWN, metadata={"missing_since": 1.0})
    write_exit_file(ctx.paths.exit_file(job.job_id), 0, None)
    adapter, _ = adapter_with(ctx, [SQUEUE_T2])
    ctx.store.set_meta(ACCOUNTING_META_KEY, f"jobcomp@{time.time():.0f}")
    apply(ctx, adapter.poll([job]))
    job = ctx.store.get("job25")
    assert job.status is JobStatus.COMPLETED and job.metadata["missing_since"] is None


def test_a_failed_squeue_is_a_scheduler_error(ctx):
    job = tracked(ctx, "25")
    err = "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n"
    adapter, _ = adapter_with(ctx, [(["squeue"], "", err, 1)])
    with pytest.raises(SchedulerError, match="Unable to contact slurm controller"):
        adapter.poll([job])


def test_malformed_squeue_output_is_a_scheduler_error_not_a_crash(ctx):
    job = tracked(ctx, "25")
    adapter, _ = adapter_with(ctx, [(["squeue"], ref("squeue-pipe-t2-mixed.txt"), "", 0)])
    with pytest.raises(SchedulerError, match="unexpected squeue output"):
        adapter.poll([job])


def test_an_unknown_state_is_logged_and_shown_as_unknown(ctx, caplog):
    job = tracked(ctx, "25")
    line = "25|25|N/A|25|QUANTUM_TUNNELLING|None|N/A|N/A|vm\n"
    adapter, _ = adapter_with(ctx, [(["squeue"], line, "", 0)])
    with caplog.at_level(logging.WARNING, logger="celline.job"):
        update = apply(ctx, adapter.poll([job]))["job25"]
    assert update.status is JobStatus.UNKNOWN and "QUANTUM_TUNNELLING" in update.fields["reason"]
    assert "QUANTUM_TUNNELLING" in caplog.text


def test_array_tasks_become_child_updates_and_the_parent_summarises(ctx):
    parent = tracked(ctx, "29", metadata={"array": "1-4%2"})
    adapter, _ = adapter_with(ctx, [(["squeue"], rec("squeue-poll-t1-mixed.txt"), "", 0)])
    updates = adapter.poll([parent]).updates
    children = [u for u in updates if u.job_id != "job29"]
    assert [u.job_id for u in children] == [f"job29_{i}" for i in range(1, 5)]
    for index, update in enumerate(children, start=1):
        assert update.fields["array_parent"] == "job29" and update.fields["array_index"] == index
        assert update.fields["native_id"] == f"29_{index}" and update.status is JobStatus.QUEUED
    [summary] = [u for u in updates if u.job_id == "job29"]
    assert summary.status is JobStatus.QUEUED and summary.fields["metadata"]["array_tasks"]["total"] == 4

    for index in range(1, 5):  # what the monitor does with them
        write_exit_file(ctx.paths.exit_file(f"job29_{index}"), 0 if index != 2 else 1, None)
    adapter, _ = adapter_with(ctx, [(["squeue"], rec("squeue-poll-t2-final.txt"), "", 0)])
    ctx.store.set_meta(ACCOUNTING_META_KEY, f"jobcomp@{time.time():.0f}")
    updates = {u.job_id: u for u in adapter.poll([parent]).updates}
    assert updates["job29_4"].fields["metadata"]["raw_id"] == "29"
    assert updates["job29_1"].fields["metadata"]["raw_id"] == "35"
    assert updates["job29"].status is JobStatus.COMPLETED  # squeue's COMPLETED wins over the file


def test_array_summary_counts_failed_tasks(ctx):
    parent = tracked(ctx, "29", metadata={"array": "1-4%2"})
    text = rec("squeue-poll-t2-final.txt").replace("36|29|2|29_2|COMPLETED|None", "36|29|2|29_2|FAILED|NonZeroExitCode")
    adapter, _ = adapter_with(ctx, [(["squeue"], text, "", 0), (["sacct", "-c"], "JobID|State\n", "", 0)])
    ctx.store.set_meta(ACCOUNTING_META_KEY, f"jobcomp@{time.time():.0f}")
    updates = {u.job_id: u for u in adapter.poll([parent]).updates}
    assert updates["job29"].status is JobStatus.FAILED
    assert updates["job29"].fields["reason"] == "1 of 4 array tasks failed"
    assert updates["job29"].fields["end_time"] == local("2026-11-28T21:45:57")


def test_cancel_is_one_scancel_for_many_jobs(ctx):
    jobs = [tracked(ctx, n) for n in ("25", "26", "27")]
    child = tracked(ctx, "29_1", array_parent="job29", array_index=1)
    parent = tracked(ctx, "29", metadata={"array": "1-2"})
    never = JobInfo(job_id="nosub", name="x", scheduler="slurm")
    adapter, runner = adapter_with(ctx, [(["scancel"], "", "", 0)])
    updates = adapter.cancel([*jobs, child, parent, never])
    assert runner.commands == [["scancel", "25", "26", "27", "29"]]  # the array once, not its task
    by_id = {u.job_id: u for u in updates}
    meta = by_id["job25"].fields["metadata"]
    assert meta["cancel_requested"] is True and isinstance(meta["cancel_sent"], float) and by_id["job25"].status is None
    assert ctx.store.get("job25").metadata["cancel_sent"] == meta["cancel_sent"]  # stored before scancel ran
    assert by_id["nosub"].status is JobStatus.CANCELLED


def test_queue_lists_foreign_jobs(ctx):
    adapter, runner = adapter_with(ctx, [(["squeue"], rec("squeue-queue-t1.txt"), "", 0)])
    entries = {e.native_id: e for e in adapter.queue()}
    assert runner.commands[0][:3] == ["squeue", "-h", "-u"]
    assert entries["29"].name == "array_job" and entries["29"].state == "PENDING"  # the pending array
    assert entries["32"].name == 'odd | "name" $x <d>' and entries["30"].reason == "JobHeldUser"


def test_attach_reads_scontrol(ctx):
    adapter, _ = adapter_with(ctx, [(["scontrol"], rec("scontrol-o-fail.txt"), "", 0)])
    job = adapter.attach("26")
    assert (job.name, job.status, job.native_id, job.exit_code) == ("fail_job", JobStatus.FAILED, "26", 3)
    assert job.scheduler == "slurm" and job.metadata["attached"] is True
    assert job.resources.walltime == 365 * 86400 and job.log_file.endswith("slurm-26.out")


def test_attach_an_array(ctx):
    adapter, _ = adapter_with(ctx, [(["scontrol"], ref("scontrol-show-job-8-array-running.txt"), "", 0)])
    job = adapter.attach("8")
    assert job.metadata["array"] == "1,2,3,4" and job.status is JobStatus.RUNNING and job.native_id == "8"


def test_attach_a_job_the_controller_forgot(ctx):
    answers = [(["scontrol"], "", ref("scontrol-show-job-unknown.stderr.txt"), 1),
               (["sacct", "-X"], "", ref("sacct-nodbd-plain-t2.stderr.txt"), 1),
               (["sacct", "-c"], rec("sacct-c-final.txt"), "", 0)]
    adapter, _ = adapter_with(ctx, answers)
    job = adapter.attach("26")
    assert (job.status, job.exit_code, job.native_id) == (JobStatus.FAILED, 3, "26")


def test_attach_refuses_bad_ids(ctx):
    adapter, runner = adapter_with(ctx, [])
    for bad in ("", "12;rm -rf /", "abc", "1_2_3"):
        with pytest.raises(ValueError):
            adapter.attach(bad)
    assert runner.calls == 0


def test_min_poll_interval_is_configurable(ctx, monkeypatch):
    assert SlurmScheduler(ctx).min_poll_interval == 30.0
    monkeypatch.setenv("CELLINE_JOBS_SLURM_MIN_POLL_INTERVAL", "2")
    assert SlurmScheduler(ctx).min_poll_interval == 2.0
    monkeypatch.delenv("CELLINE_JOBS_SLURM_MIN_POLL_INTERVAL")
    assert SlurmScheduler(SchedulerContext(ctx.paths, ctx.store, {"slurm_min_poll_interval": 45})).min_poll_interval \
        == 45.0
    assert SlurmScheduler.fast_poll_interval is not None and SlurmScheduler.fast_poll_interval < 30


def test_running_usage_from_sstat(ctx):
    job = tracked(ctx, "10", status=JobStatus.RUNNING)
    adapter, runner = adapter_with(ctx, [(["sstat"], ref("dbd-sstat-running-10-allsteps.txt"), "", 0)])
    assert adapter.running_usage([job]) == {"job10": {"max_rss_bytes": 95376 * 1024, "cpu_seconds": 0.0}}
    assert runner.commands[0][:4] == ["sstat", "-a", "-P", "-j"]


def test_a_broken_filetxt_record_still_gives_the_exit_code_of_a_job_squeue_shows_failed(ctx):
    # sacct-filetxt-t5-final: job 12's name has spaces, so filetxt lost its State ("12|my||0:0|...");
    # its ExitCode is a key of its own and survives (here set to 5:0 to tell it from a default).
    job = tracked(ctx, "12", status=JobStatus.RUNNING, submitted="2026-11-28T20:39:52")
    squeue = "12|12|N/A|12|FAILED|NonZeroExitCode|2026-11-28T20:41:35|2026-11-28T20:41:40|node01\n"
    sacct = ref("sacct-filetxt-t5-final.txt").replace("12|my||0:0|", "12|my||5:0|")
    adapter, _ = adapter_with(ctx, [(["squeue"], squeue, "", 0), (["sacct", "-c"], sacct, "", 0)])
    ctx.store.set_meta(ACCOUNTING_META_KEY, f"jobcomp@{time.time():.0f}")
    update = apply(ctx, adapter.poll([job]))["job12"]
    assert (update.status, update.fields["exit_code"], update.fields["reason"]) == (JobStatus.FAILED, 5, "exit code 5")


def test_resource_use_with_slurmdbd_is_fetched_as_jobs_end_and_followed_up(ctx):
    """slurmdbd may know a job's MaxRSS only after it ended: asked again by later polls."""
    done = tracked(ctx, "10", status=JobStatus.RUNNING, submitted="2026-11-28T20:44:20")
    other = tracked(ctx, "12", status=JobStatus.RUNNING, submitted="2026-11-28T20:44:20")
    write_exit_file(ctx.paths.exit_file(done.job_id), 0, None)
    squeue = ("10|10|N/A|10|COMPLETED|None|2026-11-28T20:44:26|2026-11-28T20:46:56|node01\n"
              "12|12|N/A|12|RUNNING|None|2026-11-28T20:44:31|NONE|node01\n")
    ctx.store.set_meta(ACCOUNTING_META_KEY, f"slurmdbd@{time.time():.0f}")
    sacct_x = ref("dbd-sacct-X-final.txt")
    adapter, runner = adapter_with(ctx, [(["squeue"], squeue, "", 0), (["sacct", "-P"], sacct_x, "", 0),
                                         (["sstat"], "JobID|MaxRSS|AveCPU\n", "", 0)])
    result = adapter.poll([done, other])
    # squeue, then sacct for the job that ended, then the (rare) sstat of the running one
    assert result.calls == 3 and runner.commands[1][:4] == ["sacct", "-P", "-j", "10"]
    assert runner.commands[2][:2] == ["sstat", "-a"]
    usage = apply(ctx, result)["job10"].fields["metadata"]["usage"]
    assert "max_rss_bytes" not in usage and usage["elapsed_seconds"] == 150  # the job line alone has no MaxRSS

    squeue = "12|12|N/A|12|RUNNING|None|2026-11-28T20:44:31|NONE|node01\n"
    adapter.runner = Replay([(["squeue"], squeue, "", 0), (["sacct", "-P"], ref("dbd-sacct-steps-final.txt"), "", 0)])
    result = adapter.poll([ctx.store.get("job12")])
    assert result.calls == 2 and adapter.runner.commands[1][3] == "10"  # only the follow-up is asked
    apply(ctx, result)
    assert ctx.store.get("job10").metadata["usage"]["max_rss_bytes"] == 95376 * 1024
    adapter.runner = Replay([(["squeue"], squeue, "", 0)])
    assert adapter.poll([ctx.store.get("job12")]).calls == 1  # done: no more follow-ups


def test_running_jobs_memory_and_cpu_from_one_sstat_every_usage_interval(ctx):
    running = tracked(ctx, "10", status=JobStatus.RUNNING, submitted="2026-11-28T20:44:20")
    squeue = ("10|10|N/A|10|RUNNING|None|2026-11-28T20:44:26|NONE|node01\n", "", 0)
    sstat = (["sstat"], ref("dbd-sstat-running-10-allsteps.txt"), "", 0)
    adapter, runner = adapter_with(ctx, [(["squeue"], *squeue), sstat])
    result = adapter.poll([running])
    assert result.calls == 2 and runner.commands[1][:2] == ["sstat", "-a"]
    usage = apply(ctx, result)["job10"].fields["metadata"]["usage"]
    assert usage["max_rss_bytes"] > 80 * 1024**2  # the srun step holds 80 MiB
    assert adapter.poll([ctx.store.get("job10")]).calls == 1  # no sstat again before usage_interval


def test_submit_writes_the_script_and_reads_the_id(ctx):
    job = JobInfo(job_id="sub1", name="x", command="true", scheduler="slurm", resources=Resources.parse(
        {"extra": ["--hold"]}), metadata={"native_dependencies": ["7"], "array": "1-3"})
    adapter, runner = adapter_with(ctx, [(["sbatch"], ref("sbatch-parsable.txt"), "", 0)])
    update = adapter.submit(job)
    script = ctx.paths.script_file("sub1")
    assert runner.commands == [["sbatch", "--parsable", str(script)]]
    assert script.stat().st_mode & 0o707 == 0o700 and "#SBATCH --dependency=afterok:7" in script.read_text()
    assert update.status is JobStatus.HELD and update.fields["native_id"] == "1"
    assert update.fields["metadata"]["native_dependencies"] == ["7"]
    assert update.fields["log_file"] == str(ctx.paths.log_file("sub1_1"))  # the first task's log


def test_submit_refused_is_a_submit_error_with_slurms_words(ctx):
    job = JobInfo(job_id="sub2", name="x", command="true", scheduler="slurm")
    adapter, _ = adapter_with(ctx, [(["sbatch"], "", ref("sbatch-invalid-partition.stderr.txt"), 1)])
    with pytest.raises(SubmitError, match="Batch job submission failed: Invalid partition name specified"):
        adapter.submit(job)


# -- ends read from exit-code files between polls, reconciled with SLURM's record after --------

def exit_file(ctx, job_id: str, text: str) -> None:
    """What the batch-script template writes (a shell's $?, so 128+N is signal N)."""
    path = ctx.paths.exit_file(job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_settle_reads_exit_files_and_asks_slurm_nothing(ctx):
    ok, failed, killed, cancelled, running = (tracked(ctx, n, status=JobStatus.RUNNING)
                                              for n in ("41", "42", "43", "44", "45"))
    ctx.store.update(cancelled.job_id, None, metadata={"cancel_requested": True})
    exit_file(ctx, ok.job_id, '{"exit_code": 0, "signal": null, "start_time": 1796000000, "end_time": 1796000060, '
                              '"shell": true}\n')
    exit_file(ctx, failed.job_id, '{"exit_code": 4, "signal": null, "end_time": 1796000061, "shell": true}\n')
    exit_file(ctx, killed.job_id, '{"exit_code": 137, "signal": null, "end_time": 1796000062, "shell": true}\n')
    exit_file(ctx, cancelled.job_id, '{"exit_code": 143, "signal": null, "end_time": 1796000063, "shell": true}\n')
    adapter, runner = adapter_with(ctx, [])  # any command would fail the test
    updates = {u.job_id: u for u in adapter.settle()}
    assert runner.commands == []
    assert set(updates) == {ok.job_id, failed.job_id, cancelled.job_id}  # SIGKILL: SLURM must say who sent it
    assert (updates[ok.job_id].status, updates[ok.job_id].fields["exit_code"]) == (JobStatus.COMPLETED, 0)
    assert updates[ok.job_id].fields["start_time"] == datetime.fromtimestamp(1796000000, timezone.utc)
    assert updates[ok.job_id].fields["end_time"] == datetime.fromtimestamp(1796000060, timezone.utc)
    assert (updates[failed.job_id].status, updates[failed.job_id].fields["reason"]) == (JobStatus.FAILED, "exit code 4")
    assert (updates[cancelled.job_id].status, updates[cancelled.job_id].fields["reason"]) == \
        (JobStatus.CANCELLED, "cancelled by user")
    ctx.store.apply(list(updates.values()))
    assert {j.job_id for j in ctx.store.reconciling("slurm")} == set(updates)
    assert ctx.store.get(running.job_id).status is JobStatus.RUNNING
    assert ctx.store.submitted_active_ids("slurm") == [killed.job_id, running.job_id]


def test_an_exit_file_ends_a_job_squeue_still_lists_as_running(ctx):
    job = tracked(ctx, "25", status=JobStatus.RUNNING)
    write_exit_file(ctx.paths.exit_file(job.job_id), 0, None)
    adapter, _ = adapter_with(ctx, [(["squeue"], rec("squeue-poll-t1-mixed.txt"), "", 0)])
    result = adapter.poll([job])
    assert result.calls == 1  # the end needs no accounting call
    [update] = result.updates
    assert update.status is JobStatus.COMPLETED and update.fields["exit_code"] == 0
    assert update.fields["start_time"] == local("2026-11-28T21:45:48")  # SLURM's start
    assert update.fields["metadata"]["slurm_state"] == "RUNNING" and update.fields["metadata"]["reconcile"]


def test_a_settled_job_is_reconciled_once_slurm_has_it_ended(ctx):
    job = tracked(ctx, "25", status=JobStatus.RUNNING)
    write_exit_file(ctx.paths.exit_file(job.job_id), 0, None)
    adapter, _ = adapter_with(ctx, [])
    ctx.store.apply(adapter.settle())
    settled = ctx.store.get(job.job_id)
    assert settled.status is JobStatus.COMPLETED and settled.metadata["reconcile"]
    # While squeue still lists it running, a poll changes nothing and keeps the mark.
    adapter, _ = adapter_with(ctx, [(["squeue"], rec("squeue-poll-t1-mixed.txt"), "", 0)])
    assert adapter.poll([settled]).updates == []
    # Once SLURM has it as ended: its start and nodes come in, our status, exit and end stay.
    adapter, _ = adapter_with(ctx, [SQUEUE_T2])
    ctx.store.set_meta(ACCOUNTING_META_KEY, f"jobcomp@{time.time():.0f}")
    ctx.store.apply(adapter.poll([settled]).updates)
    job = ctx.store.get(job.job_id)
    assert (job.status, job.exit_code, job.end_time) == (JobStatus.COMPLETED, 0, settled.end_time)
    assert job.start_time == local("2026-11-28T21:45:48") and job.metadata["slurm_state"] == "COMPLETED"
    assert job.metadata.get("reconcile") is None and ctx.store.reconciling("slurm") == []


def test_slurm_cannot_turn_a_settled_job_into_another_end(ctx):
    job = tracked(ctx, "25", status=JobStatus.RUNNING)
    write_exit_file(ctx.paths.exit_file(job.job_id), 0, None)
    adapter, _ = adapter_with(ctx, [])
    ctx.store.apply(adapter.settle())
    text = rec("squeue-poll-t2-final.txt").replace("|25|N/A|25|COMPLETED|None", "|25|N/A|25|OUT_OF_MEMORY|None")
    assert "OUT_OF_MEMORY" in text
    adapter, _ = adapter_with(ctx, [(["squeue"], text, "", 0), (["sacct"], "", "", 1)])
    ctx.store.set_meta(ACCOUNTING_META_KEY, f"jobcomp@{time.time():.0f}")
    ctx.store.apply(adapter.poll([ctx.store.get(job.job_id)]).updates)
    job = ctx.store.get(job.job_id)
    # The command's own exit status decided (as for local jobs); SLURM's word is kept beside it.
    assert job.status is JobStatus.COMPLETED and job.metadata["slurm_state"] == "OUT_OF_MEMORY"
    assert job.metadata.get("reconcile") is None
