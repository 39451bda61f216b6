// 7. The dashboard applying one tick's diff in real headless Chromium, without JupyterLab (the
// approach of tests/e2e/table5000.e2e.mjs), on a table of 5,000 jobs. Ours: the shipped bundle with
// a stand-in kernel that answers the view's window requests from the 5,000 rows and sends each tick
// as the kernel does (one custom message; the rows changed in the view's window). Baseline, in the
// same run: the bundle of the design before (BASELINE_COMMIT, taken from git) holding all 5,000
// rows, applying the same change as a `delta` trait. Each tick is timed with performance.mark/measure
// from the message to the updated DOM with style and layout done (a forced reflow), which is what
// must fit in one frame.
//   node benchmarks/browser_diff.mjs [REPEATS]   (env: CHROMIUM)   prints one JSON object
import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const BASELINE_COMMIT = "c2fde29";
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const bundle = fs.readFileSync(path.join(root, "celline_jobs_nb", "widgets", "static", "widget.js"), "utf8");
const css = fs.readFileSync(path.join(root, "celline_jobs_nb", "widgets", "static", "widget.css"), "utf8");
let oldBundle = null;
try {
  oldBundle = execFileSync("git", ["-C", root, "show", `${BASELINE_COMMIT}:celline_jobs_nb/widgets/static/widget.js`], { encoding: "utf8", maxBuffer: 1 << 24 });
} catch (_err) {
  oldBundle = null;
}
const repeats = Number(process.argv[2] || 30);

