// The JobTable view: status chips with counts, free-text filter, sortable columns, array tasks
// under their parent, a virtualised body (only the visible rows exist in the DOM), a ticking
// Runtime column and retry countdowns, resource use (numbers in the rows, sparklines for the
// selected job only), toasts when jobs end (optional browser notification behind the bell), the
// project's disk usage, staleness, and Cancel/Retry with an in-widget confirmation.

import { h, clear } from "./dom.js";
import { COLUMNS, STATUSES, FINAL, RowStore, buildView, statusCounts, dependencyInfo, visibleRange } from "./rows.js";
import { formatAgo, formatCount, formatDuration, formatPercent, formatTime, formatTimeFull, runtimeText, exitText } from "./format.js";
import {
  attemptText, attemptTitle, diskSummary, effHint, effTitle, formatBytes, formatCpu, formatEff, retryCountdown, sampleSeries,
} from "./usage.js";
import { summarizeEnded } from "./notify.js";
import { sparklineSvg } from "./sparkline.js";
import { createBell, createToaster } from "./toasts.js";
import { createTicker } from "./ticker.js";

export const ROW_HEIGHT = 28;
const DEFAULT_VIEWPORT = 440;
const DESC_FIRST = new Set(["submit", "start", "end", "runtime", "progress"]);

function safeStatus(status) {
  return STATUSES.includes(status) ? status : "unknown";
}

export function badge(status) {
  const s = safeStatus(status);
  return h("span", { class: `cj-badge cj-s-${s}` }, String(status || "unknown"));
}

function progressBar(pct, big = false) {
  const fill = h("div", { class: "cj-bar-fill" });
  const value = Number.isFinite(pct) ? Math.max(0, Math.min(100, pct)) : 0;
  fill.style.width = `${value}%`;
  return h("div", { class: `cj-bar${big ? " cj-bar-lg" : ""}`, role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(value) }, fill);
}

