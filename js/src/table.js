// The JobTable view: status chips with counts, free-text filter, sortable columns, array tasks
// under their parent, a virtualised body (only the visible rows exist in the DOM), a ticking
// Runtime column and retry countdowns, resource use (numbers in the rows, sparklines for the
// selected job only), toasts when jobs end (optional browser notification behind the bell), the
// project's disk usage, staleness, and Cancel/Retry with an in-widget confirmation.

import { h, clear } from "./dom.js";
import {
  COLUMNS, STATUSES, FINAL, RowStore, buildView, statusCounts, dependencyInfo, visibleRange, logicalRows, supersededBy,
} from "./rows.js";
import {
  statusWhy, progressNote, localSlotsUsed, loadColumnChoices, saveColumnChoices, constantColumns, visibleColumns, gridTemplate,
} from "./why.js";
import { createStrip } from "./notices.js";
import { formatAgo, formatCount, formatDuration, formatPercent, formatTime, formatTimeFull, runtimeText, exitText } from "./format.js";
import {
  attemptText, attemptTitle, diskSummary, effHint, effTitle, formatBytes, formatCpu, formatEff, retryCountdown, sampleSeries,
} from "./usage.js";
import { summarizeEnded } from "./notify.js";
import { sparklineSvg } from "./sparkline.js";
import { createBell } from "./toasts.js";
import { createTicker } from "./ticker.js";

export const ROW_HEIGHT = 28;
const DEFAULT_VIEWPORT = 440;
const DESC_FIRST = new Set(["submit", "start", "end", "runtime", "progress"]);

/** The end of a long id (ids start with their creation time: the end tells jobs apart). */
export function shortId(id) {
  const text = String(id);
  return text.length > 8 ? `…${text.slice(-6)}` : text;
}

function safeStatus(status) {
  return STATUSES.includes(status) ? status : "unknown";
}

export function badge(status) {
  const s = safeStatus(status);
  return h("span", { class: `cj-badge cj-s-${s}` }, String(status || "unknown"));
}

function progressBar(pct, big = false, state = "") {
  const fill = h("div", { class: "cj-bar-fill" });
  const value = Number.isFinite(pct) ? Math.max(0, Math.min(100, pct)) : 0;
  fill.style.width = `${value}%`;
  return h("div", {
    class: `cj-bar${big ? " cj-bar-lg" : ""}${state ? ` cj-bar-${state}` : ""}`, role: "progressbar",
    "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(value),
  }, fill);
}

