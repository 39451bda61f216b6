"""Grid Engine parsers, state map and adapter decisions on real outputs (tests/data/sge, see its
SOURCE.md): ``recorded/`` from our SGE 8.1.9 cell (record.sh), ``reference/`` the shared SGE 8.1.9
fixtures, ``real/ood_core/`` Open OnDemand's public samples (SGE and Univa). Poll decisions
replay recorded outputs through a CommandRunner stand-in (``support.Replay``)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import Replay

from celline_jobs_nb.core.errors import ParseError, SubmitError
from celline_jobs_nb.core.models import JobInfo, JobStatus
from celline_jobs_nb.core.paths import ProjectPaths
from celline_jobs_nb.core.resources import Resources
from celline_jobs_nb.schedulers.base import SchedulerContext
from celline_jobs_nb.schedulers.sge import (
    KNOWN_STATES,
    SgeScheduler,
    map_state,
    parse_job_details,
    parse_qacct,
    parse_qstat_xml,
    parse_qsub_output,
    qdel_problems,
    task_range,
)
from celline_jobs_nb.schedulers.sge.parse import parse_ctime, parse_epoch, parse_local_iso, parse_size
from celline_jobs_nb.store.sqlite import JobStore

DATA = Path(__file__).resolve().parents[1] / "data" / "sge"


def rec(name: str) -> str:
    """An output recorded on our cell (tests/data/sge/recorded, record.sh)."""
    return (DATA / "recorded" / name).read_text(encoding="utf-8")


def ref(name: str) -> str:
    """A shared SGE 8.1.9 fixture (tests/data/sge/reference)."""
    return (DATA / "reference" / name).read_text(encoding="utf-8")


def ood(name: str) -> str:
    """Open OnDemand ood_core's public sample (tests/data/sge/real/ood_core)."""
    return (DATA / "real" / "ood_core" / name).read_text(encoding="utf-8")


# -- states ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("state", "status"), sorted(KNOWN_STATES.items()))
def test_every_documented_state_combination_has_its_status(state: str, status: JobStatus) -> None:
    assert map_state(state) == (status, True)


@pytest.mark.parametrize("state", ["", "x", "Z", "r r", "qw\n", "rrrrrrrrrr", "dR", "<b>"])
def test_unknown_states_are_unknown_never_an_error(state: str) -> None:
    assert map_state(state) == (JobStatus.UNKNOWN, False) or state.strip() in KNOWN_STATES


def test_every_state_in_the_recorded_listings_is_known() -> None:
    files = [DATA / "recorded" / f for f in ("qstat-xml-w1-t0.txt", "qstat-xml-w1-t1.txt", "qstat-xml-w1-t2.txt",
                                             "qstat-xml-w2-suspended.txt", "qstat-xml-w3-eqw.txt")]
    files += [*sorted((DATA / "reference").glob("qstat-xml-*.txt")), DATA / "real" / "ood_core" / "qstat_r.xml"]
    seen = {r.state for f in files for r in parse_qstat_xml(f.read_text(encoding="utf-8"))}
    assert seen == {"r", "t", "qw", "hqw", "s", "Eqw"}
    assert all(map_state(s)[1] for s in seen)


# -- qsub -------------------------------------------------------------------------------------------

def test_qsub_outputs() -> None:
    assert parse_qsub_output(rec("qsub-terse-ok.txt")) == ("3", None)
    assert parse_qsub_output(rec("qsub-terse-array.txt")) == ("7", "1-4:1")
    assert parse_qsub_output(ref("qsub-terse-array.txt")) == ("17", "1-3:1")
    assert parse_qsub_output(rec("qsub-plain-fail.txt")) == ("4", None)  # 'Your job 4 ("fail_job") has been submitted'
    assert parse_qsub_output(ref("qsub-plain-fail.txt")) == ("12", None)
    with pytest.raises(ParseError, match="no job number"):
        parse_qsub_output('Unable to run job: can\'t resolve hostname "/tmp/a".\nExiting.\n')
    with pytest.raises(ParseError):
        parse_qsub_output("")


# -- qstat -xml -------------------------------------------------------------------------------------

