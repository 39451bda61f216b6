// Resource use, attempts, retry countdowns and disk usage: formatting and sparkline geometry.
// Pure functions (no DOM): unit-tested in js/test/usage.test.mjs. The Python static snapshot
// (celline_jobs_nb/widgets/_format.py) uses the same forms and thresholds.

import { formatDuration } from "./format.js";

/** Memory efficiency above this (percent of the request) is flagged: the job is close to OOM. */
export const MEM_EFF_HIGH = 90;
/** CPU efficiency below this (percent of the requested CPUs) is flagged: it asked for too many. */
export const CPU_EFF_LOW = 25;
/** Less free space than this fraction of the volume is a warning. */
export const DISK_LOW_FRACTION = 0.1;
export const WAITING = new Set(["pending", "queued", "held"]);

const UNITS = ["B", "K", "M", "G", "T", "P"];

const isNum = (v) => typeof v === "number" && Number.isFinite(v);

/** "512B", "12K", "1.5M", "350M", "1.2G": powers of 1024, like "mem=32G" in the Resources column. */
export function formatBytes(value) {
  if (!isNum(value)) return "";
  let n = Math.max(0, value);
  let unit = 0;
  while (n >= 1023.5 && unit < UNITS.length - 1) {
    n /= 1024;
    unit++;
  }
  if (unit === 0) return `${Math.floor(n)}B`;
  const text = n < 9.95 ? n.toFixed(1).replace(/\.0$/, "") : n.toFixed(0);
  return `${text}${UNITS[unit]}`;
}

/** Current CPU use: "187%" (100% = one core busy). */
export function formatCpu(pct) {
  return isNum(pct) ? `${Math.round(pct)}%` : "";
}

/** An efficiency in whole percent: "43%". */
export function formatEff(pct) {
  return isNum(pct) ? `${Math.round(pct)}%` : "";
}

/** The colour hint of an efficiency cell: "high" (memory > 90%), "low" (CPU < 25%) or "". */
export function effHint(kind, pct) {
  if (!isNum(pct)) return "";
  if (kind === "mem" && pct > MEM_EFF_HIGH) return "high";
  if (kind === "cpu" && pct < CPU_EFF_LOW) return "low";
  return "";
}

export function effTitle(kind, pct, row = {}) {
  if (!isNum(pct)) return kind === "cpu" ? "CPU efficiency: not measured yet" : "Memory efficiency: not measured";
  if (kind === "cpu") {
    const base = `CPU time used / (run time × requested CPUs) = ${Math.round(pct)}%`;
    return effHint("cpu", pct) ? `${base}: the job used little of the CPUs it asked for (under ${CPU_EFF_LOW}%)` : base;
  }
  const peak = isNum(row.peak) ? ` (peak ${formatBytes(row.peak)})` : "";
  const base = `Peak memory / requested memory = ${Math.round(pct)}%${peak}`;
  return effHint("mem", pct) ? `${base}: close to the request (over ${MEM_EFF_HIGH}%), a risk of running out of memory` : base;
}

/** "2/4" when a retry policy allows 4 attempts, "2" for a later attempt without one, else "". */
export function attemptText(row) {
  const n = isNum(row.attempt) ? row.attempt : 1;
  if (isNum(row.maxatt) && row.maxatt > 0) return `${n}/${row.maxatt}`;
  return n > 1 ? String(n) : "";
}

export function attemptTitle(row) {
  const n = isNum(row.attempt) ? row.attempt : 1;
  const parts = [isNum(row.maxatt) ? `attempt ${n} of at most ${row.maxatt} (automatic retries)` : `attempt ${n}`];
  if (row.retry_of) parts.push(`retry of ${row.retry_of}`);
  if (row.rreason) parts.push(`why: ${row.rreason}`);
  if (row.rby) parts.push(`retried as ${row.rby}`);
  return parts.join("\n");
}

