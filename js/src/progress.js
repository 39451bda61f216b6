// The JobProgress view: a bar, stage, details and an ETA (ticking in the browser) per job.

import { h, clear } from "./dom.js";
import { etaText as etaFor, formatPercent, runtimeText } from "./format.js";
import { createTicker } from "./ticker.js";
import { badge } from "./table.js";
import { progressNote } from "./why.js";

export function renderProgress({ model, el }) {
  let skew = 0;
  const root = h("div", { class: "cj-root cj-progress", "data-widget": "job-progress" });
  const title = h("div", { class: "cj-progress-title" });
  const list = h("div", { class: "cj-progress-list" });
  root.append(title, list);
  el.append(root);
  const timed = [];

  function etaText(item, nowMs) {
    return etaFor(item.pct, item.start, item.pupd, nowMs);
  }

  function render() {
    const state = model.get("progress") || {};
    const items = state.items || [];
    title.textContent = model.get("title") || "";
    clear(list);
    timed.length = 0;
    const nowMs = Date.now() - skew;
    if (!items.length) {
      list.append(h("div", { class: "cj-progress-empty" }, state.empty || "No job is reporting progress."));
      return;
    }
    for (const item of items) {
      const fill = h("div", { class: "cj-bar-fill" });
      const pct = Number.isFinite(item.pct) ? Math.max(0, Math.min(100, item.pct)) : 0;
      fill.style.width = `${pct}%`;
      const bar = h("div", {
        class: `cj-bar cj-bar-lg${item.pct === undefined || item.pct === null ? " cj-bar-unknown" : ""}${
          item.status === "failed" || item.status === "cancelled" ? " cj-bar-failed" : item.status === "completed" && item.pct < 100 ? " cj-bar-short" : ""}`,
        role: "progressbar",
        "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(pct),
      }, fill);
      const eta = h("span", { class: "cj-eta" }, item.status === "running" ? etaText(item, nowMs) : "");
      const runtime = h("span", { class: "cj-progress-runtime" }, runtimeText(item, nowMs));
      if (item.status === "running") timed.push([eta, runtime, item]);
      const details = Object.entries(item.details || {}).map(([k, v]) => `${k}=${v}`).join(" · ");
      list.append(h("div", { class: "cj-progress-item", "data-job-id": item.id },
        h("div", { class: "cj-progress-head" },
          h("span", { class: "cj-progress-name", title: item.name || "" }, item.name || item.id), " ",
          h("code", {}, item.id), " ", badge(item.status), " ",
          h("span", { class: "cj-pct" }, formatPercent(item.pct))),
        bar,
        h("div", { class: "cj-progress-meta" },
          h("span", { class: "cj-stage" }, progressNote(item) || (item.pct === undefined || item.pct === null ? "no progress reported" : "")), eta, runtime),
        details ? h("div", { class: "cj-progress-details" }, details) : null));
    }
  }

  function tick() {
    const nowMs = Date.now() - skew;
    for (const [eta, runtime, item] of timed) {
      eta.textContent = etaText(item, nowMs);
      runtime.textContent = runtimeText(item, nowMs);
    }
  }

  const onChange = () => {
    const state = model.get("progress") || {};
    if (state.now) skew = Date.now() - state.now;
    render();
  };
  model.on("change:progress", onChange);
  model.on("change:title", render);
  render();
  const ticker = createTicker(tick).start();
  return () => {
    ticker.stop();
    model.off("change:progress", onChange);
    model.off("change:title", render);
  };
}
