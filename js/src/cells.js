// The table's cells: one builder per column, job text always as text nodes. Also the small
// pieces other views share (status badge, progress bar, icons, short ids).

import { h } from "./dom.js";
import { FINAL, STATUSES, dependencyInfo } from "./rows.js";
import { progressNote } from "./why.js";
import { formatPercent, formatTime, formatTimeFull, runtimeText, exitText } from "./format.js";
import { attemptText, attemptTitle, effHint, effTitle, formatBytes, formatCpu, formatEff, retryCountdown } from "./usage.js";

/** The end of a long id (ids start with their creation time: the end tells jobs apart). */
export function shortId(id) {
  const text = String(id);
  return text.length > 8 ? `…${text.slice(-6)}` : text;
}

export function safeStatus(status) {
  return STATUSES.includes(status) ? status : "unknown";
}

export function badge(status) {
  const s = safeStatus(status);
  return h("span", { class: `cj-badge cj-s-${s}` }, String(status || "unknown"));
}

export function progressBar(pct, big = false, state = "") {
  const fill = h("div", { class: "cj-bar-fill" });
  const value = Number.isFinite(pct) ? Math.max(0, Math.min(100, pct)) : 0;
  fill.style.width = `${value}%`;
  return h("div", {
    class: `cj-bar${big ? " cj-bar-lg" : ""}${state ? ` cj-bar-${state}` : ""}`, role: "progressbar",
    "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(value),
  }, fill);
}

/** A small inline SVG icon (no font glyphs: every font shows it). */
export function icon(kind) {
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  for (const [k, v] of [["class", `cj-icon cj-icon-${kind}`], ["width", "12"], ["height", "12"], ["viewBox", "0 0 16 16"], ["aria-hidden", "true"]]) svg.setAttribute(k, v);
  const path = document.createElementNS(NS, "path");
  path.setAttribute("fill", "currentColor");
  path.setAttribute("d", kind === "warn"
    ? "M8 1l7.5 13.5h-15zM7.1 6v4.2h1.8V6zm0 5.5v1.8h1.8v-1.8z"
    : "M13.6 8A5.6 5.6 0 1 1 11.9 4l-1.6 1.6H15V1l-1.7 1.7A7.6 7.6 0 1 0 15.6 8z");
  svg.appendChild(path);
  return svg;
}

export function cell(col, content, titleText) {
  const c = h("div", { class: "cj-cell", role: "gridcell", "data-col": col }, content);
  if (titleText) c.title = titleText;
  return c;
}

function effCell(row, key, kind) {
  const hint = effHint(kind, row[key]);
  const c = cell(key, formatEff(row[key]), row[key] !== undefined ? effTitle(kind, row[key], row) : "");
  if (hint) c.classList.add(`cj-eff-${hint}`);
  return c;
}

/** The cell builders: `ctx` = {rows() (the table's rows by id), why(row), onCountdown(span, row),
 * onRuntime(cell, row)} — the last two let the clock tick those cells. */