/** "12 s", "3m 05s": a short countdown. */
export function formatCountdown(seconds) {
  if (!isNum(seconds)) return "";
  const s = Math.max(0, Math.ceil(seconds));
  return s < 60 ? `${s} s` : formatDuration(s);
}

/**
 * A retry waiting in its backoff: {text: "retry in 12 s", due: false}, or {text: "retry due, starting…",
 * due: true} once the time has come (the poller submits it on its next tick); null for other rows.
 */
export function retryCountdown(row, nowMs) {
  if (!row || !isNum(row.nb) || !WAITING.has(row.status)) return null;
  const left = (row.nb - nowMs) / 1000;
  if (left > 0) return { text: `retry in ${formatCountdown(left)}`, due: false };
  return { text: "retry due, starting…", due: true };
}

/**
 * Sparkline geometry: the SVG `points` of a polyline for `values` (nulls skipped) in a
 * width × height box, y growing downwards, the minimum at the bottom (0 unless values go below),
 * the maximum at the top. Returns {points, min, max, last, count}; points is "" with < 2 values.
 */
export function sparkPoints(values, width, height, { min = 0, max = null, pad = 1 } = {}) {
  const pts = [];
  const n = values.length;
  const nums = values.filter(isNum);
  if (nums.length < 2) return { points: "", min: null, max: null, last: nums.length ? nums[nums.length - 1] : null, count: nums.length };
  const lo = Math.min(min ?? Math.min(...nums), ...nums);
  let hi = max ?? Math.max(...nums);
  if (hi <= lo) hi = lo + 1;
  const w = Math.max(1, width - 2 * pad);
  const h = Math.max(1, height - 2 * pad);
  values.forEach((v, i) => {
    if (!isNum(v)) return;
    const x = pad + (n === 1 ? 0 : (i / (n - 1)) * w);
    const y = pad + h - ((Math.min(hi, v) - lo) / (hi - lo)) * h;
    pts.push(`${round2(x)},${round2(y)}`);
  });
  return { points: pts.join(" "), min: lo, max: hi, last: nums[nums.length - 1], count: nums.length };
}

function round2(v) {
  return Math.round(v * 100) / 100;
}

/** The two series of `samples` ([[epoch s, cpu %, rss bytes], ...]) for the sparklines. */
export function sampleSeries(samples) {
  const cpu = [];
  const rss = [];
  for (const s of Array.isArray(samples) ? samples : []) {
    if (!Array.isArray(s)) continue;
    cpu.push(isNum(s[1]) ? s[1] : null);
    rss.push(isNum(s[2]) ? s[2] : null);
  }
  const times = (Array.isArray(samples) ? samples : []).map((s) => (Array.isArray(s) && isNum(s[0]) ? s[0] : null)).filter(isNum);
  const span = times.length > 1 ? times[times.length - 1] - times[0] : 0;
  return { cpu, rss, span };
}

/**
 * The disk usage line (meta.disk = {folders: [[name, bytes]...], free, total, at}):
 * {text: "data 1.2G · resources 300M · free 120G of 500G (24%)", low, freeFraction} or null.
 */
export function diskSummary(disk) {
  if (!disk || typeof disk !== "object") return null;
  const parts = [];
  for (const entry of Array.isArray(disk.folders) ? disk.folders : []) {
    if (Array.isArray(entry) && entry.length >= 2 && isNum(entry[1])) parts.push(`${String(entry[0])} ${formatBytes(entry[1])}`);
  }
  let freeFraction = null;
  if (isNum(disk.free)) {
    let text = `free ${formatBytes(disk.free)}`;
    if (isNum(disk.total) && disk.total > 0) {
      freeFraction = disk.free / disk.total;
      text += ` of ${formatBytes(disk.total)} (${Math.round(freeFraction * 100)}%)`;
    }
    parts.push(text);
  }
  if (!parts.length) return null;
  return { text: parts.join(" · "), low: freeFraction !== null && freeFraction < DISK_LOW_FRACTION, freeFraction };
}
