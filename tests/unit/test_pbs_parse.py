"""PBS parsers, state map and poll decisions (see tests/data/pbs/INDEX.md for every input).

- Slurm's Torque wrappers: real recorded outputs (``reference/``, ``recorded/``).
- OpenPBS/PBS Pro JSON and real Torque text/XML: NOT recorded (they cannot run here). Written from
  public documentation: OpenPBS qstat(1B) ``-F json`` and the PBS Professional Reference Guide's
  job attributes (JSON), Adaptive Computing's Torque "Job exit status" page (text), Torque's
  qstat.c ``create_full_job_xml`` (XML). Tests on them say so in their names ("documented").

The poll tests replay outputs through a CommandRunner stand-in: the texts are as above, only their
delivery is canned (the real wrappers run in tests/integration/test_pbs.py).
"""

from __future__ import annotations

import json
import logging
import shlex
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import Replay

from celline_jobs_nb.core.errors import InvalidInputError, ParseError, SchedulerError, SubmitError
from celline_jobs_nb.core.jobfiles import write_exit_file
from celline_jobs_nb.core.models import JobInfo, JobStatus
from celline_jobs_nb.core.paths import ProjectPaths
from celline_jobs_nb.core.resources import Resources
from celline_jobs_nb.schedulers.base import SchedulerContext
from celline_jobs_nb.schedulers.pbs import (
    FINISHED_STATES,
    FLAVOUR_META_KEY,
    OPENPBS,
    PBS_STATES,
    TORQUE,
    TORQUE_SLURM,
    PbsScheduler,
    array_indices,
    interpret_exit_status,
    map_state,
    parse_job_id,
    parse_pbs_duration,
    parse_pbs_size,
    parse_pbs_time,
    parse_qstat_full,
    parse_qstat_json,
    parse_qstat_version,
    parse_qstat_xml,
    parse_qsub_output,
)
from celline_jobs_nb.store.sqlite import JobStore

DATA = Path(__file__).resolve().parents[1] / "data" / "pbs"


def ref(name: str) -> str:
    return (DATA / "reference" / name).read_text(encoding="utf-8")


def rec(name: str) -> str:
    return (DATA / "recorded" / name).read_text(encoding="utf-8")


def doc(name: str) -> str:
    return (DATA / "documented" / name).read_text(encoding="utf-8")