export function renderTable({ model, el }) {
  const store = new RowStore();
  const token = Math.random().toString(36).slice(2, 10);
  const st = {
    sortKey: "submit", sortDir: "desc", statuses: new Set(), text: "", expanded: new Set(),
    selected: model.get("selected") || "", view: { items: [], matched: 0, total: 0 },
    lastUpdate: null, skew: 0, meta: {}, reqSeq: 0, panel: null, result: null, busy: false,
    retryText: "", actionsKey: null, runtimeCells: [], countdownCells: [], detailKey: null, resyncAsked: false,
  };
  const now = () => Date.now() - st.skew;

  const template = COLUMNS.map((c) => `${c.width}px`).join(" ");
  const width = COLUMNS.reduce((sum, c) => sum + c.width, 0);
  const root = h("div", { class: "cj-root cj-jobtable", "data-widget": "job-table" });
  root.style.setProperty("--cj-cols", template);
  root.style.setProperty("--cj-width", `${width}px`);
  root.style.setProperty("--cj-row-h", `${ROW_HEIGHT}px`);

  const title = h("div", { class: "cj-title" });
  const chips = h("div", { class: "cj-chips", role: "toolbar", "aria-label": "Filter by status" });
  const search = h("input", { class: "cj-search", type: "search", placeholder: "Filter by name, id, type, reason…", "aria-label": "Filter jobs" });
  const updated = h("span", { class: "cj-updated", "aria-live": "off" });
  const refreshBtn = h("button", { class: "cj-btn cj-refresh", type: "button", title: "Refresh now" }, "↻ Refresh");
  const toastBox = h("div", { class: "cj-toasts", "aria-live": "polite" });
  const toaster = createToaster(toastBox, { onShow: (id) => reveal(id) });
  const bell = createBell({
    say: (message) => toaster.show({ title: message, body: "", level: "warn", count: 0, jobId: null }),
  });
  const toolbar = h("div", { class: "cj-toolbar" }, chips,
    h("div", { class: "cj-toolbar-right" }, search, updated, bell.button, refreshBtn));
  const stale = h("div", { class: "cj-stale", role: "alert" });
  stale.hidden = true;
  const header = h("div", { class: "cj-header", role: "row" });
  const rowsEl = h("div", { class: "cj-rows", role: "rowgroup" });
  const spacer = h("div", { class: "cj-spacer" }, rowsEl);
  const viewport = h("div", { class: "cj-viewport", tabindex: "0", role: "grid", "aria-label": "Jobs" }, header, spacer);
  const empty = h("div", { class: "cj-empty" });
  empty.hidden = true;
  const footCount = h("span", { class: "cj-footcount" });
  const diskEl = h("span", { class: "cj-disk" });
  diskEl.hidden = true;
  const footer = h("div", { class: "cj-footer" }, footCount, diskEl);
  const actions = h("div", { class: "cj-actions" });
  const detailEl = h("div", { class: "cj-detail", "aria-label": "Resource use of the selected job" });
  detailEl.hidden = true;
  // Toasts overlay the top right of the table, never the toolbar (search, bell, refresh stay usable).
  root.append(title, toolbar, toastBox, stale, viewport, empty, footer, actions, detailEl);
  el.append(root);

  // -- header -------------------------------------------------------------------------------
  function renderHeader() {
    clear(header);
    for (const col of COLUMNS) {
      const active = st.sortKey === col.key;
      const arrow = active ? (st.sortDir === "asc" ? " ▲" : " ▼") : "";
      const cell = h("div", {
        class: `cj-hcell${active ? " cj-sorted" : ""}`, role: "columnheader", "data-col": col.key,
        "aria-sort": active ? (st.sortDir === "asc" ? "ascending" : "descending") : "none",
      }, h("button", { class: "cj-sort", type: "button", title: col.hint ? `${col.hint}. Click to sort.` : `Sort by ${col.label}` }, col.label + arrow));
      header.append(cell);
    }
  }
  header.addEventListener("click", (event) => {
    const cell = event.target.closest("[data-col]");
    if (!cell) return;
    const key = cell.getAttribute("data-col");
    if (st.sortKey === key) st.sortDir = st.sortDir === "asc" ? "desc" : "asc";
    else {
      st.sortKey = key;
      st.sortDir = DESC_FIRST.has(key) ? "desc" : "asc";
    }
    renderHeader();
    recompute();
  });

  // -- chips and filter ----------------------------------------------------------------------
  function chip(status, label, count, active) {
    return h("button", {
      class: `cj-chip cj-chip-${status}${active ? " cj-active" : ""}`, type: "button", "data-status": status,
      "aria-pressed": String(active),
    }, label, " ", h("span", { class: "cj-count" }, formatCount(count)));
  }
  function renderChips() {
    const { counts, total } = statusCounts(store.rows.values());
    clear(chips);
    chips.append(chip("all", "All", total, st.statuses.size === 0));
    for (const s of STATUSES) {
      if (counts[s] || st.statuses.has(s)) chips.append(chip(s, s, counts[s] || 0, st.statuses.has(s)));
    }
  }
  chips.addEventListener("click", (event) => {
    const button = event.target.closest("[data-status]");
    if (!button) return;
    const s = button.getAttribute("data-status");
    if (s === "all") st.statuses.clear();
    else if (st.statuses.has(s)) st.statuses.delete(s);
    else st.statuses.add(s);
    renderChips();
    recompute();
  });
  let searchTimer = null;
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      st.text = search.value;
      recompute();
    }, 120);
  });
  refreshBtn.addEventListener("click", () => {
    model.send({ action: "refresh", req: `${token}-${++st.reqSeq}` });
  });

  // -- rows ------------------------------------------------------------------------------------
  function cell(col, content, titleText) {
    const c = h("div", { class: "cj-cell", role: "gridcell", "data-col": col }, content);
    if (titleText) c.title = titleText;
    return c;
  }

  function rowElement(item) {
    const { row, depth, childCount, expanded } = item;
    const selected = row.id === st.selected;
    const el = h("div", {
      class: `cj-row${selected ? " cj-selected" : ""}${row.synthetic ? " cj-group" : ""}${depth ? " cj-child" : ""}`,
      role: "row", "aria-selected": String(selected), "data-job-id": row.id, "data-status": safeStatus(row.status),
      "data-depth": String(depth),
    });
    const t = now();
    const idParts = [];
    if (childCount) {
      idParts.push(h("button", {
        class: "cj-expander", type: "button", "aria-expanded": String(expanded), "data-expand": row.id,
        title: `${expanded ? "Collapse" : "Expand"} ${childCount} array tasks`,
      }, expanded ? "▾" : "▸"));
    } else if (depth) {
      idParts.push(h("span", { class: "cj-indent" }, "└"));
    }
    idParts.push(h("span", { class: "cj-id" }, row.id));
    if (childCount) idParts.push(h("span", { class: "cj-kids" }, ` [${childCount}]`));
    el.append(cell("id", idParts, row.native ? `${row.id}\nscheduler id: ${row.native}` : row.id));
    const nameText = row.idx !== undefined && row.idx !== null && depth ? `${row.name || ""} [${row.idx}]` : (row.name || "");
    el.append(cell("name", h("span", { class: "cj-name" }, nameText), [row.name || "", row.cmd || ""].filter(Boolean).join("\n")));
    el.append(cell("type", row.type || "", row.type));
    el.append(cell("scheduler", row.scheduler || "", row.native ? `${row.scheduler} job ${row.native}` : row.scheduler));
    el.append(cell("status", badge(row.status)));
    const attempt = attemptText(row);
    el.append(cell("attempt", attempt ? h("span", { class: "cj-attempt" }, attempt) : "", attempt ? attemptTitle(row) : ""));
    const progressParts = [];
    if (row.pct !== undefined && row.pct !== null) {
      progressParts.push(progressBar(row.pct), h("span", { class: "cj-pct" }, formatPercent(row.pct)));
    }
    if (row.stage) progressParts.push(h("span", { class: "cj-stage" }, row.stage));
    el.append(cell("progress", progressParts, [formatPercent(row.pct), row.stage].filter(Boolean).join(" · ")));
    const runtime = cell("runtime", runtimeText(row, t));
    if (row.status === "running" && (row.end === undefined || row.end === null)) st.runtimeCells.push([runtime, row]);
    el.append(runtime);
    el.append(cell("cpu", formatCpu(row.cpu), row.cpu !== undefined ? `CPU now: ${formatCpu(row.cpu)} (100% = one core)` : ""));
    el.append(cell("rss", formatBytes(row.rss), row.rss !== undefined ? `Memory now (RSS): ${formatBytes(row.rss)}` : ""));
    el.append(cell("peak", formatBytes(row.peak), row.peak !== undefined ? `Peak memory: ${formatBytes(row.peak)}` : ""));
    for (const [key, kind] of [["ceff", "cpu"], ["meff", "mem"]]) {
      const hint = effHint(kind, row[key]);
      const c = cell(key, formatEff(row[key]), row[key] !== undefined ? effTitle(kind, row[key], row) : "");
      if (hint) c.classList.add(`cj-eff-${hint}`);
      el.append(c);
    }
    for (const key of ["submit", "start", "end"]) el.append(cell(key, formatTime(row[key], t), formatTimeFull(row[key])));
    el.append(cell("exit", exitText(row)));
    el.append(cell("res", row.res || "", row.res));
    let reason = row.reason || "";
    let reasonClass = "cj-reason";
    const dep = dependencyInfo(row, store.rows);
    if (!reason && dep) {
      reason = dep.text;
      reasonClass = dep.waiting.length ? "cj-dep cj-waiting" : "cj-dep";
    }
    const reasonParts = [];
    const countdown = retryCountdown(row, t);
    if (countdown) {
      const span = h("span", { class: `cj-countdown${countdown.due ? " cj-due" : ""}` }, countdown.text);
      st.countdownCells.push([span, row]);
      reasonParts.push(span);
      if (row.rreason && !reason) reason = row.rreason;
      if (reason) reasonParts.push(" · ");
    }
    reasonParts.push(h("span", { class: reasonClass }, reason));
    if (row.rby) reasonParts.push(h("span", { class: "cj-retried" }, ` → retried as ${row.rby}`));
    const reasonTitle = [row.reason, countdown && row.rreason ? `automatic retry after: ${row.rreason}` : "", dep ? dep.text : "",
      row.rby ? `retried as ${row.rby}` : ""].filter(Boolean).join("\n");
    el.append(cell("reason", reasonParts, reasonTitle));
    return el;
  }

  let scrollQueued = false;
  function renderRows() {
    const items = st.view.items;
    spacer.style.height = `${items.length * ROW_HEIGHT}px`;
    const headerHeight = header.offsetHeight || ROW_HEIGHT;
    const visible = (viewport.clientHeight || DEFAULT_VIEWPORT) - headerHeight;
    const { start, end } = visibleRange(viewport.scrollTop, visible, ROW_HEIGHT, items.length);
    rowsEl.style.transform = `translateY(${start * ROW_HEIGHT}px)`;
    st.runtimeCells = [];
    st.countdownCells = st.countdownCells.filter(([span]) => detailEl.contains(span));
    const fragment = document.createDocumentFragment();
    for (let i = start; i < end; i++) fragment.append(rowElement(items[i]));
    clear(rowsEl);
    rowsEl.append(fragment);
    root.setAttribute("data-rendered-rows", String(end - start));
  }
  viewport.addEventListener("scroll", () => {
    if (scrollQueued) return;
    scrollQueued = true;
    requestAnimationFrame(() => {
      scrollQueued = false;
      renderRows();
    });
  });
  rowsEl.addEventListener("click", (event) => {
    const expander = event.target.closest("[data-expand]");
    if (expander) {
      const id = expander.getAttribute("data-expand");
      if (st.expanded.has(id)) st.expanded.delete(id);
      else st.expanded.add(id);
      recompute();
      return;
    }
    const rowEl = event.target.closest(".cj-row");
    if (!rowEl) return;
    const id = rowEl.getAttribute("data-job-id");
    if (rowEl.classList.contains("cj-group")) {
      if (st.expanded.has(id)) st.expanded.delete(id);
      else st.expanded.add(id);
      recompute();
      return;
    }
    select(id);
  });
  viewport.addEventListener("keydown", (event) => {
    const items = st.view.items;
    if (!items.length) return;
    const index = items.findIndex((it) => it.row.id === st.selected);
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const next = Math.max(0, Math.min(items.length - 1, index + (event.key === "ArrowDown" ? 1 : -1)));
      const item = items[next];
      if (item.row.synthetic) st.selected = item.row.id;
      else select(item.row.id);
      const top = next * ROW_HEIGHT;
      const headerHeight = header.offsetHeight || ROW_HEIGHT;
      if (top < viewport.scrollTop) viewport.scrollTop = top;
      else if (top + ROW_HEIGHT > viewport.scrollTop + viewport.clientHeight - headerHeight) {
        viewport.scrollTop = top + ROW_HEIGHT - viewport.clientHeight + headerHeight;
      }
      renderRows();
    } else if ((event.key === "Enter" || event.key === " ") && index >= 0 && items[index].childCount) {
      event.preventDefault();
      const id = items[index].row.id;
      if (st.expanded.has(id)) st.expanded.delete(id);
      else st.expanded.add(id);
      recompute();
    }
  });

  function renderFooter() {
    const { matched, total } = st.view;
    const filtered = st.statuses.size || st.text.trim();
    const sortLabel = (COLUMNS.find((c) => c.key === st.sortKey) || { label: st.sortKey }).label;
    footCount.textContent = `${filtered ? `${formatCount(matched)} of ` : ""}${formatCount(total)} job${total === 1 ? "" : "s"}` +
      ` · sorted by ${sortLabel} ${st.sortDir === "asc" ? "▲" : "▼"}`;
    empty.hidden = st.view.items.length > 0;
    empty.textContent = total === 0 ? "No jobs yet: submit one (monitor.submit_job) and it appears here." : "No job matches the filter.";
  }

  function renderDisk() {
    const disk = diskSummary(st.meta.disk);
    diskEl.hidden = !disk;
    if (!disk) return;
    diskEl.textContent = `${disk.low ? "⚠ " : ""}Disk: ${disk.text}`;
    diskEl.classList.toggle("cj-disk-low", disk.low);
    const at = st.meta.disk.at ? `measured ${formatTimeFull(st.meta.disk.at)}` : "";
    diskEl.title = [disk.low ? "Less than 10% of the volume is free" : "", "Sizes of the project's folders and the free space of its volume", at]
      .filter(Boolean).join("\n");
  }

  // -- the selected job's resource use: numbers and sparklines (samples come for this job only) --
  function renderDetail(force = false) {
    const d = model.get("detail") || {};
    const row = st.selected ? store.rows.get(st.selected) : null;
    const key = JSON.stringify([st.selected, d.id === st.selected ? d : null, row && row.nb, row && row.status]);
    if (!force && key === st.detailKey) return;
    st.detailKey = key;
    st.countdownCells = st.countdownCells.filter(([span]) => !detailEl.contains(span));
    clear(detailEl);
    if (!row || d.id !== st.selected) {
      detailEl.hidden = true;
      return;
    }
    const num = (v) => typeof v === "number" && Number.isFinite(v);
    const lines = [];
    const cpuParts = [];
    if (num(d.cpu_percent)) cpuParts.push(`${formatCpu(d.cpu_percent)} now`);
    if (num(d.cpu_seconds)) cpuParts.push(`${formatDuration(d.cpu_seconds)} CPU time`);
    if (num(d.cpu_eff)) {
      const pct = d.cpu_eff * 100;
      const span = h("span", { class: `cj-eff${effHint("cpu", pct) ? ` cj-eff-${effHint("cpu", pct)}` : ""}` },
        `efficiency ${formatEff(pct)}${num(d.alloc_cpus) ? ` of ${d.alloc_cpus} CPU${d.alloc_cpus === 1 ? "" : "s"}` : ""}`);
      cpuParts.push(span);
    } else if (num(d.alloc_cpus)) cpuParts.push(`${d.alloc_cpus} CPU${d.alloc_cpus === 1 ? "" : "s"} requested`);
    const memParts = [];
    if (num(d.rss_bytes)) memParts.push(`${formatBytes(d.rss_bytes)} now`);
    if (num(d.max_rss_bytes)) memParts.push(`peak ${formatBytes(d.max_rss_bytes)}`);
    if (num(d.mem_eff)) {
      const pct = d.mem_eff * 100;
      memParts.push(h("span", { class: `cj-eff${effHint("mem", pct) ? ` cj-eff-${effHint("mem", pct)}` : ""}` },
        `${formatEff(pct)} of ${num(d.req_mem_bytes) ? formatBytes(d.req_mem_bytes) : "the request"}`));
    } else if (num(d.req_mem_bytes)) memParts.push(`${formatBytes(d.req_mem_bytes)} requested`);
    const ioParts = [];
    if (num(d.read_bytes)) ioParts.push(`read ${formatBytes(d.read_bytes)}`);
    if (num(d.write_bytes)) ioParts.push(`written ${formatBytes(d.write_bytes)}`);
    const join = (parts) => parts.flatMap((p, i) => (i ? [" · ", p] : [p]));
    const series = sampleSeries(d.samples);
    const over = series.span > 0 ? ` over the last ${formatDuration(series.span)}` : "";
    // CPU on a scale of at least one core: a mostly idle job draws a flat line, not noise.
    const cpuMax = Math.max(100, ...series.cpu.filter((v) => v !== null));
    const cpuSpark = sparklineSvg(series.cpu, { label: `CPU % (0–${Math.round(cpuMax)}%)${over}`, className: "cj-spark-cpu", max: cpuMax });
    const rssSpark = sparklineSvg(series.rss, { label: `Memory (RSS)${over}`, className: "cj-spark-rss" });
    const measured = num(d.cpu_seconds) || num(d.max_rss_bytes) || num(d.cpu_percent) || num(d.rss_bytes) || Boolean(cpuSpark || rssSpark);
    if (measured && (cpuParts.length || cpuSpark)) {
      lines.push(h("div", { class: "cj-detail-line cj-detail-cpu" }, h("span", { class: "cj-detail-label" }, "CPU"), cpuSpark, h("span", {}, join(cpuParts))));
    }
    if (measured && (memParts.length || rssSpark)) {
      lines.push(h("div", { class: "cj-detail-line cj-detail-mem" }, h("span", { class: "cj-detail-label" }, "Memory"), rssSpark, h("span", {}, join(memParts))));
    }
    if (ioParts.length) lines.push(h("div", { class: "cj-detail-line" }, h("span", { class: "cj-detail-label" }, "I/O"), h("span", {}, join(ioParts))));
    const retryParts = [];
    const attempt = attemptText(row);
    if (attempt) retryParts.push(`attempt ${attempt}`);
    if (d.retry_of) retryParts.push(`retry of ${d.retry_of}`);
    if (d.retry_reason) retryParts.push(`after: ${d.retry_reason}`);
    if (d.retried_by) retryParts.push(`retried as ${d.retried_by}`);
    const countdown = retryCountdown(row, now());
    if (countdown) {
      const span = h("span", { class: `cj-countdown${countdown.due ? " cj-due" : ""}` }, countdown.text);
      st.countdownCells.push([span, row]);
      retryParts.unshift(span);
    }
    if (retryParts.length) lines.push(h("div", { class: "cj-detail-line cj-detail-retry" }, h("span", { class: "cj-detail-label" }, "Retries"), h("span", {}, join(retryParts))));
    if (!lines.length) {
      detailEl.hidden = true;
      return;
    }
    const when = num(d.sampled_at) ? ` · sampled ${formatTime(d.sampled_at, now())}` : "";
    detailEl.append(h("div", { class: "cj-detail-title" }, `Resource use of ${row.name || row.id}${when}`), ...lines);
    detailEl.hidden = false;
  }

  function recompute() {
    st.view = buildView(store.rows, {
      sortKey: st.sortKey, sortDir: st.sortDir, statuses: st.statuses, text: st.text, expanded: st.expanded, nowMs: now(),
    });
    renderRows();
    renderFooter();
  }

  // -- selection and actions -------------------------------------------------------------------
  function select(id) {
    if (id !== st.selected) {
      st.panel = null;
      st.result = null;
    }
    st.selected = id || "";
    model.set("selected", st.selected);
    model.save_changes();
    renderRows();
    renderActions();
    renderDetail();
  }

  /** Select a job and scroll its row into view (a toast's "Show"). */
  function reveal(id) {
    select(id);
    const index = st.view.items.findIndex((it) => it.row.id === id);
    if (index >= 0) {
      const top = index * ROW_HEIGHT;
      const visible = viewport.clientHeight - (header.offsetHeight || ROW_HEIGHT);
      if (top < viewport.scrollTop || top + ROW_HEIGHT > viewport.scrollTop + visible) viewport.scrollTop = Math.max(0, top - ROW_HEIGHT * 2);
      renderRows();
    }
  }

  function sendAction(action, jobId, extra = {}) {
    const req = `${token}-${++st.reqSeq}`;
    st.busy = true;
    st.panel = null;
    const verb = action === "cancel" ? "Cancelling" : "Retrying";
    st.result = { ok: true, pending: true, message: `${verb} ${jobId}…` };
    model.send({ action, job_id: jobId, req, ...extra });
    renderActions(true);
  }

  function renderActions(force = false) {
    const row = st.selected ? store.rows.get(st.selected) : null;
    const key = JSON.stringify([st.selected, row && row.status, row && row.name, row && row.res, st.panel, st.busy, st.result]);
    if (!force && key === st.actionsKey) return;
    st.actionsKey = key;
    clear(actions);
    if (!row) {
      actions.append(h("span", { class: "cj-hint" }, "Select a job to follow its log, cancel it or retry it."));
      if (st.result) actions.append(h("div", { class: `cj-result ${st.result.ok ? "cj-ok" : "cj-error"}`, role: "status" }, st.result.message));
      return;
    }
    const active = !FINAL.has(row.status);
    const info = h("div", { class: "cj-selinfo" },
      h("span", { class: "cj-selname", title: row.name || "" }, row.name || row.id), " ",
      h("code", { class: "cj-selid" }, row.id), " ", badge(row.status));
    const cancelBtn = h("button", {
      class: "cj-btn cj-cancel", type: "button", disabled: !active || st.busy,
      title: active ? "Stop this job (asks first)" : "The job has already ended",
    }, "Cancel job…");
    cancelBtn.addEventListener("click", () => { st.panel = "cancel"; st.result = null; renderActions(); });
    const retryBtn = h("button", {
      class: "cj-btn cj-retry", type: "button", disabled: active || st.busy,
      title: active ? "Only a finished job can be retried" : "Submit this job again, optionally with other resources",
    }, "Retry…");
    retryBtn.addEventListener("click", () => { st.panel = "retry"; st.result = null; renderActions(); });
    const clearBtn = h("button", { class: "cj-btn cj-link", type: "button" }, "Clear selection");
    clearBtn.addEventListener("click", () => select(""));
    actions.append(info, h("div", { class: "cj-buttons" }, cancelBtn, retryBtn, clearBtn));

    if (st.panel === "cancel" && active) {
      const yes = h("button", { class: "cj-btn cj-danger cj-confirm-yes", type: "button" }, "Yes, cancel it");
      yes.addEventListener("click", () => sendAction("cancel", row.id));
      const no = h("button", { class: "cj-btn cj-confirm-no", type: "button" }, "No, keep it running");
      no.addEventListener("click", () => { st.panel = null; renderActions(); });
      actions.append(h("div", { class: "cj-confirm", role: "alertdialog", "aria-label": "Confirm cancel" },
        h("span", { class: "cj-confirm-text" }, "Cancel job ", h("strong", {}, row.name || row.id), ` (${row.id})? It will be stopped.`),
        yes, no));
      setTimeout(() => no.focus(), 0);
    }
    if (st.panel === "retry" && !active) {
      const input = h("input", {
        class: "cj-retry-resources", type: "text", "aria-label": "Resources for the retry",
        placeholder: "e.g. mem=64G, time=4:00:00 — empty keeps the old request",
      });
      input.value = st.retryText;
      input.addEventListener("input", () => { st.retryText = input.value; });
      const go = h("button", { class: "cj-btn cj-primary cj-retry-go", type: "button" }, "Retry job");
      const submit = () => sendAction("retry", row.id, { resources: input.value.trim() });
      go.addEventListener("click", submit);
      input.addEventListener("keydown", (event) => { if (event.key === "Enter") submit(); });
      const back = h("button", { class: "cj-btn cj-retry-back", type: "button" }, "Back");
      back.addEventListener("click", () => { st.panel = null; renderActions(); });
      actions.append(h("div", { class: "cj-retry-form", role: "dialog", "aria-label": "Retry job" },
        h("span", {}, "Retry ", h("strong", {}, row.name || row.id), row.res ? ` (was ${row.res})` : "", " with resources: "),
        input, go, back));
      setTimeout(() => input.focus(), 0);
    }
    if (st.result) actions.append(h("div", { class: `cj-result ${st.result.ok ? "cj-ok" : "cj-error"}${st.result.pending ? " cj-pending" : ""}`, role: "status" }, st.result.message));
  }

  function onCustom(msg) {
    if (msg && msg.type === "rows") {
      st.resyncAsked = false;
      if (store.applyRows(msg)) {
        renderChips();
        recompute();
        renderActions();
        renderDetail();
      }
      return;
    }
    if (!msg || msg.type !== "reply" || !String(msg.req || "").startsWith(`${token}-`)) return;
    st.busy = false;
    if (msg.action === "refresh") {
      if (!msg.ok) st.result = { ok: false, message: String(msg.message || "refresh failed") };
      renderActions(true);
      return;
    }
    st.result = { ok: Boolean(msg.ok), message: String(msg.message || (msg.ok ? "done" : "failed")) };
    if (msg.ok && msg.new_job_id) {
      st.selected = String(msg.new_job_id);
      model.set("selected", st.selected);
      model.save_changes();
      renderRows();
    }
    renderActions(true);
  }

  // -- clock: runtime, "Updated N s ago", staleness ---------------------------------------------
  function renderClock() {
    const t = Date.now();
    updated.textContent = st.lastUpdate ? `Updated ${formatAgo((t - st.lastUpdate) / 1000)}` : "";
    const problems = [];
    for (const p of st.meta.stale || []) {
      const since = p.last_success ? ` (last good poll ${formatAgo((now() - p.last_success) / 1000)})` : "";
      problems.push(`polling ${p.scheduler} failed: ${p.error}${since}`);
    }
    if (st.meta.error) problems.push(`reading the job store failed: ${st.meta.error}`);
    const interval = Number(st.meta.interval) || 2;
    const silence = st.lastUpdate ? (t - st.lastUpdate) / 1000 : 0;
    if (st.meta.live && silence > Math.max(20, 6 * interval)) {
      problems.push(`no update from the kernel for ${formatDuration(silence)}: is it busy, stopped or disconnected?`);
    }
    stale.hidden = problems.length === 0;
    stale.textContent = problems.length ? `⚠ Data may be stale: ${problems.join("; ")}` : "";
    root.classList.toggle("cj-is-stale", problems.length > 0);
    const tNow = now();
    for (const [c, row] of st.runtimeCells) c.textContent = runtimeText(row, tNow);
    for (const [span, row] of st.countdownCells) {
      const countdown = retryCountdown(row, tNow);
      if (!countdown) continue;
      span.textContent = countdown.text;
      span.classList.toggle("cj-due", countdown.due);
    }
  }

  // -- model -> view ---------------------------------------------------------------------------
  function syncFromModel(live) {
    const snapshot = model.get("snapshot");
    const delta = model.get("delta");
    const changed = store.sync(snapshot, delta, model.get("pending"));
    if (store.gap && !st.resyncAsked) {
      // This view lacks rows the kernel no longer re-sends in each delta: ask for them.
      st.resyncAsked = true;
      try {
        model.send({ type: "resync" });
      } catch (_err) {
        // no kernel (a saved notebook): the saved traits are complete
      }
    }
    st.meta = (delta && delta.meta) || (snapshot && snapshot.meta) || {};
    if (store.ended.length) {
      const summary = summarizeEnded(store.ended);
      toaster.show(summary);
      bell.notify(summary);
    }
    if (live) {
      st.lastUpdate = Date.now();
      if (st.meta.now) st.skew = Date.now() - st.meta.now;
    } else if (st.meta.updated) {
      st.lastUpdate = st.meta.updated;
    }
    title.textContent = model.get("title") || "";
    if (changed || !live) {
      renderChips();
      recompute();
    }
    renderDisk();
    renderClock();
    renderActions();
    renderDetail();
  }
  let queued = false;
  const onChange = () => {
    if (queued) return;
    queued = true;
    queueMicrotask(() => {
      queued = false;
      syncFromModel(true);
    });
  };
  const onSelected = () => {
    const id = model.get("selected") || "";
    if (id !== st.selected) {
      st.selected = id;
      renderRows();
      renderActions();
      renderDetail();
    }
  };
  const onDetail = () => renderDetail();
  const onTitle = () => { title.textContent = model.get("title") || ""; };
  model.on("change:snapshot", onChange);
  model.on("change:delta", onChange);
  model.on("change:pending", onChange);
  model.on("change:selected", onSelected);
  model.on("change:detail", onDetail);
  model.on("change:title", onTitle);
  model.on("msg:custom", onCustom);

  renderHeader();
  syncFromModel(false);
  const ticker = createTicker(renderClock).start();
  // The first layout pass gives the viewport its real height: draw the visible rows again then.
  requestAnimationFrame(() => renderRows());

  return () => {
    ticker.stop();
    toaster.clear();
    clearTimeout(searchTimer);
    model.off("change:snapshot", onChange);
    model.off("change:delta", onChange);
    model.off("change:pending", onChange);
    model.off("change:selected", onSelected);
    model.off("change:detail", onDetail);
    model.off("change:title", onTitle);
    model.off("msg:custom", onCustom);
  };
}
