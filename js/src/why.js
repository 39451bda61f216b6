// What the status column says after the status: *why* a job is where it is, in a few words.
// "exit 3 · Error in readRDS…", "waits for Count S1", "no free slot (6/6)", "<scheduler reason>".
// And the column chooser's choices (remembered in the browser). Pure: js/test/why.test.mjs.

import { FINAL, COLUMNS } from "./rows.js";

const EXIT_REASON = /^(exit code|exited with( code)?) -?\d+\.?$/i;

/** Local jobs holding a slot (started or being started) — for "no free slot (n/m)". */
export function localSlotsUsed(rows) {
  let used = 0;
  for (const row of rows) if (row.scheduler === "local" && (row.status === "running" || row.status === "queued")) used++;
  return used;
}

function name(p) {
  return p.name ? String(p.name) : String(p.id);
}

/**
 * The reason shown inline after the status badge: {text, level ("error"|"wait"|"info"|""), wait}.
 * `ctx`: {rows: Map id -> row, slotsUsed, slotsMax}. A retry countdown is drawn by the caller.
 */
export function statusWhy(row, ctx = {}) {
  const status = row.status;
  const reason = row.reason ? String(row.reason) : "";
  if (status === "failed") {
    const parts = [];
    if (row.exit !== undefined && row.exit !== null) parts.push(`exit ${row.exit}`);
    else if (row.sig !== undefined && row.sig !== null) parts.push(`signal ${row.sig}`);
    if (reason && !EXIT_REASON.test(reason.trim())) parts.push(reason);
    if (row.err && !parts.some((p) => p.includes(row.err))) parts.push(String(row.err));
    return { text: parts.join(" · "), level: "error" };
  }
  if (status === "cancelled" || status === "unknown") return { text: reason, level: "" };
  if (status === "held") return { text: reason || "held by the scheduler", level: "wait" };
  if (status === "pending" || status === "queued") {
    const rows = ctx.rows || new Map();
    const waiting = (row.deps || []).map((id) => rows.get(id) || { id, status: "missing" })
      .filter((p) => !FINAL.has(p.status) && p.status !== "missing");
    if (waiting.length) return { text: `waits for ${waiting.map(name).join(", ")}`, level: "wait", wait: true };
    if (reason) return { text: reason, level: "wait" };
    if (row.nb !== undefined && row.nb !== null) return { text: row.rreason ? String(row.rreason) : "", level: "wait" };
    if (row.scheduler === "local" && status === "pending" && ctx.slotsMax) {
      const used = ctx.slotsUsed ?? 0;
      if (used >= ctx.slotsMax) return { text: `no free slot (${used}/${ctx.slotsMax})`, level: "wait", wait: true };
      return { text: "starting", level: "info" };
    }
    return { text: "", level: "" };
  }
  return { text: "", level: "" };
}

/** What the progress cell says beside the bar: the stage, or plainly where a job stopped. */
export function progressNote(row) {
  const hasPct = row.pct !== undefined && row.pct !== null;
  if (FINAL.has(row.status) && hasPct && row.pct < 100) {
    const verb = row.status === "completed" ? "ended" : "stopped";
    return `${verb} at ${Math.round(row.pct * 10) / 10}%${row.stage ? ` · ${row.stage}` : ""}`;
  }
  return row.stage ? String(row.stage) : "";
}

// -- the column chooser ------------------------------------------------------------------------

export const COLUMNS_KEY = "celline-jobs:columns";

/** The user's choices ({key: true|false}) from storage; {} when none or unreadable. */
export function loadColumnChoices(store = undefined) {
  try {
    const storage = store === undefined ? globalThis.localStorage : store; // may throw (sandboxed page)
    const data = JSON.parse((storage && storage.getItem(COLUMNS_KEY)) || "{}");
    if (!data || typeof data !== "object" || Array.isArray(data)) return {};
    const known = new Set(COLUMNS.map((c) => c.key));
    return Object.fromEntries(Object.entries(data).filter(([k, v]) => known.has(k) && typeof v === "boolean"));
  } catch (_err) {
    return {};
  }
}

export function saveColumnChoices(choices, store = undefined) {
  try {
    const storage = store === undefined ? globalThis.localStorage : store;
    if (storage) storage.setItem(COLUMNS_KEY, JSON.stringify(choices));
  } catch (_err) {
    // private mode or quota: the choice lasts for this view only
  }
}

/** Columns whose value is the same in every row (only for columns marked `constant`). */
export function constantColumns(rows) {
  const out = new Set();
  for (const col of COLUMNS) {
    if (!col.constant) continue;
    let first;
    let same = true;
    let seen = 0;
    for (const row of rows) {
      const v = row[col.key] ?? "";
      if (seen++ === 0) first = v;
      else if (v !== first) { same = false; break; }
    }
    if (same && seen > 0) out.add(col.key);
  }
  return out;
}

/** The columns to draw: the user's choice, else the default minus constant ones; pinned first. */
export function visibleColumns(choices = {}, constant = new Set()) {
  const cols = COLUMNS.filter((c) => (c.key in choices ? choices[c.key] : c.show && !constant.has(c.key)));
  if (!cols.some((c) => c.key === "id")) cols.unshift(COLUMNS[0]);
  return cols;
}

/** CSS grid columns and the minimum width of a row for `cols`. */
export function gridTemplate(cols) {
  const template = cols.map((c) => (c.grow ? `minmax(${c.width}px, ${c.grow}fr)` : `${c.width}px`)).join(" ");
  const width = cols.reduce((sum, c) => sum + c.width, 0);
  return { template, width };
}
