// The toast stack, the bell and the sparkline with a minimal fake DOM (node has none): they only
// use createElement/createElementNS, attributes, text nodes and listeners — never markup strings.
import { test } from "node:test";
import assert from "node:assert/strict";

class FakeNode {
  constructor(tag, ns = null) {
    this.tagName = tag;
    this.namespaceURI = ns;
    this.children = [];
    this.attributes = {};
    this.listeners = {};
    this.style = {};
    this.dataset = {};
    this.parent = null;
    this._text = "";
    const classes = new Set();
    this.classList = {
      add: (c) => classes.add(c), remove: (c) => classes.delete(c), contains: (c) => classes.has(c),
      toggle: (c, on) => ((on ?? !classes.has(c)) ? classes.add(c) : classes.delete(c)),
    };
    Object.defineProperty(this, "className", { get: () => [...classes].join(" "), set: (v) => { classes.clear(); String(v).split(/\s+/).filter(Boolean).forEach((c) => classes.add(c)); } });
  }
  setAttribute(k, v) { this.attributes[k] = String(v); if (k === "class") this.className = v; }
  getAttribute(k) { return this.attributes[k] ?? null; }
  removeAttribute(k) { delete this.attributes[k]; }
  addEventListener(ev, fn) { (this.listeners[ev] ||= []).push(fn); }
  append(...nodes) { for (const n of nodes) this.appendChild(typeof n === "string" ? new FakeText(n) : n); }
  appendChild(n) { n.parent = this; this.children.push(n); return n; }
  removeChild(n) { this.children = this.children.filter((c) => c !== n); n.parent = null; }
  remove() { if (this.parent) this.parent.removeChild(this); }
  get firstChild() { return this.children[0] || null; }
  set textContent(v) { this.children = [new FakeText(String(v))]; }
  get textContent() { return this.children.map((c) => c.textContent).join(""); }
  set innerHTML(_v) { throw new Error("innerHTML must not be used"); }
  async click() { for (const fn of this.listeners.click || []) await fn({ target: this }); }
  find(cls) { if (this.classList.contains(cls)) return this; for (const c of this.children) { const f = c.find?.(cls); if (f) return f; } return null; }
}
class FakeText { constructor(t) { this.textContent = t; } }
const created = [];
globalThis.document = {
  createElement: (tag) => { const n = new FakeNode(tag); created.push(n); return n; },
  createElementNS: (ns, tag) => { const n = new FakeNode(tag, ns); created.push(n); return n; },
  createTextNode: (t) => new FakeText(t),
};

const { createBell } = await import("../src/toasts.js");
const { createStrip } = await import("../src/notices.js");
const { sparklineSvg, SVG_NS } = await import("../src/sparkline.js");
const { summarizeEnded } = await import("../src/notify.js");

function fakeTimers() {
  const pending = new Map();
  let next = 1;
  return {
    setTimeout: (fn, ms) => { pending.set(next, { fn, ms }); return next++; },
    clearTimeout: (id) => pending.delete(id),
    fire: () => { for (const [id, t] of [...pending]) { pending.delete(id); t.fn(); } },
    pending,
  };
}

test("status strip: one line, text only, endings aggregated, the failure's why and Show log, dismiss, auto-hide", async () => {
  const box = new FakeNode("div");
  const timers = fakeTimers();
  let clock = 1000;
  const shown = [];
  const strip = createStrip(box, { onShow: (id) => shown.push(id), timers, now: () => clock });
  assert.equal(box.hidden, true, "nothing to say: no strip");
  const name = "<img src=x onerror=alert(1)>";
  strip.add([{ id: "a1", name, status: "failed", exit: 3, err: "Error in readRDS(file): cannot open" }]);
  assert.equal(box.hidden, false);
  assert.equal(box.find("cj-notice-title").textContent, `${name} failed`);
  assert.equal(box.find("cj-notice-why").textContent, " · exit 3 · Error in readRDS(file): cannot open");
  assert.equal(box.getAttribute("data-level"), "error");
  assert.equal(box.find("cj-notice-show").textContent, "Show log");
  await box.find("cj-notice-show").click();
  assert.deepEqual(shown, ["a1"]);
  // More endings soon after: one aggregated line (never a stack), the failure still the one to show.
  clock += 5000;
  strip.add([{ id: "b1", name: "Count S2", status: "completed" }, { id: "b2", name: "Count S3", status: "completed" }]);
  assert.equal(box.find("cj-notice-title").textContent, "3 jobs ended: 2 completed, 1 failed");
  assert.equal(box.getAttribute("data-count"), "3");
  assert.equal(box.find("cj-notice-show").textContent, `Show ${name}`);
  assert.equal(box.children.length, 3, "text, Show, dismiss: one line");
  await box.find("cj-notice-close").click();
  assert.equal(box.hidden, true);
  // Long after: a new notice starts afresh and hides by itself.
  clock += 60000;
  strip.add([{ id: "c1", name: "Count S4", status: "completed" }]);
  assert.equal(box.find("cj-notice-title").textContent, "Count S4 completed");
  timers.fire();
  assert.equal(box.hidden, true);
  assert.equal(strip.add([]), null);
});

