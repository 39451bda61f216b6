// 7. The dashboard applying one diff with 5,000 rows shown, in real headless Chromium, without
// JupyterLab (the approach of tests/e2e/table5000.e2e.mjs): the shipped bundle renders a 5,000-job
// snapshot through a minimal stand-in for the anywidget model, then gets the kernel's per-tick
// `delta` messages. Each is timed with performance.mark/measure from the model change to the
// updated DOM with style and layout done (a forced reflow), which is what must fit in one frame.
// Baseline: the naive design's tick, a new snapshot of all 5,000 rows.
//   node benchmarks/browser_diff.mjs [REPEATS]   (env: CHROMIUM)   prints one JSON object
import { chromium } from "playwright-core";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const bundle = fs.readFileSync(path.join(root, "celline_jobs_nb", "widgets", "static", "widget.js"), "utf8");
const css = fs.readFileSync(path.join(root, "celline_jobs_nb", "widgets", "static", "widget.css"), "utf8");
const repeats = Number(process.argv[2] || 30);

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
  result = await page.evaluate(async ({ src, repeats }) => {
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
    const meta = () => ({ now: Date.now(), updated: Date.now(), live: true, interval: 3, stale: [] });
    const listeners = {};
    const state = { _kind: "table", title: "5,000 jobs", selected: "", detail: {},
      snapshot: { gen: 1, rows, meta: meta() }, delta: { gen: 1, seq: 1, rows: [], meta: meta() } };
    const model = {
      get: (k) => state[k], set: (k, v) => { state[k] = v; }, save_changes: () => {}, send: () => {},
      on: (ev, fn) => { (listeners[ev] ||= []).push(fn); },
      off: (ev, fn) => { listeners[ev] = (listeners[ev] || []).filter((f) => f !== fn); },
      emit: (ev) => (listeners[ev] || []).forEach((fn) => fn()),
    };
    const el = document.getElementById("host");
    let t = performance.now();
    widget.render({ model, el });
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    const renderMs = performance.now() - t;
    const visible = document.querySelectorAll(".cj-row[data-job-id]").length;
    const settle = () => new Promise((r) => setTimeout(r, 20)); // let the previous frame paint

    // One tick: `change` sets the traits and emits, as the anywidget model does for a comm message.
    // The view applies it in a microtask; awaiting one after it means the DOM is updated.
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
    // The rows a diff changes: the newest jobs (the top of the default sort, so visible) first.
    const ids = (count) => Array.from({ length: count }, (_, k) => 4999 - k);
    const diff = async (count, k) => {
      const changed = ids(count).map((i) => ({ ...row(i, k + 1), status: k % 2 ? "running" : "completed", pct: (k * 7 + i) % 100 }));
      seq += 1;
      return tick(`diff${count}`, () => {
        state.delta = { gen: state.snapshot.gen, seq, rows: changed, meta: meta() };
        model.emit("change:delta");
      });
    };
    // The naive design's tick: every row again, as a new snapshot.
    const snapshot = async (k) => {
      const fresh = rows.map((r, i) => (i >= 4950 ? row(i, k + 1) : { ...r }));
      return tick("snapshot", () => {
        state.snapshot = { gen: state.snapshot.gen + 1, rows: fresh, meta: meta() };
        state.delta = { gen: state.snapshot.gen, seq: ++seq, rows: [], meta: meta() };
        model.emit("change:snapshot");
        model.emit("change:delta");
      });
    };
    const samples = { diff1: [], diff50: [], diff500: [], snapshot: [] };
    const kinds = ["diff1", "diff50", "diff500", "snapshot"];
    for (let k = 0; k < repeats; k++) {
      // The order rotates, so that no kind always runs first after a pause (GC, timers).
      for (let j = 0; j < kinds.length; j++) {
        const kind = kinds[(j + k) % kinds.length];
        samples[kind].push(kind === "snapshot" ? await snapshot(k) : await diff(Number(kind.slice(4)), k));
        await settle();
      }
    }
    const top = document.querySelector(".cj-row[data-job-id]");
    const layout = {};
    for (const [label, ms] of layoutMs) (layout[label] ||= []).push(ms);
    return { renderMs, visible, samples, layout, topRow: top ? top.getAttribute("data-job-id") : null,
      topStatus: top ? top.querySelector(".cj-badge")?.textContent : null };
  }, { src: bundle, repeats });
  result.errors = errors;
  result.chromium = browser.version();
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
