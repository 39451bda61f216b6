// The standalone page (GET /celline-jobs/?project=P): the dashboard's own views — status badges,
// the log tail, the progress panel — driven by the JobAPI (js/src/api.js) instead of a widget comm,
// so a project can be watched from any browser tab without a kernel. Job text is rendered with
// textContent only (dom.js's h()).

import { createJobAPI, JobAPIError } from "./api.js";
import { h, clear } from "./dom.js";
import { badge } from "./table.js";
import { renderLogTail } from "./logtail.js";
import { renderProgress } from "./progress.js";
import { formatDuration, formatPercent } from "./format.js";
import { FINAL } from "./rows.js";

const MAX_TAIL_LINES = 2000;
const TAIL_BYTES = 256 * 1024;
const MAX_ROWS = 5000;

/** A minimal stand-in for an anywidget model: get/set/on/off, changes announced at once. */
function localModel(initial) {
  const data = { ...initial };
  const handlers = new Map();
  return {
    get: (key) => data[key],
    set(key, value) {
      data[key] = value;
      for (const fn of handlers.get(`change:${key}`) || []) fn();
    },
    on(event, fn) {
      if (!handlers.has(event)) handlers.set(event, []);
      handlers.get(event).push(fn);
    },
    off(event, fn) {
      const list = handlers.get(event) || [];
      const i = list.indexOf(fn);
      if (i >= 0) list.splice(i, 1);
    },
    save_changes() {},
    send() {},
  };
}

const ms = (iso) => (iso ? Date.parse(iso) : undefined);

function progressItem(job) {
  const p = job.progress || {};
  const item = {
    id: job.job_id, name: job.name, status: job.status, pct: p.percent, stage: p.stage,
    details: p.details || {}, start: ms(job.start_time), end: ms(job.end_time), pupd: ms(p.updated_at),
  };
  for (const key of Object.keys(item)) if (item[key] === null || item[key] === undefined) delete item[key];
  return item;
}

function runtime(job) {
  if (!job.start_time) return "";
  const end = job.end_time ? Date.parse(job.end_time) : Date.now();
  return formatDuration(Math.max(0, (end - Date.parse(job.start_time)) / 1000));
}

