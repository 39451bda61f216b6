// The table's data logic: applying the kernel's snapshot + diff, sorting, filtering, grouping array
// tasks under their parent, dependency text and the virtual window. Pure: no DOM.

import { runtimeSeconds } from "./format.js";
import { isEnding } from "./notify.js";

export const STATUSES = ["pending", "queued", "held", "running", "completed", "failed", "cancelled", "unknown"];
export const FINAL = new Set(["completed", "failed", "cancelled"]);

// The default view (`show: true`) fits a ~1,000 px notebook: id and name (pinned when a wider view
// scrolls), type, status with its reason inline, progress, runtime and end. The rest is one click
// away in the column chooser. `min` is the narrowest a column gets; `grow` shares the spare width.
// `constant`: hidden by default when every row has the same value (all "local").
export const COLUMNS = [
  { key: "id", label: "Job ID", width: 76, show: true, pin: true, hint: "The job's id, shortened (hover for all of it)" },
  { key: "name", label: "Name", width: 104, grow: 1, show: true, pin: true },
  { key: "type", label: "Type", width: 80, show: true, constant: true },
  { key: "status", label: "Status", width: 220, grow: 3, show: true, hint: "Status and why: the exit code and last error line of a failed job, what a waiting job waits for" },
  { key: "progress", label: "Progress", width: 120, grow: 1, show: true },
  { key: "runtime", label: "Runtime", width: 70, show: true },
  { key: "end", label: "Ended", width: 70, show: true },
  { key: "scheduler", label: "Scheduler", width: 90, constant: true },
  { key: "attempt", label: "Attempt", width: 74, hint: "Attempt n/m: m = 1 + the automatic retries its policy allows" },
  { key: "cpu", label: "CPU", width: 62, hint: "Current CPU use of a running job (100% = one core busy)" },
  { key: "rss", label: "Mem", width: 64, hint: "Current resident memory (RSS) of a running job's processes" },
  { key: "peak", label: "Peak", width: 64, hint: "The most memory the job has used" },
  { key: "ceff", label: "CPU eff", width: 74, hint: "CPU time / (run time × requested CPUs); flagged under 25%" },
  { key: "meff", label: "Mem eff", width: 78, hint: "Peak memory / requested memory; flagged over 90%" },
  { key: "submit", label: "Submitted", width: 88 },
  { key: "start", label: "Started", width: 88 },
  { key: "exit", label: "Exit code", width: 76 },
  { key: "res", label: "Resources", width: 150 },
  { key: "native", label: "Scheduler id", width: 100 },
  { key: "reason", label: "Reason", width: 240 },
];

/**
 * The rows as the kernel sent them. The kernel keeps three traits: `snapshot` ({gen, seq, rows}:
 * the full table, sent once and again only after compaction), `delta` ({gen, seq, base, rows,
 * removed, meta}: every row changed after tick `base`, up to tick `seq`; `base` absent = since the
 * snapshot) and `pending` ({gen, seq, rows}: every row changed since the snapshot, as of tick
 * `seq`; filled in the state a view loads and at the end of each cell run). Applying is
 * idempotent, so any view — a second display of the widget, a reloaded page, a saved notebook —
 * rebuilds the same table from the traits. When a delta starts after the ticks a view has
 * (`base` past them), `gap` is set: the view asks the kernel for the rows (`applyRows`).
 *
 * After each sync, `ended` lists the rows that became completed/failed/cancelled in it (or that
 * appeared already ended). The first sync is the baseline: jobs that had ended before the view
 * was shown are never reported.
 */
export class RowStore {
  constructor() {
    this.gen = null;
    this.seq = null;
    this.rows = new Map();
    this.version = 0;
    this.ended = [];
    this.gap = false;
  }