/** A small inline SVG icon (no font glyphs: every font shows it). */
function icon(kind) {
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

export function renderTable({ model, el }) {
  const store = new RowStore();
  const token = Math.random().toString(36).slice(2, 10);
  const st = {
    sortKey: "submit", sortDir: "desc", statuses: new Set(), text: "", expanded: new Set(),
    selected: model.get("selected") || "", view: { items: [], matched: 0, total: 0 },
    lastUpdate: null, skew: 0, meta: {}, reqSeq: 0, panel: null, result: null, busy: false,
    retryText: "", actionsKey: null, runtimeCells: [], countdownCells: [], detailKey: null, resyncAsked: false,
    choices: loadColumnChoices(), constant: new Set(), cols: [], colsKey: "", logical: [], logicalVersion: -1,
    slotsUsed: 0, disconnected: "", superseded: null,
  };
  const now = () => Date.now() - st.skew;

  const root = h("div", { class: "cj-root cj-jobtable", "data-widget": "job-table" });
  root.style.setProperty("--cj-row-h", `${ROW_HEIGHT}px`);

  const title = h("div", { class: "cj-title" });
  const chips = h("div", { class: "cj-chips", role: "toolbar", "aria-label": "Filter by status" });
  const search = h("input", { class: "cj-search", type: "search", placeholder: "Filter by name, id, type, reason…", "aria-label": "Filter jobs" });
  const updated = h("span", { class: "cj-updated", "aria-live": "off" });
  const refreshBtn = h("button", { class: "cj-btn cj-refresh", type: "button", title: "Refresh now", "aria-label": "Refresh now" }, icon("refresh"));
  const colsBtn = h("button", { class: "cj-btn cj-colsbtn", type: "button", "aria-expanded": "false", title: "Choose the columns (remembered in this browser)" }, "Columns");
  const colsPanel = h("div", { class: "cj-colpanel", role: "group", "aria-label": "Columns" });
  colsPanel.hidden = true;
  const strip = h("div", { class: "cj-strip", role: "status", "aria-live": "polite" });
  const notices = createStrip(strip, { onShow: (id) => reveal(id) });
  const bell = createBell({
    say: (message) => { sayText = message; renderClock(); },
  });
  let sayText = "";
  const toolbar = h("div", { class: "cj-toolbar" }, chips,
    h("div", { class: "cj-toolbar-right" }, search, updated, colsBtn, bell.button, refreshBtn));
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
  // Notices take their own line above the table: they never cover a row, the toolbar or the filter.
  root.append(title, toolbar, colsPanel, stale, strip, viewport, empty, footer, actions, detailEl);
  el.append(root);

  // -- header -------------------------------------------------------------------------------
  function renderHeader() {
    clear(header);
    for (const col of st.cols) {
      const active = st.sortKey === col.key;
      const arrow = active ? (st.sortDir === "asc" ? " ▲" : " ▼") : "";
      const cell = h("div", {
        class: `cj-hcell${active ? " cj-sorted" : ""}${col.pin ? " cj-pin" : ""}`, role: "columnheader", "data-col": col.key,
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
  /** Jobs as the user counts them: earlier attempts of a retried job are not jobs of their own. */
  function updateLogical() {
    if (st.logicalVersion === store.version) return false;
    st.logicalVersion = store.version;
    st.superseded = supersededBy(store.rows);
    st.logical = logicalRows(store.rows, st.superseded);
    st.slotsUsed = localSlotsUsed(store.rows.values());
    const constant = constantColumns(st.logical);
    const changed = [...constant].join() !== [...st.constant].join();
    st.constant = constant;
    return changed && applyColumns();
  }
  function renderChips() {
    updateLogical();
    const { counts, total } = statusCounts(st.logical);
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
      class: `cj-row${selected ? " cj-selected" : ""}${row.synthetic ? " cj-group" : ""}${depth ? " cj-child" : ""}${item.attempt ? " cj-old-attempt" : ""}`,
      role: "row", "aria-selected": String(selected), "data-job-id": row.id, "data-status": safeStatus(row.status),
      "data-depth": String(depth),
    });
    const t = now();
    for (const col of st.cols) {
      const c = CELLS[col.key](row, item, t, depth, childCount, expanded);
      if (col.pin) c.classList.add("cj-pin");
      el.append(c);
    }
    return el;
  }

  const CELLS = {
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
      const why = statusWhy(row, { rows: store.rows, slotsUsed: st.slotsUsed, slotsMax: st.meta.slots });
      const parts = [badge(row.status)];
      const countdown = retryCountdown(row, t);
      if (countdown) {
        const span = h("span", { class: `cj-countdown${countdown.due ? " cj-due" : ""}` }, countdown.text);
        st.countdownCells.push([span, row]);
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
      if (row.status === "running" && (row.end === undefined || row.end === null)) st.runtimeCells.push([c, row]);
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
      const dep = dependencyInfo(row, store.rows);
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

  function effCell(row, key, kind) {
    const hint = effHint(kind, row[key]);
    const c = cell(key, formatEff(row[key]), row[key] !== undefined ? effTitle(kind, row[key], row) : "");
    if (hint) c.classList.add(`cj-eff-${hint}`);
    return c;
  }

  // -- columns: the default view, the user's choice (remembered), constant ones hidden ------------
  function applyColumns(force = false) {
    const cols = visibleColumns(st.choices, st.constant);
    const key = cols.map((c) => c.key).join(",");
    if (!force && key === st.colsKey) return false;
    st.cols = cols;
    st.colsKey = key;
    const { template, width } = gridTemplate(cols);
    root.style.setProperty("--cj-cols", template);
    root.style.setProperty("--cj-width", `${width}px`);
    const pins = cols.filter((c) => c.pin);
    root.style.setProperty("--cj-pin1", `${pins.length > 1 ? pins[0].width : 0}px`);
    renderHeader();
    if (!colsPanel.hidden) renderColumnPanel();
    return true;
  }
  function renderColumnPanel() {
    clear(colsPanel);
    const shown = new Set(st.cols.map((c) => c.key));
    for (const col of COLUMNS) {
      const box = h("input", { type: "checkbox", "data-col": col.key });
      box.checked = shown.has(col.key);
      box.disabled = col.key === "id";
      const note = st.constant.has(col.key) && !(col.key in st.choices) ? " (same for every job)" : "";
      colsPanel.append(h("label", { class: "cj-colchoice", title: col.hint || "" }, box, ` ${col.label}${note}`));
    }
    const reset = h("button", { class: "cj-btn cj-link cj-colreset", type: "button" }, "Default columns");
    colsPanel.append(reset);
  }
  colsPanel.addEventListener("change", (event) => {
    const key = event.target.getAttribute && event.target.getAttribute("data-col");
    if (!key) return;
    st.choices = { ...st.choices, [key]: Boolean(event.target.checked) };
    saveColumnChoices(st.choices);
    if (applyColumns()) renderRows();
  });
  colsPanel.addEventListener("click", (event) => {
    if (!event.target.closest(".cj-colreset")) return;
    st.choices = {};
    saveColumnChoices(st.choices);
    if (applyColumns()) renderRows();
    renderColumnPanel();
  });
  colsBtn.addEventListener("click", () => {
    colsPanel.hidden = !colsPanel.hidden;
    colsBtn.setAttribute("aria-expanded", String(!colsPanel.hidden));
    if (!colsPanel.hidden) renderColumnPanel();
  });

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
    clear(diskEl);
    if (disk.low) diskEl.append(icon("warn"));
    diskEl.append(`Disk: ${disk.text}`);
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
    updateLogical();
    st.view = buildView(store.rows, {
      sortKey: st.sortKey, sortDir: st.sortDir, statuses: st.statuses, text: st.text, expanded: st.expanded, nowMs: now(),
      superseded: st.superseded,
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
    const key = JSON.stringify([st.selected, row && row.status, row && row.name, row && row.res, row && row.err, row && row.reason, st.panel, st.busy, st.result]);
    if (!force && key === st.actionsKey) return;
    st.actionsKey = key;
    clear(actions);
    if (!row) {
      actions.append(h("span", { class: "cj-hint" }, "Select a job to follow its log, cancel it or retry it."));
      if (st.result) actions.append(h("div", { class: `cj-result ${st.result.ok ? "cj-ok" : "cj-error"}`, role: "status" }, st.result.message));
      return;
    }
    const active = !FINAL.has(row.status);
    const why = statusWhy(row, { rows: store.rows, slotsUsed: st.slotsUsed, slotsMax: st.meta.slots });
    const info = h("div", { class: "cj-selinfo" },
      h("span", { class: "cj-selname", title: row.name || "" }, row.name || row.id), " ",
      h("code", { class: "cj-selid" }, row.id), " ", badge(row.status),
      why.text ? h("span", { class: `cj-selwhy cj-why${why.level ? ` cj-why-${why.level}` : ""}`, title: why.text }, why.text) : null);
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

  // -- the connection to the kernel: a view whose kernel restarted or whose comm closed says so at once --
  const LOST = new Set(["restarting", "autorestarting", "dead", "terminating"]);
  const manager = model.widget_manager;
  let kernel = null;
  try {
    kernel = manager && manager.kernel && typeof manager.kernel === "object" ? manager.kernel : null;
  } catch (_err) {
    kernel = null;
  }
  function lose(why) {
    if (st.disconnected) return;
    st.disconnected = `disconnected — re-run the cell (${why}); the table shows the last state received`;
    root.setAttribute("data-connection", "lost");
    for (const [c] of st.runtimeCells) c.classList.add("cj-frozen");
  }
  function checkConnection() {
    if (st.disconnected) return;
    try {
      if (manager && manager.isDisposed) lose("the notebook's kernel changed");
      else if (kernel && (kernel.isDisposed || LOST.has(kernel.status))) lose(`the kernel is ${kernel.isDisposed ? "gone" : kernel.status}`);
    } catch (_err) {
      // a front end without these properties: the silence check below still says it
    }
  }
  const onKernelStatus = () => {
    checkConnection();
    if (st.disconnected) renderClock();
  };
  const onCommClose = () => {
    lose("the widget's connection to the kernel closed");
    renderClock();
  };
  try {
    if (kernel && kernel.statusChanged && typeof kernel.statusChanged.connect === "function") kernel.statusChanged.connect(onKernelStatus);
  } catch (_err) {
    // not a JupyterLab kernel connection
  }
  model.on("comm:close", onCommClose);
  function disposeConnection() {
    model.off("comm:close", onCommClose);
    try {
      if (kernel && kernel.statusChanged) kernel.statusChanged.disconnect(onKernelStatus);
    } catch (_err) {
      // already gone
    }
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
    if (st.meta.live && !st.disconnected && silence > Math.max(20, 6 * interval)) {
      problems.push(`no update from the kernel for ${formatDuration(silence)}: is it busy, stopped or disconnected?`);
    }
    checkConnection();
    if (st.disconnected) problems.unshift(st.disconnected);
    if (sayText) problems.push(sayText);
    stale.hidden = problems.length === 0;
    clear(stale);
    if (problems.length) {
      const lead = st.disconnected ? "" : sayText && problems.length === 1 ? "" : "Data may be stale: ";
      stale.append(icon("warn"), ` ${lead}${problems.join("; ")}`);
    }
    stale.classList.toggle("cj-disconnected", Boolean(st.disconnected));
    root.classList.toggle("cj-is-stale", problems.length > 0 && !(sayText && problems.length === 1));
    const tNow = now();
    if (!st.disconnected) for (const [c, row] of st.runtimeCells) c.textContent = runtimeText(row, tNow);
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
      notices.add(store.ended);
      bell.notify(summarizeEnded(store.ended));
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

  applyColumns(true);
  syncFromModel(false);
  const ticker = createTicker(renderClock).start();
  // The first layout pass gives the viewport its real height: draw the visible rows again then.
  requestAnimationFrame(() => renderRows());

  return () => {
    ticker.stop();
    notices.clear();
    disposeConnection();
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
