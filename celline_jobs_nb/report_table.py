"""The offline report's job table, packed for the page a chunk of the history at a time.

``TablePacker.add`` takes one ``iter_history`` chunk (a DataFrame of about 100,000 attempts),
turns it into the table's columns with column-wide pandas operations (no Python object per row
beyond the chunk's own lists), and feeds them to one streaming gzip compressor; only the
compressed bytes stay (about 1 MB per 100,000 jobs). The page's data is

    {"delta": ["submit", "start", "end"], "parts": [{"id": <column>, "name": <column>, ...}, ...], "n": N}

gzip, base64: each part column-major, each column coded by ``encode_column``, times in whole
seconds, each time column coded as the difference to its previous value (running on from one part
to the next), durations to 0.1 s. The page decodes it with DecompressionStream (nothing fetched,
so the report's CSP allows it); base64 text cannot close the script element or carry markup.
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .core.resources import format_memory, format_walltime

if TYPE_CHECKING:
    import pandas as pd

TABLE_COLUMNS = (
    ("id", "Job ID"), ("name", "Name"), ("type", "Type"), ("status", "Status"), ("attempt", "Attempt"),
    ("submit", "Submitted"), ("start", "Started"), ("end", "Ended"), ("wait", "Waited"), ("run", "Run time"),
    ("exit", "Exit"), ("res", "Resources"), ("reason", "Reason"),
)
TIME_KEYS = ("submit", "start", "end")
_TIME_SOURCES = {"submit": "submit_time", "start": "start_time", "end": "end_time"}


class TablePacker:
    """The job table as base64 of gzip of JSON, built from chunks of attempts (oldest first)."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.rows = 0
        self._compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip container
        self._out: list[bytes] = []
        self._last = dict.fromkeys(TIME_KEYS, 0)
        self._write('{"delta":' + json.dumps(list(TIME_KEYS)) + ',"parts":[')

    def _write(self, text: str) -> None:
        self._out.append(self._compressor.compress(text.encode("utf-8")))

    def add(self, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        columns = table_columns(frame, self.now)
        for key in TIME_KEYS:
            columns[key] = self._delta(key, columns[key])
        coded = {key: encode_column(values) for key, values in columns.items()}
        text = json.dumps(coded, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        self._write(("," if self.rows else "") + text)
        self.rows += len(frame)

    def _delta(self, key: str, seconds: tuple[Any, Any]) -> list[int | None]:
        import numpy as np

        values, valid = seconds
        out = np.full(len(valid), None, dtype=object)
        if valid.any():
            kept = values[valid]
            out[valid] = np.diff(kept, prepend=self._last[key]).tolist()
            self._last[key] = int(kept[-1])
        return out.tolist()

    def finish(self) -> str:
        self._write(f'],"n":{self.rows}}}')
        self._out.append(self._compressor.flush())
        return base64.b64encode(b"".join(self._out)).decode("ascii")


#: Small whole numbers (dictionary codes, lengths) travel as one character each, code point n + 48:
#: a string parses far faster than an array of numbers. Below the surrogates, so one UTF-16 unit.
_DIGIT0 = 48
_DIGIT_MAX = 0xD7FF - _DIGIT0


def _digits(numbers: list[int]) -> str | None:
    """``numbers`` as one character each, or None when one is too big for that."""
    if numbers and max(numbers) > _DIGIT_MAX:
        return None
    return "".join(map(chr, (n + _DIGIT0 for n in numbers)))


def _numbers(digits: str) -> list[int]:
    return [ord(ch) - _DIGIT0 for ch in digits]


def encode_column(values: list[Any]) -> Any:
    """One column of a part, in the first of these that fits:

    - ``{"same": v, "n": n}``: every value equal (a column of nulls, attempt 1 everywhere);
    - ``{"dict": [...], "codes": "..."}``: few distinct texts (type, status, resources, reasons),
      each value the index of its text, as one character (``_digits``);
    - ``{"front": "...", "len": "...", "text": "..."}``: many distinct texts, each stored as how
      many leading UTF-16 units it shares with the previous one (job ids made one after the other
      share most of theirs), the length of the rest, and every rest in one string;
    - the plain list.

    Few characters to compress and, for the page, a few long strings to parse instead of a million
    small values; ``decode_column`` (and the page) undo it."""
    n = len(values)
    if n and all(v == values[0] and type(v) is type(values[0]) for v in values):
        return {"same": values[0], "n": n}
    if not all(type(v) is str for v in values):
        return values
    distinct: dict[str, int] = {}
    codes = [distinct.setdefault(v, len(distinct)) for v in values]
    if len(distinct) * 4 <= n:
        coded = _digits(codes)
        if coded is not None:
            return {"dict": list(distinct), "codes": coded}
    return _front_coded(values)


def _front_coded(values: list[str]) -> Any:
    import numpy as np

    text = np.array(values, dtype=str)
    width = text.dtype.itemsize // 4
    if width == 0:
        shared = [0] * len(values)
    else:
        chars = text.view(np.uint32).reshape(len(values), width)
        same = np.zeros_like(chars, dtype=bool)
        same[1:] = chars[1:] == chars[:-1]
        # leading characters equal to the previous value's, and (padding is 0) both strings still going
        same &= chars != 0
        shared = np.where(same.all(axis=1), width, np.argmin(same, axis=1)).tolist()
    rests = [v[k:] for v, k in zip(values, shared, strict=True)]
    # The page counts in UTF-16 code units: characters beyond U+FFFF are two there.
    front = _digits([k if v.isascii() else _utf16_length(v[:k]) for v, k in zip(values, shared, strict=True)])
    lengths = _digits([len(r) if r.isascii() else _utf16_length(r) for r in rests])
    if front is None or lengths is None:
        return values
    return {"front": front, "len": lengths, "text": "".join(rests)}


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def decode_column(column: Any) -> list[Any]:
    """``encode_column`` undone."""
    if isinstance(column, list):
        return column
    if "same" in column:
        return [column["same"]] * column["n"]
    if "dict" in column:
        words = column["dict"]
        return [words[c] for c in _numbers(column["codes"])]
    units = column["text"].encode("utf-16-le")
    out: list[str] = []
    last = b""
    at = 0
    for shared, length in zip(_numbers(column["front"]), _numbers(column["len"]), strict=True):
        last = last[:2 * shared] + units[at:at + 2 * length]
        at += 2 * length
        out.append(last.decode("utf-16-le"))
    return out


def _objects(series: pd.Series) -> list[Any]:
    """The values as plain Python ones, None for missing."""
    return series.astype(object).where(series.notna(), None).tolist()


def _seconds(series: pd.Series) -> tuple[Any, Any]:
    """Whole seconds since the epoch (int64) of a UTC datetime column, and where there is one."""
    import numpy as np

    valid = series.notna().to_numpy()
    ms = series.array.asi8 // 1_000_000
    return np.round(ms / 1000).astype(np.int64), valid


def _tenths(seconds: pd.Series) -> list[float | None]:
    return _objects(seconds.round(1))


def _texts(series: pd.Series, render: Any) -> pd.Series:
    """``render`` of each distinct value (a few per column), "" where missing."""
    distinct = {value: render(value) for value in series.dropna().unique()}
    return series.map(distinct).astype("string").fillna("")


def table_columns(frame: pd.DataFrame, now: datetime) -> dict[str, Any]:
    """The table's columns for one chunk of ``to_dataframe(per="attempt")`` rows. Times are
    (seconds, valid) pairs here; ``TablePacker`` codes them."""
    import numpy as np
    import pandas as pd

    run = frame["run_time"].dt.total_seconds()
    so_far = (frame["status"] == "running") & run.isna() & frame["start_time"].notna()
    if so_far.any():  # a running job: its run time so far
        run = run.where(~so_far, (pd.Timestamp(now) - frame["start_time"]).dt.total_seconds())
    exit_text = frame["exit_code"].astype("string").fillna("")
    signal = frame["signal"]
    exit_text = exit_text.where(signal.isna(), (exit_text + " (signal " + signal.astype("string") + ")").str.strip())
    parts = [
        _texts(frame["cpus"], lambda n: f"{n} cpu"),
        _texts(frame["mem_bytes"], lambda b: format_memory(int(b))),
        _texts(frame["walltime"].dt.total_seconds(), lambda s: format_walltime(int(s))),
    ]
    resources = parts[0]
    for part in parts[1:]:
        joint = pd.Series(np.where((resources != "") & (part != ""), " · ", ""), index=frame.index, dtype="string")
        resources = resources + joint + part
    columns: dict[str, Any] = {
        "id": frame["job_id"].astype(str).tolist(), "name": frame["name"].astype(str).tolist(),
        "type": frame["job_type"].astype(str).tolist(), "status": frame["status"].astype(str).tolist(),
        "attempt": _objects(frame["attempt"]),
    }
    for key in TIME_KEYS:
        columns[key] = _seconds(frame[_TIME_SOURCES[key]])
    columns["wait"] = _tenths(frame["queue_wait"].dt.total_seconds())
    columns["run"] = _tenths(run)
    columns["exit"] = exit_text.tolist()
    columns["res"] = resources.tolist()
    columns["reason"] = frame["reason"].fillna("").astype(str).tolist()
    return {key: columns[key] for key, _label in TABLE_COLUMNS}


def unpacked_rows(block: str) -> list[dict[str, Any]]:
    """The page's data read back (what the page's script does), one dict per row: for tests and tools."""
    packed = json.loads(gzip.decompress(base64.b64decode(block)).decode("utf-8"))
    keys = [key for key, _label in TABLE_COLUMNS]
    columns: dict[str, list[Any]] = {key: [] for key in keys}
    for part in packed["parts"]:
        for key in keys:
            columns[key].extend(decode_column(part[key]))
    for key in packed["delta"]:
        total = 0
        decoded: list[int | None] = []
        for value in columns[key]:
            if value is None:
                decoded.append(None)
            else:
                total += value
                decoded.append(total * 1000)
        columns[key] = decoded
    return [{key: columns[key][i] for key in keys} for i in range(packed["n"])]
