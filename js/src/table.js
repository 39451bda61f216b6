// The JobTable view: a default view that fits a notebook (each status with its reason inline; a
// column chooser for the rest, remembered in the browser), status chips counting jobs (not
// attempts), free-text filter, sortable columns, array tasks and earlier attempts under their job,
// a windowed body — the kernel sends only the rows in view (window.js): sorting, filtering, chips
// and grouping run as queries in the kernel's store, scrolling asks for the rows that come into
// view — a ticking runtime and retry countdowns, the selected job's resource use (detail.js), one
// status strip for jobs that end (notices.js; optional browser notification behind the bell), the
// project's disk usage, staleness and a lost connection (connection.js), and Cancel/Retry
// confirmed in the widget.

import { h, clear } from "./dom.js";
import { COLUMNS, STATUSES, FINAL, visibleRange } from "./rows.js";
import {
  statusWhy, loadColumnChoices, saveColumnChoices, constantColumns, visibleColumns, gridTemplate,
} from "./why.js";
import { createStrip } from "./notices.js";
import { renderUsage } from "./detail.js";
import { watchConnection } from "./connection.js";
import { makeCells, badge, icon } from "./cells.js";
import { formatAgo, formatCount, formatDuration, formatTimeFull, runtimeText } from "./format.js";
import { diskSummary, retryCountdown } from "./usage.js";
import { summarizeEnded } from "./notify.js";
import { createBell } from "./toasts.js";
import { createTicker } from "./ticker.js";
import { WindowStore } from "./window.js";

export const ROW_HEIGHT = 28;
const DEFAULT_VIEWPORT = 440;
const DESC_FIRST = new Set(["submit", "start", "end", "runtime", "progress"]);

export { badge, shortId } from "./cells.js";