  /** Bring the store up to date; returns true when rows changed. */
  sync(snapshot, delta, pending = null) {
    let changed = false;
    const baseline = this.gen === null;
    const ended = [];
    const put = (row) => {
      const old = this.rows.get(row.id);
      if (!old || !shallowEqual(old, row)) {
        this.rows.set(row.id, row);
        changed = true;
        if (!baseline && isEnding(old, row)) ended.push(row);
      }
    };
    if (snapshot && snapshot.gen !== undefined && snapshot.gen !== this.gen) {
      const before = this.rows;
      this.rows = new Map();
      for (const row of snapshot.rows || []) {
        this.rows.set(row.id, row);
        if (!baseline && isEnding(before.get(row.id), row)) ended.push(row);
      }
      this.gen = snapshot.gen;
      this.seq = snapshot.seq ?? null;
      this.gap = false;
      changed = true;
    }
    if (pending && pending.gen === this.gen && pending.seq !== undefined && (this.seq === null || pending.seq > this.seq)) {
      for (const row of pending.rows || []) put(row);
      this.seq = pending.seq;
      this.gap = false;
    }
    if (delta && delta.gen === this.gen && delta.seq !== this.seq && (this.seq === null || !(delta.seq < this.seq))) {
      const base = delta.base ?? null;
      if (base !== null && base > (this.seq ?? 0)) this.gap = true; // ticks (this.seq, base] are missing
      for (const row of delta.rows || []) put(row);
      for (const id of delta.removed || []) {
        if (this.rows.delete(id)) changed = true;
      }
      this.seq = delta.seq;
    }
    if (changed) this.version++;
    this.ended = ended;
    return changed;
  }

  /** The kernel's answer to a resync ({gen, seq, rows}: every row changed since the snapshot). */
  applyRows(msg) {
    if (!msg || msg.gen !== this.gen || (this.seq !== null && msg.seq < this.seq)) return false;
    let changed = false;
    for (const row of msg.rows || []) {
      const old = this.rows.get(row.id);
      if (!old || !shallowEqual(old, row)) {
        this.rows.set(row.id, row);
        changed = true;
      }
    }
    this.gap = false;
    this.seq = msg.seq;
    if (changed) this.version++;
    return changed;
  }
}

function shallowEqual(a, b) {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    const va = a[k];
    const vb = b[k];
    if (va === vb) continue;
    if (Array.isArray(va) && Array.isArray(vb) && va.length === vb.length && va.every((x, i) => x === vb[i])) continue;
    return false;
  }
  return true;
}

/**
 * Attempts of one logical job: a manual or automatic retry links the old attempt to the new one
 * (`retry_of` on the new row, `rby` on the old). Returns Map(id -> id of the latest attempt) for
 * every row that has a later attempt in the table.
 */
export function supersededBy(rowsMap) {
  const next = new Map();
  for (const row of rowsMap.values()) {
    if (row.retry_of && rowsMap.has(row.retry_of) && row.retry_of !== row.id) next.set(row.retry_of, row.id);
  }
  for (const row of rowsMap.values()) {
    if (row.rby && rowsMap.has(row.rby) && row.rby !== row.id && !next.has(row.id)) next.set(row.id, row.rby);
  }
  const latest = new Map();
  for (const id of next.keys()) {
    let cur = id;
    for (let i = 0; i < 100 && next.has(cur); i++) cur = next.get(cur);
    if (cur !== id) latest.set(id, cur);
  }
  return latest;
}

/** The rows that count as jobs: every row but the earlier attempts of a retried job. */
export function logicalRows(rowsMap, superseded = supersededBy(rowsMap)) {
  const out = [];
  for (const row of rowsMap.values()) if (!superseded.has(row.id)) out.push(row);
  return out;
}

export function statusCounts(rows) {
  const counts = Object.fromEntries(STATUSES.map((s) => [s, 0]));
  let total = 0;
  for (const row of rows) {
    counts[row.status] = (counts[row.status] || 0) + 1;
    total++;
  }
  return { counts, total };
}

/**
 * The ended jobs the kernel has not loaded (meta.older): {total, counts by known status, page}.
 * Values that are not counts are ignored, so a hostile or old state never breaks the chips.
 */
export function olderJobs(meta) {
  const older = (meta && typeof meta.older === "object" && meta.older) || {};
  const counts = {};
  let total = 0;
  const given = (older.counts && typeof older.counts === "object") ? older.counts : {};
  for (const s of STATUSES) {
    const n = Number(given[s]);
    if (Number.isSafeInteger(n) && n > 0) {
      counts[s] = n;
      total += n;
    }
  }
  const page = Number(older.page);
  return { total, counts, page: Number.isSafeInteger(page) && page > 0 ? page : 500 };
}