def test_qstat_xml_running_pending_and_array_entries() -> None:
    records = {(r.job_number, r.task): r for r in parse_qstat_xml(rec("qstat-xml-w1-t1.txt"))}
    assert records[("5", None)].state == "r" and records[("5", None)].queue == "all.q@vm"
    running_task = records[("7", 1)]
    assert running_task.state == "t" and running_task.start is not None
    # the pending rest of the array is one entry, <tasks>2-4:1</tasks>: one record per task
    assert [records[("7", i)].state for i in (2, 3, 4)] == ["qw", "qw", "qw"]
    assert records[("9", None)].state == "hqw" and records[("9", None)].start is None
    assert records[("9", None)].submit is not None and records[("9", None)].submit.tzinfo is timezone.utc


def test_qstat_xml_name_escaping_bug_is_undone() -> None:
    names = {r.job_number: r.name for r in parse_qstat_xml(rec("qstat-xml-w1-t1.txt"))}
    assert names["11"] == 'q"uo<b>te&amp'  # printed as q&quot;uo%lt;b&gt;te&amp;amp
    assert {r.name for r in parse_qstat_xml(ref("qstat-xml-t1-mixed.txt"))} >= {'q"uo<b>te'}


def test_qstat_xml_times_are_local_times_read_as_utc() -> None:
    record = next(r for r in parse_qstat_xml(rec("qstat-xml-w1-t1.txt")) if r.job_number == "5")
    assert record.start == datetime(2026, 12, 4, 16, 54, 17).astimezone().astimezone(timezone.utc)


def test_qstat_xml_empty_and_other_layouts() -> None:
    assert parse_qstat_xml(rec("qstat-xml-empty.txt")) == []
    assert parse_qstat_xml(ref("qstat-xml-empty.txt")) == []
    # qstat -r -xml from ood_core: running jobs nested in Queue-List, a pending array 1-9:2
    records = parse_qstat_xml(ood("qstat_r.xml"))
    assert [(r.job_number, r.task, r.state) for r in records] == [
        ("88", None, "r"), ("1045", None, "qw"), ("1046", 1, "qw"), ("1046", 3, "qw"), ("1046", 5, "qw"),
        ("1046", 7, "qw"), ("1046", 9, "qw"), ("44", None, "hqw")]
    assert parse_qstat_xml(rec("qstat-xml-w3-eqw.txt"))[0].state == "Eqw"
    assert {r.state for r in parse_qstat_xml(rec("qstat-xml-w2-suspended.txt"))} == {"s", "r", "qw"}


@pytest.mark.parametrize("text", ["", "not xml", "<html/>", "<!DOCTYPE x [<!ENTITY a 'b'>]><job_info/>",
                                  "<job_info><job_list><JB_job_number>1",
                                  ])
def test_unreadable_qstat_output_is_a_parse_error(text: str) -> None:
    with pytest.raises(ParseError):
        parse_qstat_xml(text)


def test_bad_entries_are_dropped_not_fatal() -> None:
    text = ("<job_info><queue_info><job_list><JB_job_number>abc</JB_job_number><state>r</state></job_list>"
            "<job_list><JB_job_number>12</JB_job_number><state>qw</state><tasks>9-1:1</tasks></job_list>"
            "<job_list><JB_job_number>13</JB_job_number><state>qw</state><tasks>1-999999999</tasks></job_list>"
            "<job_list><JB_job_number>14</JB_job_number><state>zz</state></job_list></queue_info></job_info>")
    assert [(r.job_number, r.state) for r in parse_qstat_xml(text)] == [("14", "zz")]


def test_task_ranges() -> None:
    assert task_range("2-4:1") == [2, 3, 4] and task_range("2,3") == [2, 3] and task_range("1-9:2") == [1, 3, 5, 7, 9]
    for bad in ("0", "4-2", "1-10:0", "a", "1-200000"):
        with pytest.raises(ParseError):
            task_range(bad)


# -- qstat -j -xml ----------------------------------------------------------------------------------

def test_qstat_j_error_reason_and_predecessors() -> None:
    details, unknown = parse_job_details(rec("qstat-j-eqw-state-xml.txt"))
    assert unknown == [] and list(details) == ["15"]
    assert "can't open output file \"/nonexistent/dir/x.log\"" in details["15"].errors[0]
    assert parse_job_details(rec("qstat-j-dep-hqw-xml.txt"))[0]["8"].predecessors == ["4"]
    running = parse_job_details(ref("qstat-j-15-running-xml.txt"))[0]["15"]
    assert running.predecessors == []  # 18 waits on it: a successor, not a predecessor
    details, _ = parse_job_details(rec("qstat-j-many-xml.txt"))  # 8,9,10,999999: the unknown one left out
    assert sorted(details) == ["10", "8", "9"]


