// Jobs that end while the table is shown: one toast per tick, grouped ("5 jobs ended: 4 completed,
// 1 failed"), and the text of the optional browser notification. Pure: js/test/notify.test.mjs.
// Which rows ended is found by RowStore.sync (rows.js) from the diffs it applies.

export const ENDED_ORDER = ["completed", "failed", "cancelled"];
const MAX_NAMES = 4;

/** Whether `row` (new) ended compared with `old` (its previous version, or undefined if new). */
export function isEnding(old, row) {
  if (!row || !ENDED_ORDER.includes(row.status)) return false;
  return !old || !ENDED_ORDER.includes(old.status);
}

function label(row) {
  return row.name ? String(row.name) : String(row.id);
}

function detailOf(row) {
  if (row.status === "completed") return "";
  if (row.reason) return String(row.reason);
  if (row.exit !== undefined && row.exit !== null) return `exit code ${row.exit}`;
  if (row.sig !== undefined && row.sig !== null) return `signal ${row.sig}`;
  return "";
}

/**
 * What to say about the jobs that ended in one tick. Returns null for none, else
 * {title, body, level ("ok"|"warn"|"error"), counts, count, jobId (one job only), tag}.
 */
export function summarizeEnded(ended) {
  const rows = (ended || []).filter(Boolean);
  if (!rows.length) return null;
  const counts = {};
  for (const s of ENDED_ORDER) counts[s] = 0;
  for (const row of rows) counts[row.status] = (counts[row.status] || 0) + 1;
  const level = counts.failed ? "error" : counts.cancelled ? "warn" : "ok";
  if (rows.length === 1) {
    const row = rows[0];
    const extra = row.rby ? ` — retried as ${row.rby}` : "";
    return {
      title: `${label(row)} ${row.status}`, body: `${detailOf(row)}${extra}`.trim().replace(/^— /, ""), level, counts,
      count: 1, jobId: String(row.id), tag: `celline-jobs-${row.id}-${row.status}`,
    };
  }
  const breakdown = ENDED_ORDER.filter((s) => counts[s]).map((s) => `${counts[s]} ${s}`).join(", ");
  // Failed jobs first in the list of names: they are what the user wants to look at.
  const rank = (r) => (r.status === "failed" ? 0 : r.status === "cancelled" ? 1 : 2);
  const named = [...rows].sort((a, b) => rank(a) - rank(b)).slice(0, MAX_NAMES).map(label);
  const more = rows.length > MAX_NAMES ? `, and ${rows.length - MAX_NAMES} more` : "";
  return {
    title: `${rows.length} jobs ended: ${breakdown}`, body: `${named.join(", ")}${more}`, level, counts,
    count: rows.length, jobId: null, tag: `celline-jobs-${rows.map((r) => r.id).sort().join(",").slice(0, 200)}`,
  };
}

/**
 * What the bell can do here: "unsupported" (no Notification API or not a secure context),
 * "denied" (blocked for this site), "default" (a click may ask) or "granted".
 */
export function notificationSupport(globalObj = globalThis) {
  const N = globalObj && globalObj.Notification;
  if (typeof N !== "function") return "unsupported";
  if (globalObj.isSecureContext === false) return "unsupported";
  const p = N.permission;
  return p === "granted" || p === "denied" ? p : "default";
}