def local(text: str) -> datetime:
    """What qstat means by a ctime string: this machine's local time."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").astimezone().astimezone(timezone.utc)


# -- states -----------------------------------------------------------------------------------

ISSUE_STATES = ["Q", "R", "E", "C", "F", "H", "S", "W", "T", "U", "B", "X", "M"]


@pytest.mark.parametrize("state", ISSUE_STATES)
def test_every_pbs_state_is_mapped(state):
    status, known = map_state(state, OPENPBS)
    assert known and (status is not JobStatus.UNKNOWN or state == "M")  # M: moved, may run elsewhere
    assert map_state(state.lower(), OPENPBS) == (status, True)


def test_state_examples():
    assert map_state("Q") == (JobStatus.QUEUED, True) and map_state("H") == (JobStatus.HELD, True)
    assert map_state("E")[0] is JobStatus.RUNNING  # exiting is not final: PBS has not said how yet
    assert map_state("W")[0] is JobStatus.QUEUED and map_state("T")[0] is JobStatus.QUEUED
    assert map_state("M")[0] is JobStatus.UNKNOWN  # moved to another server: not cancelled, not final
    assert FINISHED_STATES == {"C", "F", "X"} and all(PBS_STATES[s].final for s in FINISHED_STATES)
    # The Slurm wrapper's "U" is "unknown", PBS Pro's is "suspended (workstation busy)".
    assert map_state("U", TORQUE_SLURM) == (JobStatus.UNKNOWN, False)
    assert map_state("U", OPENPBS) == (JobStatus.RUNNING, True)


@pytest.mark.parametrize("text", ["", "Z", "RUNNING", "??", "Q R"])
def test_unknown_states_map_to_unknown_not_an_error(text):
    assert map_state(text) == (JobStatus.UNKNOWN, False)


# -- exit status, ids, times ------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    (0, (0, None)), (3, (3, None)), (127, (127, None)), (128, (128, None)),
    (137, (None, 9)), (143, (None, 15)),  # the shell's 128+N
    (265, (None, 9)), (271, (None, 15)),  # PBS's 256+N (qdel of a running job, walltime)
])
def test_exit_status_values(value, expected):
    meaning = interpret_exit_status(value)
    assert (meaning.exit_code, meaning.signal) == expected and meaning.reason is None


def test_negative_exit_status_is_pbs_saying_why():
    assert interpret_exit_status(-1, TORQUE).reason.endswith("(JOB_EXEC_FAIL1, Exit_status -1)")
    assert interpret_exit_status(-11, TORQUE).kind == "timeout"  # Torque: walltime limit
    assert interpret_exit_status(-11, OPENPBS).kind == "preempted"  # PBS Pro: rerun
    assert interpret_exit_status(-3, OPENPBS).exit_code is None


def test_job_ids():
    assert parse_job_id("18").key == ("18", None, False)
    assert parse_job_id("157.pbs").server == "pbs"
    assert parse_job_id("165[].pbs").key == ("165", None, True)
    assert parse_job_id("165[3].pbs.example.org").key == ("165", 3, False)
    assert parse_job_id("1501_3").key == ("1501", 3, False)  # Slurm's task name (the wrapper has none)
    for bad in ("", "abc", "12.", "1[a].x", "1;rm", "-1"):
        with pytest.raises(ParseError):
            parse_job_id(bad)


def test_qsub_outputs():
    assert parse_qsub_output(ref("qsub-ok.txt")) == "18"  # the wrapper: the id only
    assert parse_qsub_output(ref("qsub-cmdline-opts.txt")) == "22"
    assert parse_qsub_output("157.pbs\n") == "157.pbs" and parse_qsub_output("165[].pbs\n") == "165[].pbs"
    assert parse_qsub_output("qsub: warning: something\n4711.torque.example.org\n") == "4711.torque.example.org"
    with pytest.raises(ParseError, match="no job id"):
        parse_qsub_output(rec("qsub-bad-queue.txt"))  # the wrapper's complaint is not an id
    with pytest.raises(ParseError):
        parse_qsub_output("")


def test_times():
    assert parse_pbs_time("Sat Nov 28 20:42:21 2026") == local("2026-11-28 20:42:21")
    assert parse_pbs_time("Fri Aug  1 15:01:02 2008") == local("2008-08-01 15:01:02")  # ctime pads the day
    assert parse_pbs_time("1219993556") == datetime(2008, 8, 29, 7, 5, 56, tzinfo=timezone.utc)  # Torque XML
    assert parse_pbs_time("") is None and parse_pbs_time(None) is None and parse_pbs_time("0") is None
    for bad in ("Sat Foo 28 20:42:21 2026", "yesterday", "Sat Feb 30 20:42:21 2026"):
        with pytest.raises(ParseError):
            parse_pbs_time(bad)


def test_durations_and_sizes():
    assert parse_pbs_duration("00:10:05") == 605 and parse_pbs_duration("71582788:15:00") == 71582788 * 3600 + 900
    assert parse_pbs_duration("42") == 42 and parse_pbs_duration("") is None
    assert parse_pbs_size("4316kb") == 4316 * 1024 and parse_pbs_size("2gb") == 2 * 1024**3
    assert parse_pbs_size("512") == 512 and parse_pbs_size("10mw") == 10 * 1024**2 * 8
    for parser, bad in ((parse_pbs_duration, "1-00:00:00"), (parse_pbs_size, "2 GB")):
        with pytest.raises(ParseError):
            parser(bad)


def test_array_specs_per_flavour():
    assert array_indices("1-4%2", TORQUE) == [1, 2, 3, 4] and array_indices("0,10,20-21", TORQUE) == [0, 10, 20, 21]
    assert array_indices("1-10:4", OPENPBS) == [1, 5, 9] and array_indices("1-3%2", OPENPBS) == [1, 2, 3]
    assert array_indices("1-7:2%2", TORQUE_SLURM) == [1, 3, 5, 7]
    for flavour, bad in ((TORQUE, "1-9:2"), (OPENPBS, "1,2"), (OPENPBS, "5-5"), (TORQUE_SLURM, "x")):
        with pytest.raises(ParseError):
            array_indices(bad, flavour)


def test_version_tells_the_flavour():
    assert parse_qstat_version(rec("qstat-version.txt")) == (TORQUE_SLURM, None)  # recorded: "Unknown option"
    assert parse_qstat_version("pbs_version = 20.0.1\n") == (OPENPBS, "20.0.1")  # documented
    assert parse_qstat_version("Version: 6.1.3\nCommit: 9a4e5bd\n") == (TORQUE, "6.1.3")  # documented
    assert parse_qstat_version("qstat: unknown option\n") == (None, None)


# -- the Slurm wrapper's qstat -f (recorded) ---------------------------------------------------

def test_wrapper_records_from_the_reference_fixtures():
    done = parse_qstat_full(ref("qstat-f-18-completed.txt"))[0]
    assert (done.job_id, done.name, done.state, done.owner, done.queue) == ("18", "pbs_ok", "C", "root", "debug")
    assert done.exit_status is None  # the wrapper never says: the exit-code file must
    assert done.start == local("2026-11-28 20:42:22") and done.end == local("2026-11-28 20:42:24")
    assert done.submit == local("2026-11-28 20:42:21") and done.exec_host == "node01/1"
    running = parse_qstat_full(ref("qstat-f-20-running.txt"))[0]
    assert running.state == "R" and running.end is None  # ctime there is only the expected end
    held = parse_qstat_full(ref("qstat-f-10-held.txt"))[0]
    assert held.state == "Q" and held.start is None and not held.started  # held shows as Q
    assert parse_qstat_full(ref("qstat-f-unknown-id.txt")) == []
    failed = parse_qstat_full(ref("qstat-f-19-failed.txt"))[0]
    assert (failed.state, failed.exit_status) == ("C", None)  # exit 3, but qstat looks the same


def test_wrapper_records_recorded_in_our_command_form():
    ids = rec("ids.txt").split()
    t1 = parse_qstat_full(rec("qstat-f-t1.txt"))
    assert [r.job_id for r in t1] == ids and {r.state for r in t1} == {"Q"}
    assert all(r.start is None for r in t1)  # Slurm's far-future start estimates are not starts
    t2 = {r.job_id: r for r in parse_qstat_full(rec("qstat-f-t2.txt"))}
    assert set(t2) == set(ids)  # the unknown id 999999 is simply not there
    ok, fail, run, _run2, held, pend, arr, dep = (t2[i] for i in ids)
    assert (ok.state, fail.state, run.state, held.state, arr.state) == ("C", "C", "R", "Q", "Q")
    assert ok.started and run.started and run.end is None
    assert pend.state == "C" and not pend.started and pend.end is not None  # cancelled while pending
    assert dep.state == "C" and not dep.started  # DependencyNeverSatisfied: never ran
    after = {r.job_id: r.state for r in parse_qstat_full(rec("qstat-f-t3-after-qdel.txt"))}
    assert after == {ids[2]: "C", ids[3]: "R"}


# -- documented shapes (NOT recorded) ------------------------------------------------------------

def test_documented_torque_full_text_with_wrapped_values():
    records = parse_qstat_full(doc("torque-qstat-f-docs.txt"), TORQUE)
    assert [r.job_id for r in records] == ["179.host", "180.host", "181.host"]
    failed, running, deleted = records
    assert failed.state == "C" and failed.exit_status == -1
    assert failed.attributes["Variable_List"].endswith("PBS_O_WORKDIR=/opt/moab,PBS_O_QUEUE=batchq")
    assert "PBS_O_LOGNAME=user,PBS_O_PATH=" in failed.attributes["Variable_List"]  # the TAB lines joined
    assert failed.attributes["sched_hint"].endswith("Bad UID for job execution REJHOST=pala.cridomain MSG=cannot "
                                                    "find user 'user' in password file")
    assert running.start == local("2008-08-29 15:00:02") and running.usage["max_rss_bytes"] == 4316 * 1024
    assert running.usage["elapsed_seconds"] == 605 and running.usage["req_mem_bytes"] == 32 * 1024**3
    assert running.usage["cpu_seconds"] == 602
    assert deleted.exit_status == 271 and deleted.end == local("2008-08-29 15:09:00")


def test_documented_torque_xml_one_document_per_id():
    records = parse_qstat_xml(doc("torque-qstat-x-t-two-ids.xml"))
    assert [r.job_id for r in records] == ["182.host", "183[].host", "183[1].host", "183[2].host"]
    ok, parent, task1, task2 = records
    assert ok.exit_status == 0 and ok.start == datetime.fromtimestamp(1219993556, timezone.utc)
    assert ok.end == datetime.fromtimestamp(1219993558, timezone.utc) and ok.usage["max_rss_bytes"] == 3012 * 1024
    assert ok.attributes["Resource_List.walltime"] == "00:10:00"
    assert parent.ident.array and task1.ident.index == 1 and task1.exit_status == 3
    assert task2.name == 'array_job-2 <b> & "q"'  # XML escapes undone; still only data
    assert parse_qstat_xml("") == [] and parse_qstat_xml('<?xml version="1.0"?>\n<Data/>\n') == []


def test_documented_openpbs_json():
    records = {r.job_id: r for r in parse_qstat_json(doc("openpbs-qstat-f-F-json-x-t-mixed.json"))}
    ok = records["157.pbs"]
    assert (ok.state, ok.exit_status, ok.name, ok.owner) == ("F", 0, "ok_job", "user")
    assert ok.start == local("2021-08-20 23:14:09") and ok.end == local("2021-08-20 23:14:10")  # stime, obittime
    assert ok.attributes["Resource_List.select"] == "1:ncpus=1" and ok.usage["max_rss_bytes"] == 5648 * 1024
    assert ok.usage["alloc_cpus"] == 1 and ok.usage["cpu_seconds"] == 0
    assert records["158.pbs"].exit_status == 3 and records["163.pbs"].exit_status == 271
    assert records["160.pbs"].comment.startswith("Not Running: Insufficient amount of resource")
    assert records["165[].pbs"].ident.array and records["165[2].pbs"].ident.index == 2
    assert not records["164.pbs"].started and records["164.pbs"].exit_status is None
    assert parse_qstat_json(doc("openpbs-qstat-f-F-json-empty.json")) == []  # no jobs: header only
    assert parse_qstat_json("") == []


def test_openpbs_json_with_raw_control_characters_in_a_value():
    """PBS Pro has printed job environment values with raw control characters inside JSON strings."""
    text = '{"pbs_version": "19.1.3", "Jobs": {"7.pbs": {"job_state": "R", "Variable_List": {"X": "a\tb\x01"}}}}'
    (record,) = parse_qstat_json(text)
    assert record.state == "R" and record.attributes["Variable_List.X"] == "a\tb\x01"


@pytest.mark.parametrize("text", ["{", "[]", '{"Jobs": []}', '{"Jobs": {"1.s": 5}}', '{"Jobs": {"bad id": {}}}'])
def test_openpbs_json_errors_are_parse_errors(text):
    with pytest.raises(ParseError):
        parse_qstat_json(text)


@pytest.mark.parametrize("text", ["garbage", "x = 1\n", "    job_state = R\n"])
def test_full_text_must_start_with_a_job(text):
    with pytest.raises(ParseError):
        parse_qstat_full(text)


def test_xml_errors_are_parse_errors():
    for text in ("<Data><Job>", "not xml", "<Data><Job><Job_Id>x y</Job_Id></Job></Data>"):
        with pytest.raises(ParseError):
            parse_qstat_xml(text)


# -- property tests: only ParseError escapes ------------------------------------------------------

TOKENS = st.sampled_from(["Job Id:", "Job Id:\t18", "\tjob_state = C", "    job_state = R", "\t", "    ", " = ",
                          "exit_status = -1", "Exit_status", "18", "157.pbs", "165[].pbs", "165[2].pbs", "[", "]",
                          "{", "}", '"Jobs"', ":", ",", '"job_state"', '"F"', "<Data>", "</Data>", "<Job>", "</Job>",
                          "<Job_Id>", "</Job_Id>", "<?xml version=\"1.0\"?>", "Sat Nov 28 20:42:21 2026",
                          "Fri Aug  1 15:01:02 2008", "1219993556", "9" * 30, "-", "%", "\n", "\x00", "ü", "1-4%2",
                          "1-10:2", "pbs_version = 1", "Version: 6", "Unknown option: version"])
TEXT = st.one_of(st.text(), st.lists(TOKENS, max_size=30).map("".join),
                 st.lists(st.lists(TOKENS, max_size=8).map(" ".join), max_size=8).map("\n".join))
PARSERS = [
    lambda t: parse_qstat_full(t, TORQUE_SLURM), lambda t: parse_qstat_full(t, TORQUE),
    lambda t: parse_qstat_full(t, OPENPBS), parse_qstat_json, parse_qstat_xml, parse_job_id, parse_qsub_output,
    parse_pbs_time, parse_pbs_duration, parse_pbs_size, lambda t: array_indices(t, TORQUE),
    lambda t: array_indices(t, OPENPBS), lambda t: array_indices(t, TORQUE_SLURM), parse_qstat_version,
]


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_parsers_raise_only_parse_error(text):
    for parser in PARSERS:
        try:
            parser(text)
        except ParseError:
            pass


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=12), st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10), max_size=6))
def test_json_jobs_of_any_shape_raise_only_parse_error(attributes):
    for job_id in ("1.pbs", "2[].pbs", "x"):
        try:
            parse_qstat_json(json.dumps({"Jobs": {job_id: attributes}}))
        except ParseError:
            pass


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=-(2**40), max_value=2**40), st.sampled_from([None, TORQUE, OPENPBS, TORQUE_SLURM]))
def test_exit_status_interpretation_is_total(value, flavour):
    meaning = interpret_exit_status(value, flavour)
    assert meaning.exit_code is not None or meaning.signal is not None or meaning.reason


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=3), st.sampled_from([None, TORQUE, OPENPBS, TORQUE_SLURM]))
def test_state_map_total(state, flavour):
    status, known = map_state(state, flavour)
    assert isinstance(status, JobStatus) and (known or status is JobStatus.UNKNOWN)


# -- poll decisions on replayed outputs --------------------------------------------------------

@pytest.fixture
def ctx(tmp_path):
    paths = ProjectPaths.of(tmp_path)
    return SchedulerContext(paths, JobStore(paths), {})


def adapter_with(ctx, answers, flavour=TORQUE_SLURM) -> tuple[PbsScheduler, Replay]:
    context = SchedulerContext(ctx.paths, ctx.store, {"pbs_flavour": flavour})
    adapter = PbsScheduler(context)
    adapter.runner = Replay(answers)
    return adapter, adapter.runner


def tracked(ctx, native_id: str, *, status=JobStatus.QUEUED, submitted="2026-11-28 22:25:40", **extra) -> JobInfo:
    """A tracked job; ``submitted`` None for documented outputs (their jobs ran years ago: a row
    submitted now would take their finished records for another job's under a reused id)."""
    key = native_id.replace("[", "_").replace("]", "").replace(".", "_")
    job = JobInfo(job_id=f"job{key}", name=f"job {native_id}", status=status, command="true", scheduler="pbs",
                  native_id=native_id, submit_time=local(submitted) if submitted else None, **extra)
    ctx.store.insert(job)
    return job


def apply(ctx, result):
    ctx.store.apply(result.updates)
    return {u.job_id: u for u in result.updates}


IDS = rec("ids.txt").split()  # ok, fail, run, run2, held, pend, arr, dep
QSTAT_T2 = (["qstat", "-f"], rec("qstat-f-t2.txt"), "", 0)


def test_wrapper_poll_is_one_qstat_for_many_jobs(ctx):
    ok, fail, run, run2, held, pend = (tracked(ctx, n) for n in IDS[:6])
    ctx.store.update(held.job_id, JobStatus.HELD, source="test")
    ctx.store.update(run.job_id, JobStatus.RUNNING, source="test")
    write_exit_file(ctx.paths.exit_file(ok.job_id), 0, None)
    write_exit_file(ctx.paths.exit_file(fail.job_id), 3, None)
    ctx.store.update(pend.job_id, None, source="cancel", metadata={"cancel_requested": True})
    adapter, runner = adapter_with(ctx, [QSTAT_T2])
    result = adapter.poll(ctx.store.get_many([j.job_id for j in (ok, fail, run, run2, held, pend)]))
    assert result.calls == 1 and runner.commands == [["qstat", "-f", *IDS[:6]]]
    updates = apply(ctx, result)
    assert updates[ok.job_id].status is JobStatus.COMPLETED and updates[ok.job_id].fields["exit_code"] == 0
    assert updates[ok.job_id].fields["start_time"] == local("2026-11-28 22:25:45")
    assert updates[fail.job_id].fields["exit_code"] == 3 and updates[fail.job_id].fields["reason"] == "exit code 3"
    assert updates[run.job_id].status is JobStatus.RUNNING and updates[run2.job_id].status is JobStatus.RUNNING
    assert updates[held.job_id].status is JobStatus.HELD  # the wrapper says Q: what we know is kept
    pend_update = updates[pend.job_id]
    assert pend_update.status is JobStatus.CANCELLED and pend_update.fields["reason"] == "cancelled by user"
    assert "start_time" not in pend_update.fields  # the wrapper's "mtime" was the cancel time


def test_wrapper_job_finished_without_exit_file_asks_slurm_once(ctx):
    dep = tracked(ctx, IDS[7], dependency_kind="afterok", metadata={"native_dependencies": [IDS[1]]})
    adapter, runner = adapter_with(ctx, [QSTAT_T2, (["scontrol"], rec("scontrol-o-dep.txt"), "", 0)])
    result = adapter.poll([dep])
    assert result.calls == 2 and runner.commands[1] == ["scontrol", "-o", "show", "job", IDS[7]]
    update = apply(ctx, result)[dep.job_id]
    assert update.status is JobStatus.CANCELLED and update.fields["exit_code"] is None
    assert update.fields["reason"] == (f"DependencyNeverSatisfied: its afterok dependency on PBS job {IDS[1]} "
                                       "can never be met")
    assert "start_time" not in update.fields


def test_wrapper_without_slurm_tools_keeps_the_job_then_unknown(ctx, caplog):
    job = tracked(ctx, IDS[7], status=JobStatus.RUNNING)
    adapter, _ = adapter_with(ctx, [QSTAT_T2, (["scontrol"], "", "slurm_load_jobs error: Invalid job id", 1)])
    update = apply(ctx, adapter.poll([job]))[job.job_id]
    assert update.status is None and isinstance(update.fields["metadata"]["missing_since"], float)
    ctx.store.update(job.job_id, None, source="test", metadata={"missing_since": time.time() - 400})
    update = apply(ctx, adapter.poll([ctx.store.get(job.job_id)]))[job.job_id]
    assert update.status is JobStatus.UNKNOWN and "finished (C) but gives no exit status" in update.fields["reason"]


def test_job_qstat_forgot_is_resolved_from_its_exit_file_without_a_second_call(ctx):
    job = tracked(ctx, "999", status=JobStatus.RUNNING)
    write_exit_file(ctx.paths.exit_file(job.job_id), 0, None)
    adapter, _ = adapter_with(ctx, [(["qstat"], "", "", 153)])  # the wrapper: unknown id, nothing printed
    result = adapter.poll([job])
    assert result.calls == 1 and apply(ctx, result)[job.job_id].status is JobStatus.COMPLETED


def test_missing_job_is_kept_then_unknown_after_the_grace(ctx):
    job = tracked(ctx, "999", status=JobStatus.RUNNING)
    adapter, _ = adapter_with(ctx, [(["qstat"], "", "qstat: Unknown Job Id 999.pbs\n", 153)], OPENPBS)
    first = apply(ctx, adapter.poll([job]))[job.job_id]
    assert first.status is None and "missing_since" in first.fields["metadata"]
    assert ctx.store.get(job.job_id).status is JobStatus.RUNNING  # missing never means completed
    ctx.store.update(job.job_id, None, source="test", metadata={"missing_since": time.time() - 400})
    later = apply(ctx, adapter.poll([ctx.store.get(job.job_id)]))[job.job_id]
    assert later.status is JobStatus.UNKNOWN and "no longer lists job 999" in later.fields["reason"]


@pytest.mark.parametrize(("code", "stderr"), [(255, "Problem loading jobs.\n"),
                                              (1, "qstat: cannot connect to server pbs (errno=111)\n"),
                                              (153, "qstat: Unknown Job Id 1.pbs\nqstat: cannot connect to server\n")])
def test_a_failed_qstat_is_a_scheduler_error(ctx, code, stderr):
    job = tracked(ctx, "18")
    adapter, _ = adapter_with(ctx, [(["qstat"], "", stderr, code)])
    with pytest.raises(SchedulerError, match="qstat exited"):
        adapter.poll([job])


def test_malformed_qstat_output_is_a_scheduler_error_not_a_crash(ctx):
    job = tracked(ctx, "18")
    adapter, _ = adapter_with(ctx, [(["qstat"], "this is not qstat output\n", "", 0)])
    with pytest.raises(SchedulerError, match="unexpected qstat output"):
        adapter.poll([job])


def test_an_unknown_state_is_logged_once_and_shown_as_unknown(ctx, caplog):
    job = tracked(ctx, "18")
    text = ref("qstat-f-18-completed.txt").replace("job_state = C", "job_state = U")
    adapter, _ = adapter_with(ctx, [(["qstat"], text, "", 0)])
    with caplog.at_level(logging.WARNING, logger="celline.job"):
        update = apply(ctx, adapter.poll([job]))[job.job_id]
        adapter.poll([ctx.store.get(job.job_id)])
    assert update.status is JobStatus.UNKNOWN and "'U'" in update.fields["reason"]
    assert sum("unknown PBS state" in r.message for r in caplog.records) == 1


def test_wrapper_array_tasks_from_exit_files_and_logs(ctx):
    """The wrapper shows no tasks: a task's log says it started, its exit-code file that it ended."""
    parent = tracked(ctx, IDS[6], metadata={"array": "1-4%2"})
    write_exit_file(ctx.paths.exit_file(f"{parent.job_id}_1"), 0, None)
    write_exit_file(ctx.paths.exit_file(f"{parent.job_id}_2"), 2, None)
    ctx.paths.logs_dir.mkdir(parents=True, exist_ok=True)
    ctx.paths.log_file(f"{parent.job_id}_3").write_text("started\n")
    adapter, runner = adapter_with(ctx, [QSTAT_T2])
    result = adapter.poll([parent])
    assert result.calls == 1 and runner.commands == [["qstat", "-f", IDS[6]]]
    updates = {u.job_id: u for u in result.updates}
    assert [updates[f"{parent.job_id}_{i}"].status for i in (1, 2, 3, 4)] == [
        JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.RUNNING, JobStatus.QUEUED]
    assert updates[f"{parent.job_id}_3"].fields["native_id"] == f"{IDS[6]}_3"
    summary = updates[parent.job_id]
    assert summary.status is JobStatus.RUNNING
    assert summary.fields["metadata"]["array_tasks"] == {"total": 4, "completed": 1, "failed": 1, "running": 1,
                                                         "queued": 1}


def test_documented_openpbs_poll_decisions(ctx):
    ids = ["157.pbs", "158.pbs", "159.pbs", "160.pbs", "161.pbs", "162.pbs", "163.pbs", "164.pbs", "166.pbs",
           "167.pbs", "168.pbs", "169.pbs", "170.pbs", "171.pbs"]
    jobs = {n: tracked(ctx, n, submitted=None) for n in ids}
    ctx.store.update(jobs["170.pbs"].job_id, None, source="cancel", metadata={"cancel_requested": True})
    text = doc("openpbs-qstat-f-F-json-x-t-mixed.json")
    adapter, runner = adapter_with(ctx, [(["qstat"], text, "", 0)], OPENPBS)
    result = adapter.poll(ctx.store.get_many([j.job_id for j in jobs.values()]))
    assert result.calls == 1 and runner.commands[0] == ["qstat", "-f", "-F", "json", "-x", "-t", *ids]
    got = {n: apply(ctx, result)[jobs[n].job_id] for n in ids}

    def summary(n):
        u = got[n]
        return u.status, u.fields.get("exit_code"), u.fields.get("signal"), u.fields.get("reason")

    assert summary("157.pbs") == (JobStatus.COMPLETED, 0, None, None)
    assert summary("158.pbs") == (JobStatus.FAILED, 3, None, "exit code 3")
    assert summary("159.pbs")[0] is JobStatus.RUNNING
    assert got["159.pbs"].fields["start_time"] == local("2021-08-20 23:14:09")
    assert summary("160.pbs") == (JobStatus.QUEUED, None, None,
                                  "Not Running: Insufficient amount of resource: ncpus (R: 4 A: 2 T: 2)")
    assert summary("161.pbs")[0] is JobStatus.HELD
    assert summary("162.pbs") == (JobStatus.QUEUED, None, None, "waiting for its start time (W)")
    assert summary("163.pbs") == (JobStatus.FAILED, None, 15, "killed by signal SIGTERM")  # 271, not ours
    assert summary("164.pbs") == (JobStatus.CANCELLED, None, None,
                                  "DependencyNeverSatisfied: Job deleted as result of dependency on job 158.pbs")
    assert summary("166.pbs")[0] is JobStatus.FAILED and "JOB_EXEC_FAIL1" in summary("166.pbs")[3]
    assert summary("167.pbs")[0] is JobStatus.RUNNING  # E: exiting, not final yet
    assert summary("168.pbs") == (JobStatus.RUNNING, None, None, "suspended")
    assert summary("169.pbs")[0] is JobStatus.UNKNOWN and "moved to another PBS server" in summary("169.pbs")[3]
    assert summary("170.pbs") == (JobStatus.CANCELLED, None, 9, "cancelled by user")  # 265 after our qdel
    assert summary("171.pbs")[0] is JobStatus.QUEUED
    assert got["157.pbs"].fields["metadata"]["usage"]["max_rss_bytes"] == 5648 * 1024


def test_documented_openpbs_array_with_subjobs(ctx):
    parent = tracked(ctx, "165[].pbs", metadata={"array": "1-3"})
    text = doc("openpbs-qstat-f-F-json-x-t-mixed.json")
    adapter, runner = adapter_with(ctx, [(["qstat"], text, "", 0)], OPENPBS)
    result = adapter.poll([parent])
    assert runner.commands[0][-1] == "165[].pbs"
    updates = {u.job_id: u for u in result.updates}
    tasks = [updates[f"{parent.job_id}_{i}"] for i in (1, 2, 3)]
    assert [t.status for t in tasks] == [JobStatus.COMPLETED, JobStatus.RUNNING, JobStatus.QUEUED]
    assert [t.fields["native_id"] for t in tasks] == ["165[1].pbs", "165[2].pbs", "165[3].pbs"]
    assert updates[parent.job_id].status is JobStatus.RUNNING


def test_documented_torque_poll_decisions(ctx):
    ok = tracked(ctx, "182.host", submitted=None)
    parent = tracked(ctx, "183[].host", metadata={"array": "1-2"}, submitted=None)
    text = doc("torque-qstat-x-t-two-ids.xml")
    adapter, runner = adapter_with(ctx, [(["qstat"], text, "", 0)], TORQUE)
    result = adapter.poll([ok, parent])
    assert runner.commands == [["qstat", "-x", "-t", "183[].host", "182.host"]]  # arrays first, one call
    updates = {u.job_id: u for u in result.updates}
    assert updates[ok.job_id].status is JobStatus.COMPLETED and updates[ok.job_id].fields["exit_code"] == 0
    first = updates[f"{parent.job_id}_1"]
    assert (first.status, first.fields["exit_code"], first.fields["native_id"]) == (JobStatus.FAILED, 3, "183[1].host")
    assert updates[f"{parent.job_id}_2"].status is JobStatus.RUNNING
    assert updates[parent.job_id].status is JobStatus.RUNNING


def test_documented_torque_exit_file_wins_but_pbs_says_why(ctx):
    """Torque killed the job for its walltime (-11): the exit-code file says SIGTERM, PBS says why."""
    job = tracked(ctx, "179.host", status=JobStatus.RUNNING)
    write_exit_file(ctx.paths.exit_file(job.job_id), None, 15)
    text = doc("torque-qstat-f-docs.txt").split("\n\n")[0].replace("exit_status = -1", "exit_status = -11")
    xml = ("<Data><Job><Job_Id>179.host</Job_Id><job_state>C</job_state><exit_status>-11</exit_status>"
           "<exec_host>node1/0</exec_host></Job></Data>")
    assert parse_qstat_full(text, TORQUE)[0].exit_status == -11
    adapter, _ = adapter_with(ctx, [(["qstat"], xml, "", 0)], TORQUE)
    update = apply(ctx, adapter.poll([job]))[job.job_id]
    assert (update.status, update.fields["signal"]) == (JobStatus.FAILED, 15)
    assert update.fields["reason"].startswith("PBS killed the job: it exceeded its walltime limit")
    assert update.fields["metadata"]["failure_kind"] == "timeout"


def test_cancel_is_one_qdel_and_already_ended_jobs_are_not_errors(ctx):
    jobs = [tracked(ctx, n) for n in IDS[:3]]
    adapter, runner = adapter_with(ctx, [(["qdel"], "", "", 2)])  # recorded: exit 2, nothing printed
    updates = adapter.cancel(jobs)
    assert runner.commands == [["qdel", *IDS[:3]]] and rec("qdel-mixed.txt").strip() == "exit 2"
    assert all(u.fields["metadata"]["cancel_requested"] for u in updates)
    benign = "qdel: Unknown Job Id 12.pbs\nqdel: Request invalid for state of job 13.pbs\n"
    adapter, _ = adapter_with(ctx, [(["qdel"], "", benign, 35)], OPENPBS)
    adapter.cancel(jobs)
    adapter, _ = adapter_with(ctx, [(["qdel"], "", "qdel: cannot connect to server pbs (errno=111)\n", 1)], OPENPBS)
    with pytest.raises(SchedulerError, match="cannot connect"):
        adapter.cancel(jobs)


def test_cancel_of_wrapper_array_tasks(ctx):
    parent = tracked(ctx, "1501", metadata={"array": "1-3"})
    task = tracked(ctx, "1501_2", array_parent=parent.job_id, array_index=2)
    adapter, runner = adapter_with(ctx, [(["qdel"], "", "", 0), (["scancel"], "", "", 0)])
    adapter.cancel([task])  # the wrapper's qdel would read "1501_2" as 1501: the whole array
    assert runner.commands == [["scancel", "1501_2"]]
    adapter, runner = adapter_with(ctx, [(["qdel"], "", "", 0)])
    adapter.cancel([parent, task])  # the array with its task: one qdel of the array
    assert runner.commands == [["qdel", "1501"]]


def test_unsubmitted_jobs_are_cancelled_without_a_command(ctx):
    job = tracked(ctx, "1")
    pending = JobInfo(job_id="jobpending", name="p", command="true", scheduler="pbs")
    adapter, runner = adapter_with(ctx, [(["qdel"], "", "", 0)])
    updates = {u.job_id: u for u in adapter.cancel([pending, job])}
    assert updates["jobpending"].status is JobStatus.CANCELLED and runner.commands == [["qdel", "1"]]


# -- flavour detection, submit, settings ---------------------------------------------------------

def test_flavour_is_detected_once_and_remembered(ctx, monkeypatch, tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "qstat").write_text("#!/bin/sh\n")
    (fake / "qstat").chmod(0o755)
    monkeypatch.setenv("PATH", str(fake))
    monkeypatch.delenv("CELLINE_JOBS_PBS_FLAVOUR", raising=False)
    adapter = PbsScheduler(ctx)
    adapter.runner = Replay([(["qstat", "--version"], "pbs_version = 22.05.11\n", "", 0)])
    assert (adapter.flavour, adapter.version) == (OPENPBS, "22.05.11") and adapter.calls == 1
    assert ctx.store.get_meta(FLAVOUR_META_KEY).startswith("openpbs|22.05.11@")
    other = PbsScheduler(ctx)  # another process of the project: no command at all
    other.runner = Replay([])
    assert other.flavour == OPENPBS and other.calls == 0


def test_the_slurm_wrapper_is_recognised_without_running_anything(ctx, monkeypatch, tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "qstat").write_text("#! /usr/bin/perl -w\n# qstat for Slurm\nuse Slurm ':all';\n")
    (fake / "qstat").chmod(0o755)
    monkeypatch.setenv("PATH", str(fake))
    monkeypatch.delenv("CELLINE_JOBS_PBS_FLAVOUR", raising=False)
    adapter = PbsScheduler(ctx)
    adapter.runner = Replay([])
    assert adapter.flavour == TORQUE_SLURM and adapter.calls == 0


def test_an_unrecognised_qstat_is_treated_as_torque_with_a_warning(ctx, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CELLINE_JOBS_PBS_FLAVOUR", raising=False)
    adapter = PbsScheduler(ctx)
    adapter.runner = Replay([(["qstat"], "", "qstat: invalid option -- '-'\n", 2)])
    with caplog.at_level(logging.WARNING, logger="celline.job"):
        assert adapter.flavour == TORQUE
    assert "assuming Torque" in caplog.text


def test_forced_flavour_must_be_known(ctx, monkeypatch):
    monkeypatch.setenv("CELLINE_JOBS_PBS_FLAVOUR", "lsf")
    with pytest.raises(InvalidInputError, match="PBS flavour"):
        PbsScheduler(ctx)


def test_min_poll_interval_is_configurable(ctx, monkeypatch):
    assert PbsScheduler(ctx).min_poll_interval == 30.0
    monkeypatch.setenv("CELLINE_JOBS_PBS_MIN_POLL_INTERVAL", "2")
    assert PbsScheduler(ctx).min_poll_interval == 2.0
    monkeypatch.setenv("CELLINE_JOBS_PBS_MIN_POLL_INTERVAL", "0")
    with pytest.raises(InvalidInputError):
        PbsScheduler(ctx)


def submit_job(ctx, **extra) -> JobInfo:
    job = JobInfo(job_id="1m8submit0001", name="count S1", command="echo hi", scheduler="pbs",
                  working_dir=str(ctx.paths.root), **extra)
    ctx.store.insert(job)
    return job


def test_submit_writes_the_script_and_reads_the_id(ctx):
    (ctx.paths.root / "setting.toml").write_text('[execution]\nsystem = "PBS"\nnthread = 2\npbs_server = "cl1"\n')
    job = submit_job(ctx, resources=Resources.parse("cpus=2,mem=1G"))
    adapter, runner = adapter_with(ctx, [(["qsub"], ref("qsub-ok.txt"), "", 0)])
    update = adapter.submit(job)
    assert (update.status, update.fields["native_id"]) == (JobStatus.QUEUED, "18")
    script = Path(update.fields["metadata"]["script"])
    assert "#PBS -l nodes=1:ppn=2:cl1" in script.read_text() and script.stat().st_mode & 0o707 == 0o700
    assert runner.commands[0] == ["qsub", "-j", "oe", "-o", shlex.quote(str(ctx.paths.log_file(job.job_id))),
                                  shlex.quote(str(script))]
    assert update.fields["metadata"]["pbs_flavour"] == TORQUE_SLURM


def test_submit_held_and_array(ctx):
    job = submit_job(ctx, resources=Resources.parse({"extra": ["-h"]}), metadata={"array": "2-3"})
    adapter, _ = adapter_with(ctx, [(["qsub"], "4711[].pbs\n", "", 0)], OPENPBS)
    update = adapter.submit(job)
    assert update.status is JobStatus.HELD and update.fields["native_id"] == "4711[].pbs"
    assert update.fields["log_file"] == str(ctx.paths.log_file(f"{job.job_id}_2"))


def test_submit_refused_is_a_submit_error_with_the_schedulers_words(ctx):
    job = submit_job(ctx)
    adapter, _ = adapter_with(ctx, [(["qsub"], rec("qsub-bad-queue.txt"), "", 1)])
    with pytest.raises(SubmitError, match="Invalid partition name specified"):
        adapter.submit(job)
    adapter, _ = adapter_with(ctx, [(["qsub"], "", "qsub: Unknown queue MSG=cannot locate queue\n", 170)], OPENPBS)
    with pytest.raises(SubmitError, match="Unknown queue"):
        adapter.submit(job)
    adapter, _ = adapter_with(ctx, [(["qsub"], "submitted, maybe\n", "", 0)])
    with pytest.raises(SubmitError, match="no job id"):
        adapter.submit(job)


def test_a_bad_pbs_server_setting_is_refused(ctx):
    (ctx.paths.root / "setting.toml").write_text('[execution]\nsystem = "PBS"\npbs_server = "a;b"\n')
    adapter, runner = adapter_with(ctx, [])
    with pytest.raises(SubmitError, match="pbs_server"):
        adapter.submit(submit_job(ctx))
    assert runner.commands == []


def test_queue_lists_this_users_unfinished_jobs(ctx, monkeypatch):
    monkeypatch.setattr("celline_jobs_nb.schedulers.pbs.inspect.current_user", lambda: "root")
    adapter, runner = adapter_with(ctx, [(["qstat"], rec("qstat-f-t2.txt"), "", 0)])
    entries = adapter.queue()
    assert runner.commands == [["qstat", "-f"]]
    assert {e.native_id for e in entries} == {IDS[2], IDS[3], IDS[4], IDS[6]}  # R, R, held Q, array Q
    assert all(e.user == "root" for e in entries)


def test_attach_reads_qstat(ctx):
    adapter, _ = adapter_with(ctx, [(["qstat"], ref("qstat-f-20-running.txt"), "", 0)])
    job = adapter.attach("20")
    assert (job.name, job.status, job.native_id, job.scheduler) == ("pbs_run", JobStatus.RUNNING, "20", "pbs")
    assert job.resources.walltime == 600 and job.metadata["attached"] is True
    adapter, _ = adapter_with(ctx, [(["qstat"], ref("qstat-f-10-held.txt"), "", 0)])
    assert adapter.attach("10").resources.walltime is None  # the wrapper's "no limit" junk is dropped
    adapter, _ = adapter_with(ctx, [(["qstat"], "", "", 153)])
    with pytest.raises(InvalidInputError, match="does not know"):
        adapter.attach("999999")
    with pytest.raises(InvalidInputError, match="invalid PBS job id"):
        adapter.attach("1; rm")


def test_an_exit_file_ends_a_job_qstat_still_lists_running_then_pbs_reconciles(ctx):
    run = tracked(ctx, IDS[2], status=JobStatus.RUNNING)
    write_exit_file(ctx.paths.exit_file(run.job_id), 4, None)
    adapter, runner = adapter_with(ctx, [])  # settling asks PBS nothing
    [settled] = adapter.settle()
    assert runner.commands == []
    assert (settled.status, settled.fields["exit_code"], settled.fields["reason"]) == \
        (JobStatus.FAILED, 4, "exit code 4")
    adapter, _ = adapter_with(ctx, [QSTAT_T2])  # a poll that comes first decides the same
    [update] = adapter.poll([run]).updates
    assert (update.status, update.fields["exit_code"]) == (JobStatus.FAILED, 4)
    assert update.fields["metadata"]["pbs_state"] == "R" and update.fields["metadata"]["reconcile"]
    ctx.store.apply([update])
    adapter, _ = adapter_with(ctx, [QSTAT_T2])  # still listed R: nothing to add yet, the mark stays
    assert adapter.poll([ctx.store.get(run.job_id)]).updates == []
    adapter, _ = adapter_with(ctx, [(["qstat"], "", "", 153)])  # forgotten by PBS: reconciled
    ctx.store.apply(adapter.poll([ctx.store.get(run.job_id)]).updates)
    job = ctx.store.get(run.job_id)
    assert (job.status, job.exit_code) == (JobStatus.FAILED, 4) and job.metadata.get("reconcile") is None