def test_qstat_j_unknown_and_other_layouts() -> None:
    assert parse_job_details(rec("qstat-j-held-xml.txt"))[0]["9"].name == "held_job"
    assert parse_job_details(ref("qstat-j-unknown-xml.txt")) == ({}, ["999999"])
    assert parse_job_details(ood("qstat_jr_missing.xml")) == ({}, ["1"])  # not well-formed: <>
    assert parse_job_details(ood("qstat_jr.xml"))[0]["4147342"].name.startswith("cfSNV_0merged")
    assert list(parse_job_details(ood("qstat_jr_multislot.xml"))[0]) == ["942195"]
    assert parse_job_details(ood("uge_qstat_jr.xml"))[0]["748172"].name == "jupyter_interactive"


# -- qacct ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "failed", "exit_status", "ran"), [
    ("qacct-j-ok.txt", 0, 0, True),
    ("qacct-j-fail-exit3.txt", 0, 3, True),
    ("qacct-j-hrt.txt", 37, 137, True),
    ("qacct-j-kill9.txt", 100, 137, True),
    ("qacct-j-qdel-running.txt", 100, 137, True),
    ("qacct-j-qdel-suspended.txt", 100, 137, True),
    ("qacct-j-dep-ran-after-failed-parent.txt", 0, 0, True),  # -hold_jid only orders
    ("qacct-j-eqw-state-deleted.txt", 26, 0, False),
])
def test_qacct_records(name: str, failed: int, exit_status: int, ran: bool) -> None:
    (record,) = parse_qacct(rec(name))
    assert (record.failed, record.exit_status, record.ran, record.task) == (failed, exit_status, ran, None)


def test_qacct_details_array_and_batched_form() -> None:
    (hrt,) = parse_qacct(rec("qacct-j-hrt.txt"))
    assert hrt.failed_text == "qmaster enforced h_rt, h_cpu, or h_vmem limit" and hrt.wallclock == 5.0
    assert hrt.maxvmem == int(4.957 * 1024 ** 2) and hrt.category == "-l h_rt=4"
    assert (hrt.end - hrt.start).total_seconds() == 5
    tasks = parse_qacct(rec("qacct-j-array.txt"))
    by_task = sorted(tasks, key=lambda t: t.task or 0)
    assert [(t.task, t.exit_status) for t in by_task] == [(1, 0), (2, 3), (3, 0), (4, 0)]
    assert len(parse_qacct(ref("qacct-j-17-array.txt"))) == 3
    every = parse_qacct(rec("qacct-E-b-all.txt"))  # qacct -o root -E -b <time> -j: one call, all ended jobs
    assert {r.job_number for r in every} >= {"3", "4", "5", "6", "7", "8"}
    assert parse_qacct(rec("qacct-j-unknown.txt")) == [] and parse_qacct(rec("qacct-j-qdel-pending.txt")) == []
    assert parse_qacct(rec("qacct-E-b-none.txt")) == []  # no job ended in the window: a summary table only


def test_qacct_values() -> None:
    assert parse_ctime("Fri Dec  4 16:54:17 2026") == datetime(2026, 12, 4, 16, 54, 17).astimezone().astimezone(
        timezone.utc)
    assert parse_ctime("-/-") is None and parse_ctime("Fri Foo  4 16:54:17 2026") is None
    assert parse_ctime("Mon Jan  1 00:00:00 0001") in (None, datetime(1, 1, 1, tzinfo=timezone.utc))
    assert parse_local_iso("0001-01-01T00:00:00") in (None, datetime(1, 1, 1, tzinfo=timezone.utc))
    assert parse_epoch("999999999999") is None and parse_epoch("0") is None  # out of range; unset
    assert parse_size("634.388KB") == int(634.388 * 1024) and parse_size("0.000B") == 0 and parse_size("x") is None
    broken = "jobnumber    12\ntaskid undefined\nfailed xx\nexit_status 0\n"
    assert parse_qacct(broken) == []  # a block that does not read is dropped


# -- qdel -------------------------------------------------------------------------------------------

