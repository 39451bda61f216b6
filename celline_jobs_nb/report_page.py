"""The offline report's page: its style sheet and the one inline script (the job table).

The script renders the table from the packed columns (``report_table``) with ``textContent`` only.
It never builds one object per job: sorting and filtering work on the columns, and only the first
``PAGE`` rows of the sorted, filtered table become DOM rows ("Show more" adds the next ``PAGE``).
A numeric column's sort key is the column itself, a text column's the rank of each distinct value
under the page's collator (computed once per column); the first rows are picked by a threshold
found with a native typed-array sort, so a sort or filter over 1,000,000 jobs never sorts
1,000,000 rows with a JavaScript comparator. Missing values stay last either way; equal values
keep the table's order (oldest first).
"""

from __future__ import annotations

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1400px;padding:16px 24px;
color:#111827;background:#fff;font-size:14px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
h3{font-size:15px;margin:0 0 4px}.meta{color:#6b7280;margin:2px 0}nav a{margin-right:12px;color:#2563eb}
table{border-collapse:collapse;font-size:13px}th,td{border-bottom:1px solid #e5e7eb;padding:4px 8px;text-align:left;
vertical-align:top}th{background:#f9fafb;position:sticky;top:0}th button{all:unset;cursor:pointer;font-weight:600}
th[aria-sort=ascending] button::after{content:" \\25B2"}th[aria-sort=descending] button::after{content:" \\25BC"}
td{max-width:420px;overflow-wrap:break-word}#jobs-table td{white-space:nowrap}#jobs-table td.wrap{white-space:normal;
min-width:160px}.scroll{overflow-x:auto}.chart{overflow-x:auto}
#job-filter{width:360px;padding:4px 6px}.failed{border:1px solid #fecaca;border-radius:6px;padding:10px 12px;
margin:10px 0;background:#fffafa}.reason{color:#b91c1c;margin:4px 0}
pre{background:#111827;color:#e5e7eb;padding:8px 10px;border-radius:4px;overflow-x:auto;font-size:12px;
white-space:pre-wrap;overflow-wrap:anywhere;max-height:420px}
"""


# Times show in the reader's local time. Click a header to sort by it (again to reverse).
SCRIPT = """
"use strict";
(() => {
  const table = document.getElementById("jobs-table");
  const tbody = table.tBodies[0];
  const headers = Array.from(table.tHead.rows[0].cells);
  const filter = document.getElementById("job-filter");
  const counter = document.getElementById("job-count");
  const pad = (n) => String(n).padStart(2, "0");
  const time = (ms) => {
    if (ms == null) return "";
    const d = new Date(ms);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  };
  const duration = (s) => {
    if (s == null) return "";
    if (s < 10) return `${Math.max(0, s).toFixed(1)}s`;
    const t = Math.floor(s), d = Math.floor(t / 86400), h = Math.floor(t % 86400 / 3600);
    const m = Math.floor(t % 3600 / 60), sec = t % 60;
    if (d) return `${d}d ${pad(h)}h`;
    if (h) return `${h}h ${pad(m)}m`;
    if (m) return `${m}m ${pad(sec)}s`;
    return `${sec}s`;
  };
  const wrapped = new Set(["name", "res", "reason"]);
  const numeric = new Set(["attempt", "submit", "start", "end", "wait", "run"]);
  const searched = ["id", "name", "type", "status", "reason"];
  const format = {submit: time, start: time, end: time, wait: duration, run: duration};
  const collator = new Intl.Collator(undefined, {numeric: true, sensitivity: "base"});
  // Rows in the page at first, and added by "Show more": the browser lays out 2,000 rows of this
  // table in about 0.8 s, 500 in 0.2 s, whatever the table's length.
  const PAGE = 500;
  const more = document.getElementById("job-more");
  let shown = PAGE;
  // The table's parts as packed (see report_table.py); a column is decoded whole only when a sort
  // or the filter needs it, and a cell of a shown row from its own part.
  const data = { n: 0, parts: [], starts: [], whole: new Map(), decoded: new Map() };
  const keysOf = new Map(); // column -> Float64Array sort key (NaN: missing)
  const lowered = new Map(); // column -> its values lower-cased, for the filter
  let sortKey = "submit", direction = -1;

  const missing = (v) => v == null || v === "";
  const sortKeys = (key) => {
    if (keysOf.has(key)) return keysOf.get(key);
    const values = column(key);
    const keys = new Float64Array(data.n);
    if (numeric.has(key)) {
      for (let i = 0; i < data.n; i++) keys[i] = missing(values[i]) ? NaN : Number(values[i]);
    } else if (data.parts.every((p) => !Array.isArray(p[key]) && !("front" in p[key]))) {
      // a few distinct texts (type, status, resources): rank each under the collator; equal texts share a rank
      const distinct = Array.from(new Set(values.filter((v) => !missing(v)).map(String))).sort(collator.compare);
      const rank = new Map();
      let r = 0;
      distinct.forEach((v, i) => {
        if (i && collator.compare(distinct[i - 1], v) !== 0) r++;
        rank.set(v, r);
      });
      for (let i = 0; i < data.n; i++) keys[i] = missing(values[i]) ? NaN : rank.get(String(values[i]));
    } else {  // mostly distinct texts (ids, names): the rows in collator order once, then their ranks
      keys.fill(NaN);
      const order = [];
      for (let i = 0; i < data.n; i++) if (!missing(values[i])) order.push(i);
      const text = (i) => String(values[i]);
      order.sort((a, b) => collator.compare(text(a), text(b)));
      let r = 0;
      for (let j = 0; j < order.length; j++) {
        if (j && collator.compare(text(order[j - 1]), text(order[j])) !== 0) r++;
        keys[order[j]] = r;
      }
    }
    keysOf.set(key, keys);
    return keys;
  };
  const lower = (key) => {
    if (!lowered.has(key)) lowered.set(key, column(key).map((v) => String(v ?? "").toLowerCase()));
    return lowered.get(key);
  };
  const matching = (query) => {  // indexes of the rows the filter keeps, in table order
    if (!query) return null;
    const columns = searched.map(lower);
    const out = [];
    for (let i = 0; i < data.n; i++) {
      if (columns.some((c) => c[i].includes(query))) out.push(i);
    }
    return out;
  };
  const firstRows = (rows, count) => {  // the first `count` of `rows` (null: all) in the current order
    const keys = sortKeys(sortKey);
    const n = rows ? rows.length : data.n;
    const order = new Float64Array(n); // missing values last in either direction
    for (let j = 0; j < n; j++) {
      const v = keys[rows ? rows[j] : j];
      order[j] = Number.isNaN(v) ? Infinity : direction * v;
    }
    let picked = [];
    if (n <= count) {
      for (let j = 0; j < n; j++) picked.push(j);
    } else {
      const threshold = order.slice().sort()[count - 1];
      for (let j = 0; j < n; j++) if (order[j] < threshold) picked.push(j);
      for (let j = 0; j < n && picked.length < count; j++) if (order[j] === threshold) picked.push(j);
    }
    picked.sort((a, b) => (order[a] - order[b]) || (a - b));
    return picked.map((j) => (rows ? rows[j] : j));
  };

  const render = (keep = false) => {
    if (!keep) shown = PAGE;
    const rows = matching(filter.value.trim().toLowerCase());
    const total = rows ? rows.length : data.n;
    const body = document.createDocumentFragment();
    for (const i of firstRows(rows, shown)) {
      const tr = document.createElement("tr");
      const status = cell("status", i);
      tr.dataset.status = status;
      for (const th of headers) {
        const key = th.dataset.key;
        const td = document.createElement("td");
        const value = cell(key, i);
        td.textContent = format[key] ? format[key](value) : String(value ?? "");
        if (key === "status") td.className = "st-" + status;
        if (wrapped.has(key)) td.className = "wrap";
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
    tbody.replaceChildren(body);
    counter.textContent = `${total} of ${data.n} jobs` +
      (total > shown ? ` (the first ${shown} shown: filter, sort or show more to see others)` : "");
    more.hidden = total <= shown;
    more.textContent = `Show ${Math.min(PAGE, total - shown)} more`;
    for (const th of headers) {
      th.setAttribute("aria-sort", th.dataset.key !== sortKey ? "none" : (direction > 0 ? "ascending" : "descending"));
    }
  };

  for (const th of headers) {
    th.querySelector("button").addEventListener("click", () => {
      direction = th.dataset.key === sortKey ? -direction : 1;
      sortKey = th.dataset.key;
      render();
    });
  }
  filter.addEventListener("input", () => render());
  more.addEventListener("click", () => {
    shown += PAGE;
    render(true);
  });

  // The table's data: base64 of gzip of JSON, column-major parts, each column coded (see
  // encode_column in report_table.py): small numbers as characters (code point - 48), shared
  // prefixes and rests in UTF-16 code units, as slice counts them.
  const decodeColumn = (c) => {
    if (Array.isArray(c)) return c;
    if ("same" in c) return new Array(c.n).fill(c.same);
    if ("dict" in c) {
      const out = new Array(c.codes.length);
      for (let i = 0; i < out.length; i++) out[i] = c.dict[c.codes.charCodeAt(i) - 48];
      return out;
    }
    const out = new Array(c.front.length);
    let last = "", at = 0;
    for (let i = 0; i < out.length; i++) {
      const length = c.len.charCodeAt(i) - 48;
      out[i] = last = last.slice(0, c.front.charCodeAt(i) - 48) + c.text.slice(at, at + length);
      at += length;
    }
    return out;
  };
  const partColumn = (p, key) => {
    const id = p + ":" + key;
    if (!data.decoded.has(id)) data.decoded.set(id, decodeColumn(data.parts[p][key]));
    return data.decoded.get(id);
  };
  const column = (key) => {  // every value of a column, in table order
    if (!data.whole.has(key)) {
      const parts = data.parts.map((_, p) => partColumn(p, key));
      data.whole.set(key, parts.length === 1 ? parts[0] : [].concat(...parts));
    }
    return data.whole.get(key);
  };
  const cell = (key, i) => {  // one value, decoding at most its own part of the column
    const whole = data.whole.get(key);
    if (whole) return whole[i];
    let low = 0, high = data.starts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (data.starts[mid] <= i) low = mid; else high = mid - 1;
    }
    const c = data.parts[low][key], j = i - data.starts[low];
    if (Array.isArray(c)) return c[j];
    if ("same" in c) return c.same;
    if ("dict" in c) return c.dict[c.codes.charCodeAt(j) - 48];
    return partColumn(low, key)[j];
  };
  const unpack = async () => {
    const text = document.getElementById("report-data").textContent.trim();
    let bytes;
    if (typeof Uint8Array.fromBase64 === "function") {
      bytes = Uint8Array.fromBase64(text);
    } else {
      const binary = atob(text);
      bytes = new Uint8Array(binary.length);
      for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    }
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    const packed = JSON.parse(await new Response(stream).text());
    data.n = packed.n;
    data.parts = packed.parts;
    let start = 0;
    for (const part of packed.parts) {
      data.starts.push(start);
      const c = part.id;
      start += Array.isArray(c) ? c.length : ("same" in c ? c.n : ("dict" in c ? c.codes : c.front).length);
    }
    for (const key of packed.delta) {  // whole seconds as differences: running totals, in ms
      let total = 0;
      const values = column(key).slice();
      for (let i = 0; i < values.length; i++) if (values[i] != null) values[i] = (total += values[i]) * 1000;
      data.whole.set(key, values);
    }
  };
  counter.textContent = "reading the job table…";
  unpack().then(() => {
    render();
    document.body.dataset.tableReady = "1";
  }, (error) => {
    counter.textContent = `the job table could not be read: ${error}`;
    document.body.dataset.tableReady = "error";
  });
})();
"""
