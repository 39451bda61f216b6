// Formatting helpers shared by the views. Pure functions: unit-tested in js/test/format.test.mjs.

/** "45s", "3m 05s", "1h 02m", "2d 03h" — the same forms the Python text snapshot uses. */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "";
  const total = Math.max(0, Math.floor(seconds));
  const days = Math.floor(total / 86400);
  const hours = Math.floor((total % 86400) / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const secs = total % 60;
  const pad = (n) => String(n).padStart(2, "0");
  if (days) return `${days}d ${pad(hours)}h`;
  if (hours) return `${hours}h ${pad(minutes)}m`;
  if (minutes) return `${minutes}m ${pad(secs)}s`;
  return `${secs}s`;
}

/** Local time: "14:03:07" when on the same local day as `nowMs`, else "2026-11-28 14:03". */
export function formatTime(ms, nowMs = Date.now()) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "";
  const d = new Date(ms);
  const now = new Date(nowMs);
  const pad = (n) => String(n).padStart(2, "0");
  const hms = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const sameDay = d.getFullYear() === now.getFullYear() && d.getMonth() === now.getMonth() && d.getDate() === now.getDate();
  if (sameDay) return hms;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Full local timestamp for tooltips: "2026-11-28 14:03:07". */
export function formatTimeFull(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "";
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "just now", "3 s ago", "2 min ago", "1 h ago". */
export function formatAgo(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "";
  const s = Math.max(0, Math.floor(seconds));
  if (s < 1) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** Seconds a job has run: end - start, or now - start while running; null when it never started. */
export function runtimeSeconds(row, nowMs) {
  if (!row || row.start === undefined || row.start === null) return null;
  let end = row.end;
  if (end === undefined || end === null) {
    if (row.status !== "running") return null;
    end = nowMs;
  }
  return Math.max(0, (end - row.start) / 1000);
}

export function runtimeText(row, nowMs) {
  return formatDuration(runtimeSeconds(row, nowMs));
}

/** Seconds left, extrapolated from the time it took to reach `percent`. */
export function etaSeconds(percent, startMs, updatedMs, nowMs) {
  if (percent === null || percent === undefined || startMs === null || startMs === undefined) return null;
  if (!(percent > 0) || percent >= 100) return null;
  const reference = updatedMs ?? nowMs;
  if (reference === null || reference === undefined || reference <= startMs) return null;
  const elapsed = (reference - startMs) / 1000;
  let remaining = (elapsed * (100 - percent)) / percent;
  if (updatedMs !== null && updatedMs !== undefined && nowMs !== null && nowMs !== undefined) {
    remaining -= Math.max(0, (nowMs - updatedMs) / 1000);
  }
  return Math.max(0, remaining);
}

/** No progress report for this long (and at least 3× the pace so far): the ETA is unknown. */
export const QUIET_SECONDS = 60;

/** "ETA 3m 05s", or "ETA —" when the job went quiet or the estimate ran out; "" without progress. */
export function etaText(percent, startMs, updatedMs, nowMs) {
  const eta = etaSeconds(percent, startMs, updatedMs, nowMs);
  if (eta === null) return "";
  if (updatedMs !== null && updatedMs !== undefined && nowMs - updatedMs > QUIET_SECONDS * 1000) {
    const pace = (updatedMs - startMs) / Math.max(1, percent); // ms per percent so far
    if (nowMs - updatedMs > Math.max(QUIET_SECONDS * 1000, 3 * pace)) return "ETA —";
  }
  return eta < 1 ? "ETA —" : `ETA ${formatDuration(eta)}`;
}

export function formatPercent(pct) {
  if (pct === null || pct === undefined || !Number.isFinite(pct)) return "";
  return `${Math.round(pct * 10) / 10}%`;
}

export function exitText(row) {
  const parts = [];
  if (row.exit !== undefined && row.exit !== null) parts.push(String(row.exit));
  if (row.sig !== undefined && row.sig !== null) parts.push(`sig ${row.sig}`);
  return parts.join(" ");
}

/** Compact number with a thin separator: 5000 -> "5,000". */
export function formatCount(n) {
  return Number(n || 0).toLocaleString("en-US");
}