def test_qdel_outputs() -> None:
    assert qdel_problems(rec("qdel-running.txt")) == [] and qdel_problems(rec("qdel-pending.txt")) == []
    assert qdel_problems(rec("qdel-unknown.txt")) == []  # 'denied: job "999999" does not exist': gone already
    assert qdel_problems(rec("qdel-many.txt")) == [] and qdel_problems(rec("qrls-unknown.txt")) == []
    assert qdel_problems(ref("qdel-running-16.txt")) == []
    assert qdel_problems("denied: job 12 is owned by someone else\n") == ["denied: job 12 is owned by someone else"]


# -- adapter decisions on recorded outputs -----------------------------------------------------------

@pytest.fixture
def adapter(tmp_path: Path) -> SgeScheduler:
    paths = ProjectPaths.of(tmp_path)
    return SgeScheduler(SchedulerContext(paths, JobStore(paths), {}))


def poll_one(adapter: SgeScheduler, native: str, answers: list, status: JobStatus = JobStatus.RUNNING,
             **fields: object) -> JobInfo:
    store = adapter.context.store
    job = JobInfo(job_id="j1", name="j", status=status, command="true", scheduler="sge",
                  native_id=native, **fields)  # type: ignore[arg-type]
    store.insert(job)
    adapter.runner = Replay(answers)
    store.apply(adapter.poll([job]).updates)
    return store.get("j1")


def test_a_job_killed_by_h_rt_is_a_timeout(adapter: SgeScheduler) -> None:
    job = poll_one(adapter, "5", [(["qstat"], rec("qstat-xml-empty.txt"), "", 0),
                                  (["qacct"], rec("qacct-j-hrt.txt"), "", 0)],
                   resources=Resources(walltime=4))
    assert (job.status, job.signal, job.metadata["failure_kind"]) == (JobStatus.FAILED, 9, "timeout")
    assert adapter.runner.commands == [["qstat", "-xml", "-u", adapter.runner.commands[0][3]], ["qacct", "-j", "5"]]


def test_kill_9_is_killed_by_a_signal_and_exit_3_is_exit(adapter: SgeScheduler) -> None:
    job = poll_one(adapter, "6", [(["qstat"], rec("qstat-xml-empty.txt"), "", 0),
                                  (["qacct"], rec("qacct-j-kill9.txt"), "", 0)])
    assert (job.status, job.reason, job.metadata["failure_kind"]) == (JobStatus.FAILED, "killed by signal SIGKILL",
                                                                      "signal")


def test_a_failed_start_is_a_node_failure(adapter: SgeScheduler) -> None:
    job = poll_one(adapter, "15", [(["qstat"], rec("qstat-xml-empty.txt"), "", 0),
                                   (["qacct"], rec("qacct-j-eqw-state-deleted.txt"), "", 0)])
    assert job.status is JobStatus.FAILED and job.metadata["failure_kind"] == "node_fail"
    assert job.reason == "Grid Engine could not run the job (failed 26: opening input/output file)"
    assert job.start_time is None


def test_no_accounting_record_yet_keeps_the_job_then_unknown(adapter: SgeScheduler) -> None:
    """The accounting file is written up to flush_time after the end: no record is no verdict."""
    answers = [(["qstat"], rec("qstat-xml-empty.txt"), "", 0),
               (["qacct"], rec("qacct-j-unknown.txt"), rec("qacct-j-unknown.stderr.txt"), 1)]
    job = poll_one(adapter, "5", answers)
    assert job.status is JobStatus.RUNNING and job.metadata["missing_since"] > time.time() - 60
    store = adapter.context.store
    store.apply([_meta("j1", missing_since=1.0)])  # missing since 1970: past the grace
    adapter.runner = Replay(answers)
    store.apply(adapter.poll([store.get("j1")]).updates)
    assert store.get("j1").status is JobStatus.UNKNOWN
    assert [c[0] for c in adapter.runner.commands] == ["qstat"]  # qacct is asked again after 10 s, not every poll


def _meta(job_id: str, **meta: object):
    from celline_jobs_nb.core.updates import JobUpdate
    return JobUpdate(job_id, None, {"metadata": meta}, source="test")


def test_an_error_state_is_held_with_qstat_j_s_reason_asked_once(adapter: SgeScheduler) -> None:
    answers = [(["qstat", "-xml"], rec("qstat-xml-w3-eqw.txt"), "", 0),
               (["qstat", "-j"], rec("qstat-j-eqw-state-xml.txt"), "", 0)]
    job = poll_one(adapter, "15", answers, JobStatus.QUEUED)
    assert job.status is JobStatus.HELD
    assert job.reason.startswith("Grid Engine error state (Eqw): can't open output file \"/nonexistent/dir/x.log\"")
    store = adapter.context.store
    adapter.runner = Replay(answers)
    store.apply(adapter.poll([store.get("j1")]).updates)
    assert adapter.runner.commands == [["qstat", "-xml", "-u", adapter.runner.commands[0][3]]]  # reason known


