"""The offline HTML report of a project with real local jobs: one self-contained file, job text
shown as text, and (in real headless Chromium with the network off) a table that renders and sorts."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from celline_jobs_nb.monitor import JobMonitor
from celline_jobs_nb.report import unpacked_rows

XSS = "<img src=x onerror=alert(1)>"
SCRIPT_END = "</script><script>alert(2)</script>"
LINE_SEPARATOR = "Integrate\u2028S1 & S2"
FAILING = "for i in $(seq 1 40); do echo \"line $i\"; done; echo '<b>boom</b> & </script>' >&2; exit 3"


@pytest.fixture(scope="module")
def report_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("report") / "project"
    root.mkdir()
    monitor = JobMonitor(root, max_parallel=4)
    ids = [
        monitor.submit_job("Count S1", "echo counting; sleep 0.3", "cpus=2,mem=4G,time=1:00:00", job_type="Count"),
        monitor.submit_job(XSS, FAILING, job_type="Prediction"),
        monitor.submit_job(SCRIPT_END, "sleep 0.6", job_type="Custom"),
        monitor.submit_job(LINE_SEPARATOR, "true", job_type="Integration"),
    ]
    try:
        monitor.wait(ids, timeout=60)
        yield root
    finally:
        for job in monitor.store.active():
            monitor.cancel_job(job.job_id, wait=0)


@pytest.fixture(scope="module")
def report_file(report_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out") / "report.html"
    result = subprocess.run([sys.executable, "-m", "celline_jobs_nb", "--project", str(report_project), "report",
                             "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote {out}\n"
    return out


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def _data(text: str) -> dict:
    block = re.search(r'<script type="application/octet-stream" id="report-data">(.*?)</script>', text, re.S)
    assert block is not None
    return {"jobs": unpacked_rows(block.group(1))}


def test_the_report_is_one_file_that_fetches_nothing(report_file: Path):
    text = report_file.read_text(encoding="utf-8")
    parser = _Tags()
    parser.feed(text)
    tags = {tag for tag, _ in parser.tags}
    assert not tags & {"img", "link", "iframe", "object", "embed", "audio", "video", "source", "base", "form"}
    scripts = [attrs for tag, attrs in parser.tags if tag == "script"]
    assert scripts == [{"type": "application/octet-stream", "id": "report-data"}, {}]  # data + the inline code
    links = [attrs.get("href") for _, attrs in parser.tags if "href" in attrs]
    assert links and all(str(href).startswith("#") for href in links)
    assert not any("src" in attrs for _, attrs in parser.tags)
    assert set(re.findall(r"https?://[^\s\"'<>]+", text)) == {"http://www.w3.org/2000/svg"}  # a namespace only
    csp = next(a["content"] for t, a in parser.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert csp is not None and csp.startswith("default-src 'none'")


def test_job_text_is_data_everywhere(report_file: Path):
    text = report_file.read_text(encoding="utf-8")
    data = _data(text)
    assert sorted(job["name"] for job in data["jobs"]) == sorted(["Count S1", XSS, SCRIPT_END, LINE_SEPARATOR])
    block = text.split('id="report-data">', 1)[1].split("</script>", 1)[0]
    assert re.fullmatch(r"[A-Za-z0-9+/=]+", block)  # base64: no markup, nothing that ends the element
    # outside the JSON block job text appears only escaped (SVG labels, tooltips, failed section)
    outside = text.replace(block, "")
    for raw in (XSS, SCRIPT_END, "<b>boom</b>"):
        assert raw not in outside
    assert html_escaped(XSS) in outside and html_escaped(SCRIPT_END) in outside
    failed = outside.split('<section id="failed">', 1)[1]
    assert "&lt;b&gt;boom&lt;/b&gt; &amp; &lt;/script&gt;" in failed  # the last log lines, escaped
    assert "line 40" in failed and "line 12\n" in failed and "line 11\n" not in failed  # the last 30 lines
    assert "exit code 3" in failed
    summary = outside.split('<section id="summary">', 1)[1].split("</section>", 1)[0]
    assert "<td>Prediction</td>" in summary and "exit code 3 (1)" in summary


def html_escaped(text: str) -> str:
    import html

    return html.escape(text, quote=True)


# The table in real Chromium: test_report_browser.py (node's playwright-core).


def test_an_empty_project_gets_a_report_that_says_so(project: Path, tmp_path: Path):
    from celline_jobs_nb.report import write_report

    text = write_report(JobMonitor(project), tmp_path / "empty.html").read_text(encoding="utf-8")
    assert _data(text)["jobs"] == []
    assert "0 jobs" in text and "No jobs yet." in text and "no jobs yet" in text and "No job failed." in text
