"""Plain-text tables the way ``squeue``, ``ps``, ``kubectl get`` and ``docker ps`` print them.

A header row, then one line per row, columns aligned with spaces, no box drawing. Stdlib only and
cheap to import: ``celline-jobs list`` must start fast (rich costs ~25 ms of imports). Part of the
CLI layer; ``watch`` feeds the same lines to rich.

Rules:

- **Cells are data.** Job names, commands, reasons and scheduler output may hold anything, so every
  control character (C0, DEL, C1: ESC, CR, LF, TAB, ...) is shown escaped (``\\x1b``, ``\\r``,
  ``\\n``, ``\\t``), as are the Unicode characters that reorder text or split lines (bidi
  embeddings, overrides, isolates and marks, U+2028, U+2029) and lone surrogates (``\\u202e``).
  No cell can move the cursor, recolour the terminal, or break its row into two lines. Backslashes
  are left alone, so a command's ``'%s\\n'`` reads as it was typed.
- **Widths are terminal cells**: East Asian wide and fullwidth characters take 2, combining marks
  and zero-width format characters 0.
- **Colour** (ANSI SGR) only on the cells given a style (`Styled`), and only when `colour_enabled`:
  ``FORCE_COLOR`` set (non-empty) forces it; otherwise the stream must be a terminal and
  ``NO_COLOR`` (https://no-color.org) unset or empty. FORCE_COLOR wins over NO_COLOR because it is
  the more specific wish, set for one command (``FORCE_COLOR=1 celline-jobs list | less -R``)
  while NO_COLOR usually sits in a shell profile. Colour codes never count toward widths.
- **Width.** On a terminal (`output_width` gives its width) the table fits it: the columns marked
  ``flexible`` shrink with a trailing ``…``, never below their header's width or their ``floor``;
  the others are never cut. Columns with a lower ``keep`` are cut first (the widest of them first),
  so the column a reader needs most (a job's name) is cut last. A live display passes the same
  ``memo`` to every frame's table: a column never gets narrower from one frame to the next.
  A column with a ``min_terminal_width`` is left out on terminals
  narrower than that. Piped or redirected (`output_width` is None), the table shows every column
  and every value in full: nothing is cut and nothing is left out, so ``| grep``, ``awk`` and
  ``sort`` see all there is. One row is always one line.
"""

from __future__ import annotations

import os
import shutil
import sys
import unicodedata
from collections.abc import Sequence
from typing import NamedTuple, TextIO

COLUMN_GAP = "  "
ELLIPSIS = "…"
_NAMED_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
# Characters that make a terminal reorder the text around them or start a new line.
_LAYOUT_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029")


# NamedTuples, not dataclasses: a dataclass costs ~0.7 ms of import time each.
class Column(NamedTuple):
    header: str
    flexible: bool = False  # may shrink, with a trailing "…", to fit the terminal
    min_terminal_width: int = 0  # on a narrower terminal the column is left out; pipes always show it
    keep: int = 0  # when cutting to fit: columns with a lower keep are cut first
    floor: int = 0  # a flexible column is never cut below this width (nor below its header's)


class Styled(NamedTuple):
    """A cell shown in colour when colour is on."""

    text: str
    sgr: str  # ANSI SGR parameters, e.g. "1;31" for bold red


Cell = str | Styled


def _escape_char(char: str) -> str:
    code = ord(char)
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return f"\\x{code:02x}"
    if char in _LAYOUT_CONTROLS or unicodedata.category(char) == "Cs":
        return f"\\u{code:04x}"
    return char


def escape(text: str) -> str:
    """``text`` with every character that could act on the terminal shown as an escape sequence."""
    if text.isascii() and text.isprintable():  # the common case, at C speed
        return text
    return "".join(_escape_char(char) for char in text)


def _char_width(char: str) -> int:
    if unicodedata.east_asian_width(char) in ("W", "F"):
        return 2
    category = unicodedata.category(char)
    if category in ("Mn", "Me") or (category == "Cf" and char != "\u00ad"):  # a soft hyphen is drawn
        return 0
    return 1


def cell_width(text: str) -> int:
    """How many terminal cells ``text`` (already escaped) takes."""
    if text.isascii():
        return len(text)
    return sum(_char_width(char) for char in text)


def fit(text: str, width: int) -> str:
    """``text`` (already escaped) cut to at most ``width`` cells, ending in "…" when it was cut."""
    if cell_width(text) <= width:
        return text
    if width < 1:
        return ""
    room = width - cell_width(ELLIPSIS)
    if text.isascii():
        return text[:room] + ELLIPSIS
    kept: list[str] = []
    for char in text:
        room -= _char_width(char)
        if room < 0:
            break
        kept.append(char)
    return "".join(kept) + ELLIPSIS