function fakeNotification(permission, answer) {
  const made = [];
  function N(title, options) { made.push({ title, ...options }); }
  N.permission = permission;
  N.asked = 0;
  N.requestPermission = async () => { N.asked++; N.permission = answer; return answer; };
  return { N, made };
}

test("the bell asks for the permission only when clicked, then notifies while the page is in the background", async () => {
  const { N, made } = fakeNotification("default", "granted");
  const doc = { visibilityState: "hidden", hasFocus: () => false };
  const messages = [];
  const bell = createBell({ say: (m) => messages.push(m), globalObj: { Notification: N, isSecureContext: true, document: doc } });
  const summary = summarizeEnded([{ id: "a", name: "Count", status: "completed" }]);
  assert.equal(bell.notify(summary), null, "off by default");
  assert.equal(N.asked, 0, "never asked without a click");
  assert.equal(bell.button.getAttribute("aria-pressed"), "false");
  await bell.button.click();
  assert.equal(N.asked, 1);
  assert.equal(bell.on, true);
  assert.equal(bell.button.getAttribute("aria-pressed"), "true");
  bell.notify(summary);
  assert.deepEqual(made, [{ title: "Count completed", body: "", tag: summary.tag }]);
  doc.visibilityState = "visible";
  doc.hasFocus = () => true;
  assert.equal(bell.notify(summary), null, "in front: the toast is enough");
  await bell.button.click();
  assert.equal(bell.on, false);
  assert.equal(messages.length, 0);
});

test("the bell explains a refusal or a browser without notifications", async () => {
  const denied = fakeNotification("default", "denied");
  const messages = [];
  const bell = createBell({ say: (m) => messages.push(m), globalObj: { Notification: denied.N, isSecureContext: true } });
  await bell.button.click();
  assert.equal(bell.on, false);
  assert.match(messages[0], /not allowed/);
  await bell.button.click();
  assert.equal(denied.N.asked, 1, "a denied permission is not asked again");
  assert.match(messages[1], /blocked/);
  const none = createBell({ say: (m) => messages.push(m), globalObj: {} });
  await none.button.click();
  assert.equal(none.on, false);
  assert.match(messages[2], /not available/);
});

test("sparkline: an SVG built with createElementNS, a title as text, numeric points only", () => {
  const svg = sparklineSvg([10, 50, null, 90], { width: 100, height: 20, label: "CPU % <b>", className: "cj-spark-cpu" });
  assert.equal(svg.namespaceURI, SVG_NS);
  assert.equal(svg.tagName, "svg");
  assert.equal(svg.getAttribute("class"), "cj-spark cj-spark-cpu");
  assert.equal(svg.getAttribute("viewBox"), "0 0 100 20");
  assert.equal(svg.getAttribute("data-points"), "3");
  const [title, line, dot] = svg.children;
  assert.equal(title.tagName, "title");
  assert.equal(title.textContent, "CPU % <b>");
  assert.equal(line.tagName, "polyline");
  assert.match(line.getAttribute("points"), /^[0-9., ]+$/);
  assert.equal(line.getAttribute("points").split(" ").length, 3);
  assert.equal(dot.tagName, "circle");
  assert.ok(created.filter((n) => n.namespaceURI === SVG_NS).length >= 4);
  assert.equal(sparklineSvg([1], { label: "x" }), null);
});