const collator = new Intl.Collator("en", { numeric: true, sensitivity: "base" });
const STATUS_RANK = Object.fromEntries(STATUSES.map((s, i) => [s, i]));

/** The value a column sorts by (null sorts last in both directions). */
export function sortValue(row, key, nowMs) {
  switch (key) {
    case "status": return STATUS_RANK[row.status] ?? STATUSES.length;
    case "progress": return row.pct ?? null;
    case "attempt": return row.attempt ?? 1;
    case "runtime": return runtimeSeconds(row, nowMs);
    case "submit": case "start": case "end": case "exit": case "idx": return row[key] ?? null;
    case "reason": return row.reason ?? null;
    default: return row[key] ?? null;
  }
}

export function compareRows(a, b, key, dir, nowMs) {
  const va = sortValue(a, key, nowMs);
  const vb = sortValue(b, key, nowMs);
  const aNull = va === null || va === undefined || va === "";
  const bNull = vb === null || vb === undefined || vb === "";
  if (aNull || bNull) {
    if (aNull && bNull) return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
    return aNull ? 1 : -1; // empty values last, whichever the direction
  }
  let c = typeof va === "number" && typeof vb === "number" ? va - vb : collator.compare(String(va), String(vb));
  if (c === 0) c = a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  return dir === "desc" ? -c : c;
}

export function sortRows(rows, key, dir, nowMs) {
  return [...rows].sort((a, b) => compareRows(a, b, key, dir, nowMs));
}

const TEXT_FIELDS = ["id", "name", "type", "scheduler", "status", "reason", "res", "native", "stage", "cmd", "parent", "rreason", "rby", "retry_of"];

/** Whether a row passes the status chips (empty set = all) and the free-text filter (all words). */
export function matchesFilter(row, statuses, text) {
  if (statuses && statuses.size && !statuses.has(row.status)) return false;
  const words = (text || "").toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return true;
  const hay = TEXT_FIELDS.map((f) => (row[f] === undefined || row[f] === null ? "" : String(row[f]))).join("\n").toLowerCase();
  return words.every((w) => hay.includes(w));
}

export function filterRows(rows, statuses, text) {
  return rows.filter((row) => matchesFilter(row, statuses, text));
}

const AGGREGATE_ORDER = ["running", "held", "queued", "pending", "unknown", "failed", "cancelled", "completed"];

/** The status of an array job from its tasks: active wins, then failed > cancelled > completed. */
export function aggregateStatus(children) {
  const present = new Set(children.map((c) => c.status));
  for (const s of AGGREGATE_ORDER) if (present.has(s)) return s;
  return "unknown";
}

function groupRow(parentId, children) {
  const first = children[0];
  const starts = children.map((c) => c.start).filter((v) => v !== undefined && v !== null);
  const ends = children.map((c) => c.end).filter((v) => v !== undefined && v !== null);
  const submits = children.map((c) => c.submit).filter((v) => v !== undefined && v !== null);
  const status = aggregateStatus(children);
  const done = children.filter((c) => FINAL.has(c.status)).length;
  const row = {
    id: parentId, name: first.name, type: first.type, scheduler: first.scheduler, status,
    res: first.res, synthetic: true,
    pct: Math.round((1000 * done) / children.length) / 10,
    stage: `${done}/${children.length} tasks done`,
  };
  if (submits.length) row.submit = Math.min(...submits);
  if (starts.length) row.start = Math.min(...starts);
  if (ends.length && done === children.length) row.end = Math.max(...ends);
  return row;
}

/**
 * The rows to show, in order: top-level jobs sorted by the chosen column, each array parent
 * followed by its tasks when expanded. A parent stays visible when only some of its tasks match
 * the filter. Returns {items: [{row, depth, childCount, expanded}], matched, total}.
 */