def paint(text: str, sgr: str, colour: bool) -> str:
    """``text`` wrapped in the SGR codes ``sgr`` when ``colour`` is on."""
    return f"\x1b[{sgr}m{text}\x1b[0m" if colour and sgr else text


def _env_set(name: str) -> bool:
    return bool(os.environ.get(name))


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def colour_enabled(stream: TextIO | None = None) -> bool:
    """Whether to colour what goes to ``stream`` (default: stdout); see the module's rules."""
    if _env_set("FORCE_COLOR"):
        return True
    return _is_terminal(stream or sys.stdout) and not _env_set("NO_COLOR")


def output_width(stream: TextIO | None = None) -> int | None:
    """The terminal's width in cells when ``stream`` (default: stdout) is one, else None (never cut)."""
    if not _is_terminal(stream or sys.stdout):
        return None
    return shutil.get_terminal_size().columns


class Table:
    """Rows of cells, rendered to aligned lines by `render`."""

    def __init__(self, columns: Sequence[Column], *, title: str | None = None, show_header: bool = True,
                 memo: dict[str, int] | None = None) -> None:
        self.columns = tuple(columns)
        self.title = title
        self.show_header = show_header
        self.rows: list[tuple[Cell, ...]] = []
        self.memo = memo  # header -> widest width shown so far (live displays: no jumping columns)

    def add_row(self, *cells: Cell) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"a row of {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(cells)

    def render(self, *, width: int | None, colour: bool) -> list[str]:
        """The lines to print: fitted to ``width`` cells, or every column in full when ``width`` is None."""
        shown = [i for i, column in enumerate(self.columns) if width is None or column.min_terminal_width <= width]
        headers = [_safe(self.columns[i].header) for i in shown]
        rows = [[_safe(row[i]) for i in shown] for row in self.rows]
        widths = [max([cell.width for cell in column], default=0)
                  for column in zip(*([headers] if self.show_header else []), *rows, strict=True)]
        if self.memo is not None:
            for n, i in enumerate(shown):
                key = self.columns[i].header
                widths[n] = self.memo[key] = max(widths[n], self.memo.get(key, 0))
        if width is not None:
            # A flexible column keeps at least its header's width or floor (and one cell for the "…").
            floors = [max(1, self.columns[i].floor, header.width if self.show_header else 0)
                      for i, header in zip(shown, headers, strict=True)]
            _shrink(widths, [self.columns[i] for i in shown], floors, width)
        lines = [escape(self.title)] if self.title else []
        if self.show_header:
            lines.append(_line(headers, widths, colour=False))
        lines.extend(_line(row, widths, colour) for row in rows)
        return lines


class _SafeCell(NamedTuple):
    """A cell made safe to print, with its width in terminal cells."""

    text: str
    width: int
    sgr: str


def _safe(cell: Cell) -> _SafeCell:
    text, sgr = (cell.text, cell.sgr) if isinstance(cell, Styled) else (cell, "")
    escaped = escape(text)
    return _SafeCell(escaped, cell_width(escaped), sgr)


def _shrink(widths: list[int], columns: list[Column], floors: list[int], width: int) -> None:
    """Narrow the widest flexible column of the lowest ``keep``, one cell at a time, until a line fits."""
    excess = sum(widths) + len(COLUMN_GAP) * (len(widths) - 1) - width
    while excess > 0:
        shrinkable = [n for n, column in enumerate(columns) if column.flexible and widths[n] > floors[n]]
        if not shrinkable:
            return  # only fixed columns left: the terminal wraps the line rather than we cut an id
        first = min(columns[n].keep for n in shrinkable)
        widest = max((n for n in shrinkable if columns[n].keep == first), key=lambda n: widths[n])
        widths[widest] -= 1
        excess -= 1


def _line(cells: Sequence[_SafeCell], widths: Sequence[int], colour: bool) -> str:
    parts = []
    for cell, width in zip(cells, widths, strict=True):
        if cell.width <= width:
            shown, used = cell.text, cell.width
        else:
            shown = fit(cell.text, width)
            used = cell_width(shown)
        # Padding goes outside the colour codes: they take no cells.
        parts.append(paint(shown, cell.sgr, colour) + " " * (width - used))
    return COLUMN_GAP.join(parts).rstrip(" ")  # no trailing blanks after the last column
