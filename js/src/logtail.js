// The LogTail view: follows a log (the kernel sends only new lines), with follow/pause, search
// highlight, ANSI colours and a bounded number of lines in the DOM.

import { h, clear, segmentNodes } from "./dom.js";
import { parseAnsi, highlightSegments, countMatches, stripAnsi } from "./ansi.js";
import { LogBuffer } from "./logbuffer.js";
import { formatCount } from "./format.js";

export function renderLogTail({ model, el }) {
  const buffer = new LogBuffer(model.get("max_lines") || 2000);
  let query = "";
  let matchIndex = -1;

  const root = h("div", { class: "cj-root cj-logtail", "data-widget": "log-tail" });
  const title = h("span", { class: "cj-log-title" });
  const info = h("span", { class: "cj-log-info" });
  const search = h("input", { class: "cj-log-search", type: "search", placeholder: "Search log", "aria-label": "Search the log" });
  const matches = h("span", { class: "cj-log-matches" });
  const followBtn = h("button", { class: "cj-btn cj-log-follow", type: "button" });
  const header = h("div", { class: "cj-log-header" }, title, info, h("div", { class: "cj-log-tools" }, search, matches, followBtn));
  const notice = h("div", { class: "cj-log-notice", role: "status" });
  notice.hidden = true;
  const body = h("div", { class: "cj-log-body", role: "log", "aria-live": "off", tabindex: "0" });
  const partial = h("div", { class: "cj-log-line cj-log-partial" });
  const emptyEl = h("div", { class: "cj-log-empty" });
  root.append(header, notice, body, emptyEl);
  el.append(root);

  function lineNode(text) {
    const { segments } = parseAnsi(text);
    const node = h("div", { class: "cj-log-line" });
    node.append(...segmentNodes(highlightSegments(segments, query)));
    return node;
  }

  function atBottom() {
    return body.scrollHeight - body.scrollTop - body.clientHeight < 24;
  }

  function scrollToEnd() {
    body.scrollTop = body.scrollHeight;
  }

  function renderAll() {
    clear(body);
    const fragment = document.createDocumentFragment();
    for (const line of buffer.lines) fragment.append(lineNode(line));
    body.append(fragment);
    renderPartial();
    body.append(partial);
  }

  function renderPartial() {
    clear(partial);
    if (buffer.partial) {
      const { segments } = parseAnsi(buffer.partial);
      partial.append(...segmentNodes(highlightSegments(segments, query)));
    }
    partial.hidden = !buffer.partial;
  }

  function renderMatches() {
    if (!query) {
      matches.textContent = "";
      return;
    }
    let n = 0;
    for (const line of buffer.lines) n += countMatches(stripAnsi(line), query);
    if (buffer.partial) n += countMatches(stripAnsi(buffer.partial), query);
    matches.textContent = `${formatCount(n)} match${n === 1 ? "" : "es"}`;
  }

  function renderMeta() {
    const follow = model.get("follow");
    followBtn.textContent = follow ? "Pause" : "Follow";
    followBtn.setAttribute("aria-pressed", String(!follow));
    root.classList.toggle("cj-paused", !follow);
    const jobId = model.get("job_id");
    const path = model.get("path");
    title.textContent = model.get("title") || (jobId ? `Log of ${jobId}` : path ? `Log ${path}` : "Log");
    const tail = model.get("tail") || {};
    const st = tail.info || {};
    const parts = [`${formatCount(buffer.lines.length)} lines shown`];
    if (st.bytes_read) parts.push(`${formatCount(st.bytes_read)} bytes read`);
    if (!follow) parts.push("paused");
    info.textContent = parts.join(" · ");
    notice.hidden = !st.notice;
    notice.textContent = st.notice || "";
    const has = Boolean(jobId || path);
    emptyEl.hidden = has;
    emptyEl.textContent = has ? "" : "Select a job in the table to follow its log here.";
    body.hidden = !has;
  }

  function update(initial) {
    const wasAtBottom = initial || atBottom();
    const { reset, appended, dropped } = buffer.sync(model.get("snapshot"), model.get("tail"));
    if (reset || initial) {
      renderAll();
    } else {
      for (let i = 0; i < dropped && body.firstChild && body.firstChild !== partial; i++) body.removeChild(body.firstChild);
      for (const line of appended) body.insertBefore(lineNode(line), partial);
      renderPartial();
    }
    renderMeta();
    renderMatches();
    if (model.get("follow") && (wasAtBottom || reset)) scrollToEnd();
  }

  let queued = false;
  const onChange = () => {
    if (queued) return;
    queued = true;
    queueMicrotask(() => {
      queued = false;
      update(false);
    });
  };
  const onMeta = () => renderMeta();

  let searchTimer = null;
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      query = search.value;
      matchIndex = -1;
      renderAll();
      renderMatches();
    }, 150);
  });
  search.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    const marks = body.querySelectorAll("mark.cj-mark");
    if (!marks.length) return;
    marks.forEach((m) => m.classList.remove("cj-mark-current"));
    matchIndex = (matchIndex + (event.shiftKey ? -1 : 1) + marks.length) % marks.length;
    const mark = marks[matchIndex];
    mark.classList.add("cj-mark-current");
    mark.scrollIntoView({ block: "center" });
  });
  followBtn.addEventListener("click", () => {
    const follow = !model.get("follow");
    model.set("follow", follow);
    model.save_changes();
    renderMeta();
    if (follow) scrollToEnd();
  });

  model.on("change:snapshot", onChange);
  model.on("change:tail", onChange);
  model.on("change:follow", onMeta);
  model.on("change:title", onMeta);
  model.on("change:job_id", onMeta);
  update(true);
  requestAnimationFrame(() => { if (model.get("follow")) scrollToEnd(); });

  return () => {
    clearTimeout(searchTimer);
    model.off("change:snapshot", onChange);
    model.off("change:tail", onChange);
    model.off("change:follow", onMeta);
    model.off("change:title", onMeta);
    model.off("change:job_id", onMeta);
  };
}
