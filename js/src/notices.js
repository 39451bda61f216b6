// The status strip above the table: one line, in the flow of the page (never over a row), that
// says which jobs ended lately — aggregated while endings keep coming ("3 jobs ended: 2 completed,
// 1 failed") — with "Show log" for the job to look at. Text only.

import { h, clear } from "./dom.js";
import { summarizeEnded } from "./notify.js";
import { statusWhy } from "./why.js";

const KEEP_MS = { ok: 10000, warn: 20000, error: 60000 };
const WINDOW_MS = 30000; // endings this close together are one notice

/** A strip in `container`; `onShow(jobId)` selects a job (its log shows below the table). */
export function createStrip(container, { onShow = null, timers = globalThis, now = () => Date.now() } = {}) {
  let ended = [];
  let since = 0;
  let timer = null;
  function hide() {
    timers.clearTimeout(timer);
    timer = null;
    ended = [];
    clear(container);
    container.removeAttribute("data-level");
    container.hidden = true;
  }
  function render() {
    const summary = summarizeEnded(ended);
    clear(container);
    if (!summary) {
      hide();
      return null;
    }
    // The job to look at: the one job, or the latest failure.
    const failures = ended.filter((r) => r.status === "failed");
    const focus = summary.jobId ? ended[ended.length - 1] : failures[failures.length - 1] || null;
    const why = focus && focus.status !== "completed" ? statusWhy(focus).text : "";
    const parts = [h("span", { class: "cj-notice-title" }, summary.title)];
    if (summary.count === 1 && why) parts.push(h("span", { class: "cj-notice-why" }, ` · ${why}`));
    else if (summary.count > 1) parts.push(h("span", { class: "cj-notice-body" }, ` · ${summary.body}`));
    const buttons = [];
    if (focus && onShow) {
      const show = h("button", { class: "cj-btn cj-link cj-notice-show", type: "button", title: `Select ${focus.name || focus.id} and follow its log` },
        summary.count === 1 ? "Show log" : `Show ${focus.name || focus.id}`);
      show.addEventListener("click", () => onShow(String(focus.id)));
      buttons.push(show);
    }
    const close = h("button", { class: "cj-notice-close", type: "button", title: "Dismiss", "aria-label": "Dismiss" }, "×");
    close.addEventListener("click", hide);
    container.append(h("span", { class: "cj-notice-text" }, parts), ...buttons, close);
    container.setAttribute("data-level", summary.level);
    container.setAttribute("data-count", String(summary.count));
    container.hidden = false;
    timers.clearTimeout(timer);
    timer = timers.setTimeout(hide, KEEP_MS[summary.level] || KEEP_MS.ok);
    return summary;
  }
  hide();
  return {
    /** Add the rows that ended in one sync; returns the summary shown (or null). */
    add(rows) {
      const fresh = (rows || []).filter(Boolean);
      if (!fresh.length) return null;
      const t = now();
      if (!ended.length || t - since > WINDOW_MS) ended = [];
      since = t;
      const ids = new Set(fresh.map((r) => r.id));
      ended = [...ended.filter((r) => !ids.has(r.id)), ...fresh];
      return render();
    },
    clear: hide,
    get rows() {
      return ended;
    },
  };
}