def test_scripts_refuse_what_grid_engine_cannot_take(adapter: SgeScheduler, tmp_path: Path) -> None:
    job = JobInfo(job_id="j2", name="j", status=JobStatus.PENDING, command="true", scheduler="sge",
                  metadata={"array": "1,2,4"})
    with pytest.raises(SubmitError, match="one range"):
        adapter.render_script(job)


def test_a_job_seen_running_whose_start_then_failed_goes_through_unknown_to_held(adapter: SgeScheduler) -> None:
    """``r`` for a moment, then Eqw: states only move forward, so UNKNOWN first, HELD next poll."""
    answers = [(["qstat", "-xml"], rec("qstat-xml-w3-eqw.txt"), "", 0),
               (["qstat", "-j"], rec("qstat-j-eqw-state-xml.txt"), "", 0)]
    job = poll_one(adapter, "15", answers, JobStatus.RUNNING)
    assert job.status is JobStatus.UNKNOWN and "Eqw" in job.reason
    store = adapter.context.store
    adapter.runner = Replay(answers)
    store.apply(adapter.poll([store.get("j1")]).updates)
    assert store.get("j1").status is JobStatus.HELD


# -- untrusted text: only ParseError, whatever comes ----------------------------------------------

_SGE_TAGS = ["job_info", "queue_info", "job_list", "JB_job_number", "state", "tasks", "JB_name", "JAT_start_time",
             "detailed_job_info", "djob_info", "element", "QIM_message", "unknown_jobs", "ST_name", "slots"]
_xml_fragments = st.lists(st.one_of(
    st.sampled_from([f"<{t}>" for t in _SGE_TAGS] + [f"</{t}>" for t in _SGE_TAGS]),
    st.text(max_size=12), st.sampled_from(["%lt;", "&amp;", "&#0;", "1-99999:1", "Eqw", "2026-13-45T99:99:99",
                                           "0001-01-01T00:00:00"])),
    max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(_xml_fragments)
def test_qstat_parsers_raise_only_parse_errors(text: str) -> None:
    for parser in (parse_qstat_xml, parse_job_details):
        try:
            parser(text)
        except ParseError:
            pass


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400) | st.lists(st.sampled_from(
    ["=" * 62, "jobnumber 12", "taskid 3", "taskid undefined", "failed 37 : x", "exit_status 137 (Killed)",
     "start_time -/-", "end_time Fri Dec  4 16:54:22 2026", "maxvmem 9.9TB", "ru_wallclock 5s", "failed zz"]),
    max_size=20).map("\n".join))
def test_qacct_and_qsub_parsers_raise_only_parse_errors(text: str) -> None:
    for record in parse_qacct(text):
        assert record.job_number.isdigit() and record.failed >= 0
    try:
        number, _tasks = parse_qsub_output(text)
        assert number.isdigit()
    except ParseError:
        pass
    assert all(isinstance(p, str) for p in qdel_problems(text))


def test_a_production_h_rt_kill_is_a_timeout_even_for_an_attached_job(adapter: SgeScheduler) -> None:
    """Wynton HPC's documented qacct record (real/wynton): 10 slots, h_rt=3600 in its category; the
    job here was attached, so our row has no walltime of its own."""
    sample = (DATA / "real" / "wynton" / "qacct-j-h_rt-smp10.txt").read_text(encoding="utf-8")
    (record,) = parse_qacct(sample)
    assert (record.failed, record.exit_status, record.wallclock, record.task) == (37, 137, 3600.0, None)
    assert record.maxvmem == int(20.610 * 1024 ** 3) and record.hostname == "qb3-id95"
    job = poll_one(adapter, "191442", [(["qstat"], rec("qstat-xml-empty.txt"), "", 0), (["qacct"], sample, "", 0)])
    assert (job.status, job.metadata["failure_kind"], job.signal) == (JobStatus.FAILED, "timeout", 9)
    assert job.reason == "killed by Grid Engine at its run-time limit (h_rt 3600 s)"
    assert job.end_time - job.start_time == timedelta(hours=1)
