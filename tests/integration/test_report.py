"""The offline HTML report of a project with real local jobs: one self-contained file, job text
shown as text, and (in real headless Chromium with the network off) a table that renders and sorts."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from celline_jobs_nb.monitor import JobMonitor

XSS = "<img src=x onerror=alert(1)>"
SCRIPT_END = "</script><script>alert(2)</script>"
LINE_SEPARATOR = "Integrate\u2028S1 & S2"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
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
    block = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S)
    assert block is not None
    return json.loads(block.group(1))


def test_the_report_is_one_file_that_fetches_nothing(report_file: Path):
    text = report_file.read_text(encoding="utf-8")
    parser = _Tags()
    parser.feed(text)
    tags = {tag for tag, _ in parser.tags}
    assert not tags & {"img", "link", "iframe", "object", "embed", "audio", "video", "source", "base", "form"}
    scripts = [attrs for tag, attrs in parser.tags if tag == "script"]
    assert scripts == [{"type": "application/json", "id": "report-data"}, {}]  # data + the inline code
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
    assert not set(block) & {"<", ">", "&", "\u2028", "\u2029"}
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


def _launch_offline(playwright):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[
        "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"])


def test_the_table_renders_and_sorts_in_chromium_without_network(report_file: Path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download)")
    data = _data(report_file.read_text(encoding="utf-8"))
    with sync_api.sync_playwright() as playwright:
        browser = _launch_offline(playwright)
        try:
            context = browser.new_context(offline=True)
            requests: list[str] = []
            problems: list[str] = []
            context.route(re.compile(r"^(?!file:)"), lambda route: (requests.append(route.request.url), route.abort()))
            page = context.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
            page.on("console", lambda message: message.type == "error" and problems.append(message.text))
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(report_file.as_uri())

            rows = page.locator("#jobs-table tbody tr")
            assert rows.count() == 4
            assert page.locator("#job-count").text_content() == "4 of 4 jobs"

            def column(key: str) -> list[str]:
                index = [th.get_attribute("data-key") for th in page.locator("#jobs-table th").all()].index(key)
                return page.locator(f"#jobs-table tbody tr td:nth-child({index + 1})").all_text_contents()

            # newest first by default; names are shown as the text they are
            assert page.locator("th[data-key=submit]").get_attribute("aria-sort") == "descending"
            names = sorted(job["name"] for job in data["jobs"])
            page.locator("th[data-key=name] button").click()
            assert page.locator("th[data-key=name]").get_attribute("aria-sort") == "ascending"
            assert column("name") == sorted(names, key=str.casefold)
            page.locator("th[data-key=name] button").click()
            assert page.locator("th[data-key=name]").get_attribute("aria-sort") == "descending"
            assert column("name") == sorted(names, key=str.casefold, reverse=True)
            assert page.locator("img").count() == 0 and page.locator("script").count() == 2

            page.locator("th[data-key=run] button").click()
            by_run = sorted(data["jobs"], key=lambda job: job["run"])
            assert column("id") == [job["id"] for job in by_run]
            assert page.locator("th[data-key=submit]").get_attribute("aria-sort") == "none"

            failed_row = page.locator("#jobs-table tbody tr[data-status=failed]")
            assert failed_row.count() == 1 and XSS in failed_row.text_content()
            page.locator("#job-filter").fill("onerror")
            assert page.locator("#job-count").text_content() == "1 of 4 jobs"

            assert page.locator("#timeline svg rect[data-status]").count() == 4
            assert page.locator("#failed article pre").count() == 1
            assert requests == [report_file.as_uri()]
            assert problems == []  # no alert ran, no CSP violation, no script error
        finally:
            browser.close()


def test_an_empty_project_gets_a_report_that_says_so(project: Path, tmp_path: Path):
    from celline_jobs_nb.report import write_report

    text = write_report(JobMonitor(project), tmp_path / "empty.html").read_text(encoding="utf-8")
    assert _data(text)["jobs"] == []
    assert "0 jobs" in text and "No jobs yet." in text and "no jobs yet" in text and "No job failed." in text