export function makeCells(ctx) {
  return {
    id(row, item, _t, depth, childCount, expanded) {
      const parts = [];
      if (childCount) {
        const what = item.attempts === childCount ? `${childCount} earlier attempt${childCount === 1 ? "" : "s"}`
          : item.attempts ? `${childCount - item.attempts} array tasks and ${item.attempts} earlier attempts` : `${childCount} array tasks`;
        parts.push(h("button", {
          class: "cj-expander", type: "button", "aria-expanded": String(expanded), "data-expand": row.id,
          title: `${expanded ? "Collapse" : "Expand"}: ${what}`,
        }, expanded ? "▾" : "▸"));
      } else if (depth) {
        parts.push(h("span", { class: "cj-indent" }, "└"));
      }
      parts.push(h("span", { class: "cj-id" }, shortId(row.id)));
      return cell("id", parts, row.native ? `${row.id}\nscheduler id: ${row.native}` : row.id);
    },
    name(row, item, _t, depth) {
      const nameText = row.idx !== undefined && row.idx !== null && depth && !item.attempt ? `${row.name || ""} [${row.idx}]` : (row.name || "");
      const parts = [h("span", { class: "cj-name" }, nameText)];
      const attempt = attemptText(row);
      if (attempt && (item.attempts || item.attempt || row.attempt > 1)) parts.push(h("span", { class: "cj-attempt-tag" }, `#${attempt}`));
      return cell("name", parts, [row.name || "", row.cmd || "", attempt ? `attempt ${attempt}` : ""].filter(Boolean).join("\n"));
    },
    type: (row) => cell("type", row.type || "", row.type),
    scheduler: (row) => cell("scheduler", row.scheduler || "", row.native ? `${row.scheduler} job ${row.native}` : row.scheduler),
    native: (row) => cell("native", row.native || ""),
    status(row, _item, t) {
      const why = ctx.why(row);
      const parts = [badge(row.status)];
      const countdown = retryCountdown(row, t);
      if (countdown) {
        const span = h("span", { class: `cj-countdown${countdown.due ? " cj-due" : ""}` }, countdown.text);
        ctx.onCountdown(span, row);
        parts.push(h("span", { class: "cj-why-sep" }, " · "), span);
      }
      if (why.text) {
        parts.push(h("span", { class: "cj-why-sep" }, " · "),
          h("span", { class: `cj-why${why.level ? ` cj-why-${why.level}` : ""}${why.wait ? " cj-waiting" : ""}` }, why.text));
      }
      const titleText = [row.status, why.text, row.reason && row.reason !== why.text ? row.reason : "",
        row.rby ? `retried as ${row.rby}` : ""].filter(Boolean).join("\n");
      return cell("status", parts, titleText);
    },
    attempt(row) {
      const attempt = attemptText(row);
      return cell("attempt", attempt ? h("span", { class: "cj-attempt" }, attempt) : "", attempt ? attemptTitle(row) : "");
    },
    progress(row) {
      const parts = [];
      const note = progressNote(row);
      if (row.pct !== undefined && row.pct !== null) {
        const state = row.status === "failed" || row.status === "cancelled" ? "failed" : FINAL.has(row.status) && row.pct < 100 ? "short" : "";
        parts.push(progressBar(row.pct, false, state), h("span", { class: "cj-pct" }, formatPercent(row.pct)));
      }
      if (note) parts.push(h("span", { class: "cj-stage" }, note));
      return cell("progress", parts, [formatPercent(row.pct), note].filter(Boolean).join(" · "));
    },
    runtime(row, _item, t) {
      const c = cell("runtime", runtimeText(row, t));
      if (row.status === "running" && (row.end === undefined || row.end === null)) ctx.onRuntime(c, row);
      return c;
    },
    cpu: (row) => cell("cpu", formatCpu(row.cpu), row.cpu !== undefined ? `CPU now: ${formatCpu(row.cpu)} (100% = one core)` : ""),
    rss: (row) => cell("rss", formatBytes(row.rss), row.rss !== undefined ? `Memory now (RSS): ${formatBytes(row.rss)}` : ""),
    peak: (row) => cell("peak", formatBytes(row.peak), row.peak !== undefined ? `Peak memory: ${formatBytes(row.peak)}` : ""),
    ceff: (row) => effCell(row, "ceff", "cpu"),
    meff: (row) => effCell(row, "meff", "mem"),
    submit: (row, _i, t) => cell("submit", formatTime(row.submit, t), formatTimeFull(row.submit)),
    start: (row, _i, t) => cell("start", formatTime(row.start, t), formatTimeFull(row.start)),
    end: (row, _i, t) => cell("end", formatTime(row.end, t), formatTimeFull(row.end)),
    exit: (row) => cell("exit", exitText(row)),
    res: (row) => cell("res", row.res || "", row.res),
    reason(row) {
      let reason = row.reason || "";
      let reasonClass = "cj-reason";
      const dep = dependencyInfo(row, ctx.rows());
      if (!reason && dep) {
        reason = dep.text;
        reasonClass = dep.waiting.length ? "cj-dep cj-waiting" : "cj-dep";
      }
      if (!reason && row.rreason) reason = row.rreason;
      const parts = [h("span", { class: reasonClass }, reason)];
      if (row.rby) parts.push(h("span", { class: "cj-retried" }, ` → retried as ${row.rby}`));
      return cell("reason", parts, [row.reason, dep ? dep.text : "", row.rby ? `retried as ${row.rby}` : ""].filter(Boolean).join("\n"));
    },
  };
}