export function startPage(root, config) {
  const api = createJobAPI({ project: config.project, base: config.base, xsrf: config.xsrf });
  const jobs = new Map();
  let selected = "";
  let showArchived = false;
  let logSocket = null;

  const title = h("h1", { class: "cj-page-title" }, "celline-jobs · ", config.project);
  const conn = h("span", { class: "cj-page-conn", role: "status" }, "connecting…");
  const archivedChip = h("button", { class: "cj-btn cj-chip cj-page-archived", type: "button", "aria-pressed": "false" });
  const message = h("div", { class: "cj-page-message", role: "alert" });
  message.hidden = true;
  const tbody = h("tbody");
  const table = h("table", { class: "cj-table cj-page-table" },
    h("thead", {}, h("tr", {}, ["ID", "Name", "Status", "Runtime", "Progress", "Reason", ""].map((t) => h("th", {}, t)))),
    tbody);
  const logEl = h("section", { class: "cj-page-log" });
  const progressEl = h("section", { class: "cj-page-progress" });
  root.append(h("header", { class: "cj-page-header" }, title, conn, archivedChip), message,
    h("div", { class: "cj-root cj-page-body" }, h("div", { class: "cj-table-wrap" }, table), progressEl, logEl));

  const logModel = localModel({ _kind: "logtail", follow: true, job_id: "", title: "", snapshot: { gen: 0, lines: [] },
    tail: { gen: 0, seq: 0, lines: [], partial: "" }, max_lines: MAX_TAIL_LINES });
  renderLogTail({ model: logModel, el: logEl });
  const progressModel = localModel({ _kind: "progress", title: "Progress", progress: { items: [] } });
  renderProgress({ model: progressModel, el: progressEl });

  function say(text) {
    message.hidden = !text;
    message.textContent = text || "";
  }

  function visible() {
    return [...jobs.values()].filter((j) => showArchived || !j.archived_at)
      .sort((a, b) => (b.created_at || "").localeCompare(a.created_at || ""));
  }

  async function act(kind, job) {
    try {
      if (kind === "cancel") {
        const done = await api.cancelJob(job.job_id);
        say(done ? "" : `${job.job_id} had already ended`);
      } else {
        const newId = await api.retryJob(job.job_id);
        say(`retried ${job.job_id} as ${newId}`);
      }
      await reload();
    } catch (err) {
      say(err instanceof JobAPIError ? err.message : String(err));
    }
  }

  function renderTable() {
    clear(tbody);
    const archived = [...jobs.values()].filter((j) => j.archived_at).length;
    archivedChip.hidden = archived === 0;
    archivedChip.textContent = showArchived ? `Hide archived (${archived})` : `Show archived (${archived})`;
    archivedChip.setAttribute("aria-pressed", String(showArchived));
    for (const job of visible()) {
      const p = job.progress || {};
      const final = FINAL.has(job.status);
      const button = h("button", { class: "cj-btn cj-page-action", type: "button", "data-action": final ? "retry" : "cancel" },
        final ? "Retry" : "Cancel");
      button.addEventListener("click", (event) => {
        event.stopPropagation();
        act(final ? "retry" : "cancel", job);
      });
      const row = h("tr", { class: `cj-page-row${job.job_id === selected ? " cj-selected" : ""}`, "data-job-id": job.job_id,
        "aria-selected": String(job.job_id === selected), tabindex: "0" },
        h("td", {}, h("code", {}, job.job_id)), h("td", { class: "cj-page-name" }, job.name),
        h("td", {}, badge(job.status), job.archived_at ? h("span", { class: "cj-chip cj-page-archived-mark" }, "archived") : null),
        h("td", {}, runtime(job)), h("td", {}, p.percent === null || p.percent === undefined ? "" : formatPercent(p.percent)),
        h("td", { class: "cj-page-reason" }, job.reason || ""), h("td", {}, button));
      row.addEventListener("click", () => select(job.job_id));
      tbody.append(row);
    }
    const running = visible().filter((j) => j.status === "running" || j.job_id === selected).slice(0, 8);
    progressModel.set("progress", { now: Date.now(), items: running.map(progressItem) });
  }

  function select(jobId) {
    selected = jobId;
    renderTable();
    follow(jobId);
  }

  function follow(jobId) {
    if (logSocket) logSocket.close();
    let gen = (logModel.get("snapshot").gen || 0) + 1;
    let lines = [];
    let partial = "";
    let bytesRead = 0;
    logModel.set("job_id", jobId);
    logModel.set("title", `Log of ${jobId}`);
    logModel.set("snapshot", { gen, lines: [] });
    logModel.set("tail", { gen, seq: 0, lines: [], partial: "", info: {} });
    const socket = api.streamLogs(jobId, -TAIL_BYTES);  // a long log opens at its end
    logSocket = socket;
    socket.addEventListener("message", (event) => {
      if (socket !== logSocket) return;
      const msg = JSON.parse(event.data);
      if (msg.type === "reset") {
        gen += 1;
        lines = [];
        partial = "";
        logModel.set("snapshot", { gen, lines: [] });
      } else if (msg.type === "log") {
        const parts = (partial + msg.text).split("\n");
        partial = parts.pop();
        lines.push(...parts);
        bytesRead = msg.bytes_read || bytesRead;
        if (lines.length > 4 * MAX_TAIL_LINES) {  // compact: a new generation with the last lines
          gen += 1;
          lines = lines.slice(-MAX_TAIL_LINES);
          logModel.set("snapshot", { gen, lines });
          lines = [];
        }
      } else if (msg.type === "error") {
        logModel.set("tail", { gen, seq: lines.length, lines: lines.slice(), partial, info: { notice: msg.message } });
        return;
      }
      logModel.set("tail", { gen, seq: lines.length, lines: lines.slice(), partial,
        info: { bytes_read: bytesRead, notice: msg.type === "end" ? "the job has ended" : "" } });
    });
  }

  async function reload() {
    const list = await api.listJobs(undefined, { limit: MAX_ROWS });
    jobs.clear();
    for (const job of list) jobs.set(job.job_id, job);
    renderTable();
  }

  function connectEvents() {
    const socket = api.events();
    socket.addEventListener("open", () => { conn.textContent = "live"; conn.dataset.state = "live"; });
    socket.addEventListener("message", (event) => {
      const msg = JSON.parse(event.data);
      if (msg.type !== "changes") return;
      for (const job of msg.jobs || []) jobs.set(job.job_id, job);
      renderTable();
    });
    socket.addEventListener("close", () => {
      conn.textContent = "disconnected: reconnecting…";
      conn.dataset.state = "disconnected";
      setTimeout(() => { reload().catch(() => {}); connectEvents(); }, 2000);
    });
  }

  archivedChip.addEventListener("click", () => {
    showArchived = !showArchived;
    renderTable();
  });

  reload().then(connectEvents).catch((err) => say(err instanceof JobAPIError ? err.message : String(err)));
  return { api, select, reload };
}

const configEl = typeof document !== "undefined" ? document.getElementById("celline-jobs-config") : null;
if (configEl) {
  const config = JSON.parse(configEl.textContent);
  window.cellineJobs = startPage(document.getElementById("celline-jobs-root"), config);
}
