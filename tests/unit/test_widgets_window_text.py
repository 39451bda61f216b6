"""The dashboard's free-text filter over a real store: every word typed matches any part of a job's
id, name, type or reason (as the table did before it was windowed), short words too, and typed text
is literal, never full-text query syntax; an older text index is replaced by the current one."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from celline_jobs_nb.core.models import JobInfo, JobStatus, utcnow
from celline_jobs_nb.monitor import JobMonitor
from celline_jobs_nb.store import window, window_text
from celline_jobs_nb.store.window import Query, WindowIndex, Windows


def _jobs(monitor: JobMonitor) -> None:
    now = utcnow()

    def job(i: int, name: str, status: JobStatus = JobStatus.COMPLETED, **extra: Any) -> JobInfo:
        return JobInfo(job_id=f"job{i:05d}", name=name, status=status, scheduler="local", command="true",
                       submit_time=now, start_time=now, end_time=now if status.final else None, **extra)

    jobs = [job(i, f"Count SRR{2584800 + i}", JobStatus.FAILED if i % 3 else JobStatus.COMPLETED, job_type="Count")
            for i in range(80)]
    jobs += [job(100 + i, f"S{i} preprocess", job_type="Preprocess") for i in range(1, 13)]
    jobs += [job(200, 'weird "quoted" NEAR(x) a*b 100% under_score', JobStatus.FAILED,
                 reason="Exit code 3 (OR NOT AND)"),
             job(201, "Überprüfung"),
             job(202, "Count SRR2584863 task", array_parent="job00063", array_index=1)]
    monitor.store.insert_many(jobs)


def _bare(monitor: JobMonitor) -> Windows:
    """Windows over a store without the window indexes (as a read-only one is)."""
    bare = Windows(monitor.store, WindowIndex.__new__(WindowIndex))
    bare.index.present, bare.index.building, bare.index.store = set(), False, monitor.store
    return bare


def _expected(monitor: JobMonitor, query: Query) -> list[str]:
    """The top-level jobs whose id, name, type or reason holds every word, newest first, in Python."""
    out = []
    for job in monitor.store.list():
        if job.array_parent or (query.statuses and job.status.value not in query.statuses):
            continue
        text = [str(v).lower() for v in (job.job_id, job.name, job.job_type, job.reason) if v is not None]
        if all(any(word in t for t in text) for word in query.text.lower().split()):
            out.append(job.job_id)
    return sorted(out, reverse=True)


TEXTS = ["2584863", "unt SRR", "srr25848", "count srr 7", "9", "S1", "s1 pre", "überprüf", '"quoted"', '"',
         "*", "a*b", "near(x)", "NEAR(", "100%", "%", "_", "under_score", "or not and", "code 3 (or", "xyz", "unt"]


@pytest.mark.parametrize("statuses", [(), ("failed",)])
def test_every_word_matches_any_part_of_the_text_indexed_or_not(monitor: JobMonitor, statuses: tuple[str, ...]):
    _jobs(monitor)
    index = WindowIndex(monitor.store)
    index.ensure(background=False)
    indexed = Windows(monitor.store, index)
    assert index.fts
    for text in TEXTS:
        query = Query(statuses=statuses, text=text)
        want = _expected(monitor, query)
        # LIKE (no index, or a word under 3 characters) folds the case of ASCII letters only.
        for windows in (indexed, _bare(monitor)) if text.isascii() else (indexed,):
            assert windows.total(query) == len(want), (text, windows.index.fts)
            assert [j.job_id for j in windows.window(query, 0, 200)] == want, (text, windows.index.fts)


def test_typed_text_is_never_query_syntax(monitor: JobMonitor):
    """Quotes, stars, NEAR( and the words AND / OR / NOT match themselves (no error, no operator)."""
    _jobs(monitor)
    WindowIndex(monitor.store).ensure(background=False)
    windows = Windows(monitor.store)
    for text in ['"quoted"', "a*b", "near(x)", "(or not and)", '"quoted" near(', "*", "100%"]:
        assert [j.job_id for j in windows.window(Query(text=text), 0, 50)] == ["job00200"], text
    assert windows.total(Query(text="or not")) == 1  # words, not operators: only the reason holding both
    assert windows.total(Query(text='srr" OR "S1')) == 0


def test_an_older_or_different_text_index_is_replaced_and_answers_substrings(monitor: JobMonitor,
                                                                             monkeypatch: pytest.MonkeyPatch):
    """A store with the earlier word index (unicode61 words and their triggers) is detected as
    not indexed, answered by plain queries meanwhile, then rebuilt: in a thread when big."""
    _jobs(monitor)
    conn = sqlite3.connect(monitor.store.path)
    conn.execute("CREATE VIRTUAL TABLE jw_fts USING fts5(job_id, name, job_type, reason, tags, content='', "
                 "tokenize='unicode61')")
    conn.execute("CREATE TRIGGER jw_fts_ai AFTER INSERT ON jobs BEGIN INSERT INTO jw_fts(rowid, job_id, name, "
                 "job_type, reason, tags) VALUES (NEW.seq, NEW.job_id, NEW.name, NEW.job_type, NEW.reason, ''); END")
    # An index named as today's but defined otherwise (an edited definition) is not trusted either.
    conn.execute("CREATE VIRTUAL TABLE jw_text USING fts5(job_id, name, job_type, reason, tags, content='', "
                 "tokenize='unicode61')")
    conn.commit()
    conn.close()
    index = WindowIndex(monitor.store)
    assert not index.fts and not index.complete
    query = Query(text="2584863")
    assert Windows(monitor.store, index).total(query) == 1  # plain LIKE meanwhile
    monkeypatch.setattr(window, "BUILD_INLINE_ROWS", 10)
    thread = index.ensure()
    assert thread is not None
    thread.join(60)
    assert index.fts and index.complete and index.error is None
    names = {r[0] for r in monitor.store._read("SELECT name FROM sqlite_master WHERE name LIKE 'jw_fts%'")}
    assert names == set()  # the old index and its trigger are gone
    windows = Windows(monitor.store, index)
    assert [j.job_id for j in windows.window(query, 0, 10)] == ["job00063"]
    # The new index follows writes.
    monitor.store.update("job00005", None, source="test", reason="Error in readRDS(file)")
    windows.invalidate()
    assert [j.job_id for j in windows.window(Query(text="adrds"), 0, 10)] == ["job00005"]
    assert WindowIndex(monitor.store).complete


def test_words_under_three_characters_alone_search_the_newest_jobs_and_say_so(monitor: JobMonitor,
                                                                               monkeypatch: pytest.MonkeyPatch):
    """A text of only short words (no trigram to look up) scans the newest SHORT_SCAN jobs; the
    view is told so. A longer word beside it searches the whole history."""
    _jobs(monitor)
    WindowIndex(monitor.store).ensure(background=False)
    monkeypatch.setattr(window, "SHORT_SCAN", 20)
    windows = Windows(monitor.store)
    # The newest 20 rows: job00073..job00079 (Count), the S1..S12 jobs, job00200, job00201, the task.
    assert [j.job_id for j in windows.window(Query(text="S1"), 0, 50)] == ["job00112", "job00111", "job00110",
                                                                         "job00101"]
    assert windows.notice(Query(text="S1")) and "newest 20 jobs" in str(windows.notice(Query(text="S1")))
    # "s1" with "pre": the whole history, no notice.
    assert windows.notice(Query(text="s1 pre")) is None and windows.notice(Query(text="srr")) is None
    assert windows.total(Query(text="7 srr")) == len(_expected(monitor, Query(text="7 srr"))) == 17


def test_the_text_index_filled_in_chunks_misses_no_write_made_between_them(monitor: JobMonitor,
                                                                           monkeypatch: pytest.MonkeyPatch):
    """Each chunk is its own transaction: jobs renamed, deleted or added between chunks (before or
    after theirs was indexed) are found by what they hold at the end, and only by that."""
    _jobs(monitor)
    monkeypatch.setattr(window_text, "FILL_CHUNK", 10)
    writes = iter([
        "UPDATE jobs SET name = 'renamed early' WHERE job_id = 'job00002'",  # its chunk is indexed
        "UPDATE jobs SET name = 'renamed late' WHERE job_id = 'job00070'",  # its chunk is not yet
        "DELETE FROM jobs WHERE job_id = 'job00003'",
        "DELETE FROM jobs WHERE job_id = 'job00075'",
        "UPDATE jobs SET reason = 'Out of memory' WHERE job_id = 'job00004'",
    ])
    chunks = []

    def retrying(action: Any) -> Any:
        result = monitor.store._retrying(action)
        chunks.append(1)
        if len(chunks) >= 2:
            sql = next(writes, None)
            if sql is not None:
                with sqlite3.connect(monitor.store.path) as db:
                    db.execute(sql)
        return result

    window_text.fill_text_index(retrying)
    monitor.store.insert_many([JobInfo(job_id="job00900", name="added after", status=JobStatus.PENDING,
                                       scheduler="local", command="true")])
    index = WindowIndex(monitor.store)
    assert index.fts and len(chunks) > 5
    windows = Windows(monitor.store, index)
    for text in ("renamed early", "renamed late", "out of memory", "added after", "srr2584802", "srr2584870",
                 "srr2584803", "srr2584875", "srr25848", "count"):
        query = Query(text=text)
        want = _expected(monitor, query)
        assert [j.job_id for j in windows.window(query, 0, 200)] == want and windows.total(query) == len(want), text