export function renderTable({ model, el }) {
  const win = new WindowStore();
  const token = Math.random().toString(36).slice(2, 10);
  const st = {
    sortKey: "submit", sortDir: "desc", statuses: new Set(), text: "", expanded: new Set(),
    selected: model.get("selected") || "", selectedRow: null, items: [], itemsVersion: -1,
    lastUpdate: null, skew: 0, meta: {}, reqSeq: 0, winReq: 0, asked: null, panel: null, result: null, busy: false,
    retryText: "", actionsKey: null, runtimeCells: [], countdownCells: [], detailKey: null,
    choices: loadColumnChoices(), constant: new Set(), cols: [], colsKey: "", disconnected: "",
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

  // -- the window: asked of the kernel, which answers from its store --------------------------------
  function query() {
    return { sort: st.sortKey, dir: st.sortDir, statuses: [...st.statuses], text: st.text.trim() };
  }
  /** Ask for top-level rows [offset, offset + limit) of the current query (the newest request wins). */
  function ask(offset, limit) {
    const key = JSON.stringify([query(), offset, limit, [...st.expanded]]);
    if (st.asked === key) return;
    st.asked = key;
    st.winReq += 1;
    root.setAttribute("data-loading", "true");
    try {
      model.send({ type: "window", view: token, req: st.winReq, query: query(), offset, limit, expanded: [...st.expanded] });
    } catch (_err) {
      // no kernel (a saved notebook): the first window is all there is
    }
  }
  function visibleCount() {
    const headerHeight = header.offsetHeight || ROW_HEIGHT;
    return Math.ceil(((viewport.clientHeight || DEFAULT_VIEWPORT) - headerHeight) / ROW_HEIGHT) + 1;
  }
  /** The query changed (sort, chips, filter): back to the top, a new window. */
  function requery() {
    st.expanded.clear();
    viewport.scrollTop = 0;
    ask(0, visibleCount() + 2 * 40);
  }
  /** Ask again for the same rows (expanded rows changed). */
  function reask() {
    ask(win.offset, Math.max(win.limit, visibleCount() + 2 * 40));
  }
  function knownRows() {
    // The window's rows, and what its rows say of the jobs they depend on (dependency text).
    const map = new Map(win.rows);
    for (const row of win.rows.values()) {
      for (const ref of Array.isArray(row.dref) ? row.dref : []) {
        if (Array.isArray(ref) && !map.has(String(ref[0]))) map.set(String(ref[0]), { id: String(ref[0]), name: ref[1], status: ref[2] });
      }
    }
    if (st.selectedRow && !map.has(st.selectedRow.id)) map.set(st.selectedRow.id, st.selectedRow);
    return map;
  }
  function selectedRow() {
    if (!st.selected) return null;
    return win.rows.get(st.selected) || (st.selectedRow && st.selectedRow.id === st.selected ? st.selectedRow : null);
  }
  function why(row) {
    return statusWhy(row, { rows: knownRows(), slotsUsed: Number(st.meta.running_local) || 0, slotsMax: st.meta.slots });
  }

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
    renderFooter();
    requery();
  });

  // -- chips and filter ----------------------------------------------------------------------
  function chip(status, label, count, active) {
    return h("button", {
      class: `cj-chip cj-chip-${status}${active ? " cj-active" : ""}`, type: "button", "data-status": status,
      "aria-pressed": String(active),
    }, label, " ", h("span", { class: "cj-count" }, formatCount(count)));
  }
  function countsTotal() {
    return Object.values(win.counts).reduce((a, b) => a + b, 0);
  }
  function renderChips() {
    const counts = win.counts;
    clear(chips);
    chips.append(chip("all", "All", countsTotal(), st.statuses.size === 0));
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
    renderFooter();
    requery();
  });
  let searchTimer = null;
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      st.text = search.value;
      requery();
    }, 150);
  });
  refreshBtn.addEventListener("click", () => {
    model.send({ action: "refresh", req: `${token}-${++st.reqSeq}` });
  });

  // -- rows ------------------------------------------------------------------------------------
  function rowElement(item) {
    const { row, depth, childCount, expanded } = item;
    const selected = row.id === st.selected;
    const el = h("div", {
      class: `cj-row${selected ? " cj-selected" : ""}${depth ? " cj-child" : ""}${item.attempt ? " cj-old-attempt" : ""}`,
      role: "row", "aria-selected": String(selected), "data-job-id": row.id, "data-status": STATUSES.includes(row.status) ? row.status : "unknown",
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
  function placeholder(index) {
    return h("div", { class: "cj-row cj-loading", role: "row", "aria-busy": "true", "data-index": String(index) },
      h("div", { class: "cj-cell" }, "…"));
  }

  const CELLS = makeCells({
    rows: knownRows,
    why,
    onCountdown: (span, row) => st.countdownCells.push([span, row]),
    onRuntime: (c, row) => st.runtimeCells.push([c, row]),
  });

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

  function currentItems() {
    if (st.itemsVersion !== win.version || st.itemsExpanded !== st.expanded.size) {
      st.items = win.items(st.expanded);
      st.itemsVersion = win.version;
      st.itemsExpanded = st.expanded.size;
    }
    return st.items;
  }

  let scrollQueued = false;
  function renderRows() {
    const items = currentItems();
    const length = win.length(items);
    spacer.style.height = `${length * ROW_HEIGHT}px`;
    const headerHeight = header.offsetHeight || ROW_HEIGHT;
    const visible = (viewport.clientHeight || DEFAULT_VIEWPORT) - headerHeight;
    const { start, end } = visibleRange(viewport.scrollTop, visible, ROW_HEIGHT, length);
    rowsEl.style.transform = `translateY(${start * ROW_HEIGHT}px)`;
    st.runtimeCells = [];
    st.countdownCells = st.countdownCells.filter(([span]) => detailEl.contains(span));
    const { rows, missing } = win.slice(items, start, end);
    const fragment = document.createDocumentFragment();
    for (const { index, item } of rows) fragment.append(item ? rowElement(item) : placeholder(index));
    clear(rowsEl);
    rowsEl.append(fragment);
    root.setAttribute("data-rendered-rows", String(end - start));
    root.setAttribute("data-window", `${win.offset}+${win.ids.length}/${win.total}`);
    if (missing) {
      const { offset, limit } = WindowStore.around(missing.first, missing.last, win.total);
      ask(offset, limit);
    }
  }
  viewport.addEventListener("scroll", () => {
    if (scrollQueued) return;
    scrollQueued = true;
    requestAnimationFrame(() => {
      scrollQueued = false;
      renderRows();
    });
  });
  function toggle(id) {
    if (st.expanded.has(id)) st.expanded.delete(id);
    else st.expanded.add(id);
    renderRows();
    reask();
  }
  rowsEl.addEventListener("click", (event) => {
    const expander = event.target.closest("[data-expand]");
    if (expander) {
      toggle(expander.getAttribute("data-expand"));
      return;
    }
    const rowEl = event.target.closest(".cj-row");
    if (!rowEl || rowEl.classList.contains("cj-loading")) return;
    select(rowEl.getAttribute("data-job-id"));
  });
  viewport.addEventListener("keydown", (event) => {
    const items = currentItems();
    if (!items.length) return;
    const index = items.findIndex((it) => it.row.id === st.selected);
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const next = Math.max(0, Math.min(items.length - 1, index + (event.key === "ArrowDown" ? 1 : -1)));
      select(items[next].row.id);
      const top = (win.offset + next) * ROW_HEIGHT;
      const headerHeight = header.offsetHeight || ROW_HEIGHT;
      if (top < viewport.scrollTop) viewport.scrollTop = top;
      else if (top + ROW_HEIGHT > viewport.scrollTop + viewport.clientHeight - headerHeight) {
        viewport.scrollTop = top + ROW_HEIGHT - viewport.clientHeight + headerHeight;
      }
      renderRows();
    } else if ((event.key === "Enter" || event.key === " ") && index >= 0 && items[index].childCount) {
      event.preventDefault();
      toggle(items[index].row.id);
    }
  });

  function renderFooter() {
    const matched = win.total;
    const total = countsTotal();
    const filtered = st.statuses.size || st.text.trim();
    const sortLabel = (COLUMNS.find((c) => c.key === st.sortKey) || { label: st.sortKey }).label;
    footCount.textContent = `${filtered ? `${formatCount(matched)} matching · ` : ""}${formatCount(total)} job${total === 1 ? "" : "s"}` +
      ` · sorted by ${sortLabel} ${st.sortDir === "asc" ? "▲" : "▼"}` + (st.meta.indexing ? " · building the search index…" : "") + (filtered && win.notice ? ` · ${win.notice}` : "");
    empty.hidden = win.total > 0 || win.ids.length > 0;
    empty.textContent = total === 0 && !filtered ? "No jobs yet: submit one (monitor.submit_job) and it appears here." : "No job matches the filter.";
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
    const row = selectedRow();
    const key = JSON.stringify([st.selected, d.id === st.selected ? d : null, row && row.nb, row && row.status]);
    if (!force && key === st.detailKey) return;
    st.detailKey = key;
    st.countdownCells = st.countdownCells.filter(([span]) => !detailEl.contains(span));
    clear(detailEl);
    if (!row || d.id !== st.selected) {
      detailEl.hidden = true;
      return;
    }
    detailEl.hidden = !renderUsage(detailEl, d, row, now(), st.countdownCells);
  }

  function refreshColumns() {
    const constant = constantColumns([...win.rows.values()]);
    const changed = [...constant].join() !== [...st.constant].join();
    st.constant = constant;
    if (changed) applyColumns();
  }

  /** Everything that shows the window: after a new window or a tick's diff. */
  function renderWindow() {
    refreshColumns();
    renderChips();
    renderRows();
    renderFooter();
    renderActions();
    renderDetail();
  }

  // -- selection and actions -------------------------------------------------------------------
  function select(id) {
    if (id !== st.selected) {
      st.panel = null;
      st.result = null;
    }
    st.selected = id || "";
    st.selectedRow = st.selected ? win.rows.get(st.selected) || st.selectedRow : null;
    model.set("selected", st.selected);
    model.save_changes();
    renderRows();
    renderActions();
    renderDetail();
  }

  /** Select a job and scroll its row into view when the window has it (a notice's "Show"). */
  function reveal(id, row = null) {
    if (row && !win.rows.has(id)) st.selectedRow = row;
    select(id);
    const index = currentItems().findIndex((it) => it.row.id === id);
    if (index >= 0) {
      const top = (win.offset + index) * ROW_HEIGHT;
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
    const row = selectedRow();
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
    const whyText = why(row);
    const info = h("div", { class: "cj-selinfo" },
      h("span", { class: "cj-selname", title: row.name || "" }, row.name || row.id), " ",
      h("code", { class: "cj-selid" }, row.id), " ", badge(row.status),
      whyText.text ? h("span", { class: `cj-selwhy cj-why${whyText.level ? ` cj-why-${whyText.level}` : ""}`, title: whyText.text }, whyText.text) : null);
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
    if (msg && msg.type === "win") {
      if (msg.view !== token || msg.req !== st.winReq) return; // another view's, or an older request's
      root.setAttribute("data-loading", "false");
      if (win.load(msg, msg.req)) renderWindow();
      return;
    }
    if (msg && msg.type === "tick") {
      onTick(msg);
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
      st.selectedRow = null;
      model.set("selected", st.selected);
      model.save_changes();
      renderRows();
    }
    renderActions(true);
  }

  /** A poller tick: meta, counts, the jobs that ended, and this view's diff (only what changed in it).
   * Rows that only changed in place are redrawn alone; a new order redraws the visible rows. */
  function onTick(msg) {
    setMeta(msg.meta, true);
    let full = false;
    const patched = [];
    if (msg.counts && typeof msg.counts === "object") {
      const counts = Object.fromEntries(Object.entries(msg.counts).filter(([, n]) => Number.isSafeInteger(n) && n > 0));
      if (JSON.stringify(counts) !== JSON.stringify(win.counts)) {
        win.counts = counts;
        renderChips();
        renderFooter();
      }
    }
    const diff = msg.views && typeof msg.views === "object" ? msg.views[token] : null;
    if (diff && diff.req === win.req) {
      const total = win.total;
      if (win.apply(diff)) {
        if (Array.isArray(diff.ids) || diff.children || diff.collapsed || diff.kids) full = true;
        else for (const row of diff.rows || []) if (row && row.id !== undefined) patched.push(String(row.id));
        if (win.total !== total) renderFooter();
      }
    }
    if (msg.sel && msg.sel.id === st.selected) {
      st.selectedRow = msg.sel;
      if (win.update(msg.sel)) patched.push(String(msg.sel.id));
    }
    const ended = Array.isArray(msg.ended) ? msg.ended.filter((r) => r && FINAL.has(r.status)) : [];
    if (ended.length) {
      notices.add(ended);
      bell.notify(summarizeEnded(ended));
    }
    if (full) renderWindow();
    else if (patched.length) {
      patchRows(patched);
      renderActions();
      renderDetail();
    }
    renderDisk();
    renderClock();
  }

  /** Redraw these rows where they are shown (nothing else moves). */
  function patchRows(ids) {
    const items = currentItems();
    const byId = new Map(items.map((item) => [item.row.id, item]));
    st.runtimeCells = st.runtimeCells.filter(([c]) => c.isConnected);
    for (const id of new Set(ids)) {
      const item = byId.get(id);
      if (!item) continue;
      for (const el of rowsEl.children) {
        if (el.getAttribute("data-job-id") === id) el.replaceWith(rowElement(item));
      }
    }
  }

  function setMeta(meta, live) {
    st.meta = meta && typeof meta === "object" ? meta : {};
    if (live) {
      st.lastUpdate = Date.now();
      if (st.meta.now) st.skew = Date.now() - st.meta.now;
    } else if (st.meta.updated) {
      st.lastUpdate = st.meta.updated;
    }
  }

  // -- the connection to the kernel: a view whose kernel restarted or whose comm closed says so at once --
  const connection = watchConnection(model, (why) => {
    st.disconnected = `disconnected — re-run the cell (${why}); the table shows the last state received`;
    root.setAttribute("data-connection", "lost");
    for (const [c] of st.runtimeCells) c.classList.add("cj-frozen");
    renderClock();
  });
  const checkConnection = () => connection.check();
  const disposeConnection = () => connection.dispose();

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
  /** The widget's first window (synced state): shown until this view's own window arrives, and all
   * there is in a saved notebook. */
  function syncFromModel() {
    const first = model.get("window") || {};
    title.textContent = model.get("title") || "";
    setMeta(first.meta, false);
    if (win.req === null && st.winReq === 0) win.load(first, null);
    else if (first.counts) win.counts = { ...first.counts };
    renderWindow();
    renderDisk();
    renderClock();
  }
  const onWindow = () => syncFromModel();
  const onSelected = () => {
    const id = model.get("selected") || "";
    if (id !== st.selected) {
      st.selected = id;
      st.selectedRow = win.rows.get(id) || null;
      renderRows();
      renderActions();
      renderDetail();
    }
  };
  const onDetail = () => renderDetail();
  const onTitle = () => { title.textContent = model.get("title") || ""; };
  model.on("change:window", onWindow);
  model.on("change:selected", onSelected);
  model.on("change:detail", onDetail);
  model.on("change:title", onTitle);
  model.on("msg:custom", onCustom);

  applyColumns(true);
  syncFromModel();
  const ticker = createTicker(renderClock).start();
  // The first layout pass gives the viewport its real height: draw the rows again, and ask the
  // kernel for this view's own window (it then sends this view the changes in it every tick).
  requestAnimationFrame(() => {
    renderRows();
    ask(0, visibleCount() + 2 * 40);
  });

  return () => {
    ticker.stop();
    notices.clear();
    disposeConnection();
    clearTimeout(searchTimer);
    model.off("change:window", onWindow);
    model.off("change:selected", onSelected);
    model.off("change:detail", onDetail);
    model.off("change:title", onTitle);
    model.off("msg:custom", onCustom);
  };
}
