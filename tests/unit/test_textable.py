"""The plain-text tables of the CLI, as a user sees them: aligned in terminal cells, job text shown
escaped on its own line, colour only on a terminal (NO_COLOR, FORCE_COLOR), cut to fit a terminal
but never in a pipe."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from typing import TextIO

import pytest

from celline_jobs_nb.textable import (
    Column,
    Styled,
    Table,
    cell_width,
    colour_enabled,
    escape,
    fit,
    output_width,
)

SGR = re.compile(r"\x1b\[[0-9;]*m")
JOB_COLUMNS = (Column("Job ID"), Column("Name", flexible=True), Column("Status"), Column("Runtime"),
               Column("Resources", flexible=True, min_terminal_width=150), Column("Reason", flexible=True))


def jobs_table(*names: str, reason: str = "") -> Table:
    table = Table(JOB_COLUMNS)
    for n, name in enumerate(names):
        table.add_row(f"1m8tn0566hkm{n}", name, Styled("failed", "1;31"), "1h 2m", "cpus=4 mem=32G", reason)
    return table


def visible(line: str) -> str:
    return SGR.sub("", line)


def column_starts(line: str, *cells: str) -> list[int]:
    """The terminal column where each cell starts, counting wide characters as two."""
    return [cell_width(line[:line.index(cell)]) for cell in cells]


@pytest.fixture
def terminal() -> Iterator[TextIO]:
    """The writing end of a real pseudo-terminal, as a text stream."""
    leader, follower = os.openpty()
    stream = open(follower, "w", encoding="utf-8")  # closed below
    try:
        yield stream
    finally:
        stream.close()
        os.close(leader)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    return monkeypatch


def test_columns_align_in_terminal_cells_with_wide_characters():
    lines = jobs_table("名前 🧬 解析", "plain").render(width=None, colour=False)
    assert lines == [
        "Job ID         Name          Status  Runtime  Resources       Reason",
        "1m8tn0566hkm0  名前 🧬 解析  failed  1h 2m    cpus=4 mem=32G",
        "1m8tn0566hkm1  plain         failed  1h 2m    cpus=4 mem=32G",
    ]
    starts = {tuple(column_starts(line, *cells)) for line, cells in
              zip(lines, [("Status", "Runtime"), ("failed", "1h 2m"), ("failed", "1h 2m")], strict=True)}
    assert starts == {(29, 37)}  # the same for every row, though "名前 🧬 解析" is 7 characters in 12 cells


def test_combining_marks_take_no_cell():
    assert cell_width("e\u0301te\u0301") == 3  # "été" written with combining accents
    table = Table((Column("Name"), Column("Status")))
    table.add_row("e\u0301te\u0301", "ok")
    table.add_row("plan", "ok")
    lines = table.render(width=None, colour=False)
    assert column_starts(lines[1], "ok") == column_starts(lines[2], "ok") == [6]


@pytest.mark.parametrize("colour", [False, True])
def test_control_characters_in_a_name_show_escaped_on_one_line(colour: bool):
    name = "red \x1b[31mred\x1b[0m back\rover\nnext\tcol \x9b2J \x7f end"
    lines = jobs_table(name, "ok").render(width=None, colour=colour)
    assert len(lines) == 3  # header and two rows: the name's newline did not start a line
    row = lines[1]
    assert "red \\x1b[31mred\\x1b[0m back\\rover\\nnext\\tcol \\x9b2J \\x7f end" in row
    # What reaches the terminal holds no control character but our own colour codes around "failed".
    without_ours = row.replace("\x1b[1;31m", "").replace("\x1b[0m", "")
    assert not [c for c in without_ours if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F]
    assert ("\x1b[1;31mfailed\x1b[0m" in row) is colour
    assert column_starts(visible(lines[1]), "failed") == column_starts(visible(lines[2]), "failed")


def test_text_that_reorders_or_splits_lines_is_escaped_too():
    assert escape("abc\u202edcba\u2028next") == "abc\\u202edcba\\u2028next"
    assert escape("caf\u00e9 名前 🧬") == "caf\u00e9 名前 🧬"  # printable text is left as it is
    assert escape("C:\\data\\n") == "C:\\data\\n"  # backslashes too: a command reads as typed


def test_colour_only_on_the_status_cell_and_never_in_widths():
    lines = jobs_table("a").render(width=None, colour=True)
    assert "\x1b" not in lines[0] and lines[1].count("\x1b[") == 2
    plain = jobs_table("a").render(width=None, colour=False)
    assert [visible(line) for line in lines] == plain


def test_colour_follows_the_terminal_no_color_and_force_color(terminal: TextIO, clean_env: pytest.MonkeyPatch):
    pipe = io.StringIO()
    assert colour_enabled(terminal) is True
    assert colour_enabled(pipe) is False
    clean_env.setenv("NO_COLOR", "")  # empty counts as unset (no-color.org)
    assert colour_enabled(terminal) is True
    clean_env.setenv("NO_COLOR", "1")
    assert colour_enabled(terminal) is False
    clean_env.setenv("FORCE_COLOR", "1")  # the more specific wish wins, on a terminal or not
    assert colour_enabled(terminal) is True and colour_enabled(pipe) is True
    clean_env.delenv("NO_COLOR")
    assert colour_enabled(pipe) is True


def test_a_terminal_is_fitted_a_pipe_never(terminal: TextIO, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COLUMNS", "64")
    assert output_width(terminal) == 64
    assert output_width(io.StringIO()) is None  # piped or redirected: never cut


@pytest.mark.parametrize("width", [44, 50, 64, 80])  # 44: every flexible column down to its header
def test_fitting_a_width_cuts_only_flexible_columns_with_an_ellipsis(width: int):
    name = "Count GSM001 " + "x" * 200
    lines = jobs_table(name, "名前 🧬 データ解析 データ解析", reason="exit code 3: " + "y" * 100).render(
        width=width, colour=True)
    assert all(cell_width(visible(line)) <= width for line in lines)
    header, *rows = (visible(line) for line in lines)
    assert header.split() == ["Job", "ID", "Name", "Status", "Runtime", "Reason"]  # Resources needs 150
    for n, row in enumerate(rows):
        job_id, *_ = row.split()
        assert job_id == f"1m8tn0566hkm{n}"  # whole
        assert " failed " in row and " 1h 2m " in row  # whole
        assert row.split("  ")[1].strip().endswith("…")
        assert row.endswith("…")  # the reason
    assert rows[0].startswith("1m8tn0566hkm0  Cou")  # a cut value keeps its beginning
    assert column_starts(rows[0], "failed") == column_starts(rows[1], "failed") == column_starts(header, "Status")


def test_fixed_columns_are_never_cut_even_when_they_do_not_fit():
    lines = jobs_table("name").render(width=20, colour=False)
    assert lines[1].startswith("1m8tn0566hkm0  name  failed  1h 2m")  # wider than 20: the terminal wraps it


def test_a_wide_terminal_shows_the_optional_columns():
    assert "Resources" in jobs_table("a").render(width=150, colour=False)[0]
    assert "Resources" not in jobs_table("a").render(width=149, colour=False)[0]


def test_a_pipe_gets_every_column_and_every_value_in_full():
    name = "x" * 1000 + " 名前"
    lines = jobs_table(name, reason="r" * 300).render(width=None, colour=False)
    assert lines[0].split() == ["Job", "ID", "Name", "Status", "Runtime", "Resources", "Reason"]
    assert name in lines[1] and lines[1].endswith("r" * 300) and "…" not in lines[1]


def test_fit_counts_wide_characters():
    assert fit("名前データ", 7) == "名前デ…"  # 6 cells of text and the ellipsis
    assert fit("名前データ", 6) == "名前…"  # a wide character never straddles the edge
    assert cell_width(fit("名前データ", 6)) == 5
    assert fit("abcdef", 6) == "abcdef" and fit("abcdefg", 6) == "abcde…"


def test_a_title_and_no_trailing_blanks():
    table = Table((Column("A"), Column("B")), title="2 jobs")
    table.add_row("x", "")
    table.add_row("y", "z")
    assert table.render(width=None, colour=False) == ["2 jobs", "A  B", "x", "y  z"]


def test_a_row_must_fill_every_column():
    with pytest.raises(ValueError, match="a row of 1 cells for 2 columns"):
        Table((Column("A"), Column("B"))).add_row("x")