export function buildView(rowsMap, {
  sortKey = "submit", sortDir = "desc", statuses = null, text = "", expanded = new Set(), nowMs = Date.now(), superseded: known = null,
} = {}) {
  const all = rowsMap instanceof Map ? [...rowsMap.values()] : [...rowsMap];
  const byId = rowsMap instanceof Map ? rowsMap : new Map(all.map((r) => [r.id, r]));
  const superseded = known || supersededBy(byId);
  const children = new Map();
  const top = [];
  for (const row of all) {
    const latest = superseded.get(row.id);
    if (latest !== undefined) {
      // An earlier attempt: listed under the latest one (expand to see it).
      if (!children.has(latest)) children.set(latest, []);
      children.get(latest).push(row);
    } else if (row.parent !== undefined && row.parent !== null && row.parent !== row.id) {
      if (!children.has(row.parent)) children.set(row.parent, []);
      children.get(row.parent).push(row);
    } else {
      top.push(row);
    }
  }
  for (const [parentId, kids] of children) {
    if (!byId.has(parentId)) top.push(groupRow(parentId, kids));
  }
  let matched = 0;
  const kept = [];
  const keptChildren = new Map();
  for (const row of top) {
    const kids = children.get(row.id) || [];
    const kidsMatching = kids.filter((k) => matchesFilter(k, statuses, text));
    const selfMatch = matchesFilter(row, statuses, text);
    if (!selfMatch && !kidsMatching.length) continue;
    if (selfMatch && !row.synthetic) matched++;
    matched += kidsMatching.filter((k) => !superseded.has(k.id)).length;
    kept.push(row);
    if (kids.length) keptChildren.set(row.id, { kids: kidsMatching, total: kids.length, attempts: kids.filter((k) => superseded.has(k.id)).length });
  }
  const sortedTop = sortRows(kept, sortKey, sortDir, nowMs);
  const items = [];
  for (const row of sortedTop) {
    const group = keptChildren.get(row.id);
    const isOpen = group ? expanded.has(row.id) : false;
    const attempts = group ? group.attempts : 0;
    items.push({ row, depth: 0, childCount: group ? group.total : 0, attempts, expanded: isOpen });
    if (group && isOpen) {
      const kidsSorted = sortKey === "submit" || sortKey === "id"
        ? [...group.kids].sort((a, b) => (a.idx ?? 0) - (b.idx ?? 0) || compareRows(a, b, "id", "asc", nowMs))
        : sortRows(group.kids, sortKey, sortDir, nowMs);
      for (const kid of kidsSorted) items.push({ row: kid, depth: 1, childCount: 0, expanded: false, attempt: superseded.has(kid.id) });
    }
  }
  const total = all.length - superseded.size;
  return { items, matched, total };
}

/**
 * What a job waits for: {text, waiting: [{id, name, status}]} or null. Parents' current statuses
 * come from the table, so the text changes as they finish.
 */
export function dependencyInfo(row, rowsMap) {
  const deps = row.deps || [];
  if (!deps.length) return null;
  const kind = row.dkind || "afterok";
  const parents = deps.map((id) => {
    const p = rowsMap.get(id);
    return { id, name: p ? p.name : null, status: p ? p.status : "missing" };
  });
  const waiting = parents.filter((p) => !FINAL.has(p.status) && p.status !== "missing");
  const describe = (p) => `${p.name ? `${p.name} ` : ""}(${p.id}, ${p.status})`;
  if (!FINAL.has(row.status) && row.status !== "running" && waiting.length) {
    return { text: `waits for ${waiting.map(describe).join(", ")} · ${kind}`, waiting };
  }
  return { text: `after ${parents.map(describe).join(", ")} · ${kind}`, waiting };
}

/** The rows of a virtualised list to render: [start, end) with `overscan` rows either side. */
export function visibleRange(scrollTop, viewportHeight, rowHeight, total, overscan = 8) {
  if (total <= 0) return { start: 0, end: 0 };
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const count = Math.ceil(Math.max(0, viewportHeight) / rowHeight) + 1;
  const start = Math.max(0, Math.min(total - 1, first) - overscan);
  const end = Math.min(total, first + count + overscan);
  return { start, end };
}