async function measure(page, src, windowed, repeats) {
  return page.evaluate(async ({ src, windowed, repeats }) => {
    document.getElementById("host").replaceChildren();
    const url = URL.createObjectURL(new Blob([src], { type: "text/javascript" }));
    const widget = (await import(url)).default;
    const statuses = ["completed", "completed", "completed", "failed", "queued", "running"];
    const now = Date.now();
    const row = (i, tick = 0) => {
      const status = statuses[i % statuses.length];
      const r = {
        id: `job${String(i).padStart(5, "0")}`, name: `Count SRR${2584863 + i}`, type: ["Count", "Preprocess", "Integration"][i % 3],
        scheduler: "slurm", native: String(10000 + i), status, submit: now - (5000 - i) * 1000, res: "4 cpu · 32G · 04:00:00",
        cmd: `bash scripts/count.sh ${i}`,
      };
      if (status !== "queued") r.start = now - (5000 - i) * 900;
      if (status === "running") Object.assign(r, { pct: (tick * 3 + i) % 100, stage: "Aligning", cpu: 50 + ((i + tick) % 50), rss: (1 + ((i + tick) % 7)) * 2 ** 30 });
      else if (status !== "queued") Object.assign(r, { end: now - (5000 - i) * 800, exit: status === "failed" ? 1 : 0, pct: 100, stage: "done" });
      if (status === "failed") r.reason = "exit code 1";
      return r;
    };
    const rows = Array.from({ length: 5000 }, (_, i) => row(i));
    const newest = () => [...rows].reverse(); // the default order: newest first
    const meta = () => ({ now: Date.now(), updated: Date.now(), live: true, interval: 3, stale: [] });
    const counts = { completed: 2500, failed: 833, queued: 833, running: 834 };
    const listeners = {};
    let view = null; // the view's window, as the stand-in kernel keeps it
    const emit = (ev, ...args) => (listeners[ev] || []).forEach((fn) => fn(...args));
    const windowReply = (msg) => {
      const order = newest();
      const ids = order.slice(msg.offset, msg.offset + msg.limit).map((r) => r.id);
      view = { token: msg.view, req: msg.req, offset: msg.offset, ids: new Set(ids) };
      return { type: "win", view: msg.view, req: msg.req, query: msg.query, offset: msg.offset, limit: msg.limit, ids,
        rows: order.slice(msg.offset, msg.offset + msg.limit), kids: {}, children: {}, total: 5000, counts, full: true };
    };
    const state = windowed
      ? { _kind: "table", title: "5,000 jobs", selected: "", detail: {},
        window: { ...windowReply({ view: "first", req: null, query: {}, offset: 0, limit: 60 }), meta: meta() } }
      : { _kind: "table", title: "5,000 jobs", selected: "", detail: {},
        snapshot: { gen: 1, rows, meta: meta() }, delta: { gen: 1, seq: 1, rows: [], meta: meta() } };
    const model = {
      get: (k) => state[k], set: (k, v) => { state[k] = v; }, save_changes: () => {},
      send: (msg) => { if (msg && msg.type === "window") setTimeout(() => emit("msg:custom", windowReply(msg)), 0); },
      on: (ev, fn) => { (listeners[ev] ||= []).push(fn); },
      off: (ev, fn) => { listeners[ev] = (listeners[ev] || []).filter((f) => f !== fn); },
    };
    const el = document.getElementById("host");
    let t = performance.now();
    widget.render({ model, el });
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    await new Promise((r) => setTimeout(r, 50)); // the view's own window arrives
    const renderMs = performance.now() - t;
    const visible = document.querySelectorAll(".cj-row[data-job-id]").length;
    const settle = () => new Promise((r) => setTimeout(r, 20));
    let seq = 1;
    let n = 0;
    const layoutMs = [];
    const tick = async (label, change) => {
      performance.mark(`${label}-start-${n}`);
      change();
      await Promise.resolve();
      await Promise.resolve();
      performance.mark(`${label}-applied-${n}`);
      document.body.getBoundingClientRect(); // force style and layout: the frame's work, not just the script's
      performance.mark(`${label}-end-${n}`);
      const ms = performance.measure(`${label}-${n}`, `${label}-start-${n}`, `${label}-end-${n}`).duration;
      layoutMs.push([label, performance.measure(`${label}-layout-${n}`, `${label}-applied-${n}`, `${label}-end-${n}`).duration]);
      n++;
      return ms;
    };
    // The rows a tick changes: the newest jobs (the top of the default sort, so in view) first.
    const ids = (count) => Array.from({ length: count }, (_, k) => 4999 - k);
    const diff = async (count, k) => {
      const changed = ids(count).map((i) => ({ ...row(i, k + 1), status: k % 2 ? "running" : "completed", pct: (k * 7 + i) % 100 }));
      seq += 1;
      if (windowed) {
        const inView = changed.filter((r) => view.ids.has(r.id));
        return tick(`diff${count}`, () => emit("msg:custom", { type: "tick", seq, meta: meta(), counts,
          views: { [view.token]: { req: view.req, offset: view.offset, rows: inView, total: 5000 } } }));
      }
      return tick(`diff${count}`, () => {
        state.delta = { gen: state.snapshot.gen, seq, rows: changed, meta: meta() };
        emit("change:delta");
      });
    };
    const samples = { diff1: [], diff50: [], diff500: [] };
    const kinds = ["diff1", "diff50", "diff500"];
    for (let k = 0; k < repeats; k++) {
      for (let j = 0; j < kinds.length; j++) {
        const kind = kinds[(j + k) % kinds.length];
        samples[kind].push(await diff(Number(kind.slice(4)), k));
        await settle();
      }
    }
    const layout = {};
    for (const [label, ms] of layoutMs) (layout[label] ||= []).push(ms);
    const top = document.querySelector(".cj-row[data-job-id]");
    return { renderMs, visible, samples, layout, topRow: top ? top.getAttribute("data-job-id") : null };
  }, { src, windowed, repeats });
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
});
let result;
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.setContent(`<!doctype html><html><head><style>${css}</style></head><body><div id="host"></div></body></html>`);
  result = await measure(page, bundle, true, repeats);
  if (oldBundle) {
    await page.setContent(`<!doctype html><html><head><style>${css}</style></head><body><div id="host"></div></body></html>`);
    result.baseline = await measure(page, oldBundle, false, repeats);
  }
  result.errors = errors;
  result.chromium = browser.version();
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
