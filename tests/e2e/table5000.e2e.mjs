// The shipped widget bundle renders a 5,000-job table in headless Chromium, without JupyterLab:
// a minimal stand-in for the anywidget model feeds it a snapshot and diffs. Checks that only the
// visible rows exist in the DOM, that scrolling, sorting and filtering stay fast, that a diff of
// one row updates the view, and that job text is never parsed as HTML.
//   node tests/e2e/table5000.e2e.mjs   (env: CHROMIUM, SHOT)
import { chromium } from "playwright-core";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, "..", "..");
const bundle = fs.readFileSync(path.join(root, "celline_jobs_nb", "widgets", "static", "widget.js"), "utf8");
const css = fs.readFileSync(path.join(root, "celline_jobs_nb", "widgets", "static", "widget.css"), "utf8");
const SHOT = process.env.SHOT || path.join(root, "test-output", "table-5000.png");
const results = [];
const check = (name, ok, detail = "") => {
  results.push(Boolean(ok));
  console.log(`CHECK ${ok ? "ok" : "FAIL"} ${name}${detail ? `: ${detail}` : ""}`);
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const dialogs = [];
  page.on("dialog", async (d) => { dialogs.push(d.message()); await d.dismiss(); });
  page.on("pageerror", (e) => console.log("  [pageerror]", String(e)));
  await page.setContent(`<!doctype html><html><head><style>${css}</style></head><body><div id="host"></div></body></html>`);
  const timings = await page.evaluate(async (src) => {
    const url = URL.createObjectURL(new Blob([src], { type: "text/javascript" }));
    const widget = (await import(url)).default;
    const statuses = ["running", "completed", "failed", "pending", "queued", "cancelled"];
    const now = Date.now();
    const rows = [];
    for (let i = 0; i < 5000; i++) {
      rows.push({
        id: `job${String(i).padStart(5, "0")}`, name: i === 4321 ? "<img src=x onerror=alert(1)>" : `sample ${i} count`,
        type: ["Count", "Preprocess", "Integration"][i % 3], scheduler: i % 2 ? "slurm" : "local",
        status: statuses[i % statuses.length], submit: now - (5000 - i) * 1000, start: now - (5000 - i) * 900,
        end: statuses[i % statuses.length] === "running" ? undefined : now - (5000 - i) * 800,
        pct: i % 7 === 0 ? 50 : undefined, res: "4 cpu · 32G", parent: i >= 4990 ? "array1" : undefined, idx: i >= 4990 ? i - 4990 : undefined,
      });
    }
    // The anywidget model API the view uses: get / set / save_changes / on / off / send.
    const listeners = {};
    const state = {
      _kind: "table", title: "5,000 jobs", selected: "",
      snapshot: { gen: 1, rows, meta: { now, updated: now, live: true, interval: 2, stale: [] } },
      delta: { gen: 1, seq: 1, rows: [], meta: { now, updated: now, live: true, interval: 2, stale: [] } },
    };
    const model = {
      sent: [],
      get: (k) => state[k],
      set: (k, v) => { state[k] = v; },
      save_changes: () => {},
      send: (msg) => model.sent.push(msg),
      on: (ev, fn) => { (listeners[ev] ||= []).push(fn); },
      off: (ev, fn) => { listeners[ev] = (listeners[ev] || []).filter((f) => f !== fn); },
      emit: (ev, ...args) => (listeners[ev] || []).forEach((fn) => fn(...args)),
    };
    window.__model = model;
    window.__state = state;
    const el = document.getElementById("host");
    const t0 = performance.now();
    widget.render({ model, el });
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    const renderMs = performance.now() - t0;
    return { renderMs };
  }, bundle);

  const domRows = await page.locator(".cj-row[data-job-id]").count();
  check("5,000 jobs render fast", timings.renderMs < 1500, `${timings.renderMs.toFixed(0)} ms`);
  check("only the visible rows are in the DOM", domRows > 5 && domRows < 80, `${domRows} row elements`);
  const footer = await page.locator(".cj-footer").textContent();
  check("footer counts every job", /4,991 jobs|5,000 jobs/.test(footer || ""), footer);
  const chipAll = await page.locator('.cj-chip[data-status="all"]').textContent();
  check("status chips count all jobs", /5,000/.test(chipAll || ""), chipAll);

  // Scroll to the bottom: the last rows are rendered, still only a window of them.
  const scrollMs = await page.evaluate(async () => {
    const vp = document.querySelector(".cj-viewport");
    const t = performance.now();
    vp.scrollTop = vp.scrollHeight;
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    return performance.now() - t;
  });
  const lastIds = await page.locator(".cj-row[data-job-id]").evaluateAll((els) => els.map((e) => e.getAttribute("data-job-id")));
  check("scrolling renders the rows at the end", lastIds.includes("job00000") && lastIds.length < 80 && scrollMs < 500,
    `${lastIds.length} rows, ${scrollMs.toFixed(0)} ms`);

  // Sort by name, then filter by text: both fast.
  let t = Date.now();
  await page.locator('.cj-hcell[data-col="name"] button').click();
  await page.waitForFunction(() => document.querySelector('.cj-hcell[data-col="name"]').getAttribute("aria-sort") === "ascending");
  const sortMs = Date.now() - t;
  check("sorting 5,000 rows is fast", sortMs < 1500, `${sortMs} ms`);
  t = Date.now();
  const onlyRow = (id) => page.waitForFunction((want) => {
    const rows = document.querySelectorAll(".cj-row[data-job-id]");
    return rows.length === 1 && rows[0].getAttribute("data-job-id") === want;
  }, id, { timeout: 5000 }).catch(() => {});
  await page.locator(".cj-search").fill("sample 4989");
  await onlyRow("job04989");
  const filterMs = Date.now() - t;
  const filtered = await page.locator(".cj-row [data-col='name']").allTextContents();
  check("free-text filter over 5,000 rows", filtered.length === 1 && filtered[0] === "sample 4989 count", `${filtered.join("|")} in ${filterMs} ms`);
  await page.locator(".cj-search").fill("onerror");
  await onlyRow("job04321");
  const xss = await page.locator(".cj-row [data-col='name']").allTextContents();
  const imgs = await page.evaluate(() => document.querySelectorAll("img").length);
  check("job text is rendered as text", xss[0] === "<img src=x onerror=alert(1)>" && imgs === 0 && dialogs.length === 0, `imgs=${imgs}`);
  await page.locator(".cj-search").fill("");
  await page.waitForTimeout(300);

  // Array tasks: a group row that expands.
  await page.locator(".cj-search").fill("array1");
  await page.waitForTimeout(300);
  const groupRows = await page.locator(".cj-row.cj-group").count();
  await page.locator(".cj-row.cj-group .cj-expander").first().click();
  const children = await page.locator(".cj-row.cj-child").count();
  check("array tasks grouped under their parent, expandable", groupRows === 1 && children === 10, `${groupRows} group, ${children} tasks`);
  await page.locator(".cj-search").fill("");
  await page.waitForTimeout(300);

  // A diff of one row (what the kernel sends per tick) updates the table.
  await page.evaluate(() => {
    const s = window.__state;
    const row = { ...s.snapshot.rows.find((r) => r.id === "job04989"), status: "failed", reason: "exit code 3", end: Date.now() };
    s.delta = { gen: 1, seq: 2, rows: [row], meta: { ...s.delta.meta, now: Date.now() } };
    window.__model.emit("change:delta");
  });
  await page.locator(".cj-search").fill("sample 4989");
  await onlyRow("job04989");
  const status = await page.locator(".cj-row [data-col='status'] .cj-badge").first().textContent();
  check("a one-row diff updates the view", status === "failed", status);
  // Cancel asks first; the kernel's reply (here an error) is shown in the widget.
  await page.locator(".cj-search").fill("sample 4986");
  await onlyRow("job04986"); // a running job
  await page.locator(".cj-row[data-job-id='job04986'] [data-col='name']").click();
  await page.locator(".cj-actions .cj-cancel").click();
  const asked = await page.locator(".cj-confirm").isVisible();
  await page.locator(".cj-confirm-yes").click();
  const sent = await page.evaluate(() => window.__model.sent.filter((m) => m.action === "cancel"));
  check("cancel is confirmed in the widget, then sent as a custom message",
    asked && sent.length === 1 && sent[0].job_id === "job04986" && Boolean(sent[0].req), JSON.stringify(sent));
  await page.evaluate((req) => window.__model.emit("msg:custom", { type: "reply", req, action: "cancel", ok: false, message: "scancel: Invalid job id" }), sent[0]?.req);
  const errorText = await page.locator(".cj-result.cj-error").textContent().catch(() => "");
  check("an action's error is shown in the widget", errorText === "scancel: Invalid job id", errorText);

  // A failed poll: a clear stale warning with the error.
  await page.evaluate(() => {
    const s = window.__state;
    s.delta = { ...s.delta, seq: 3, meta: { ...s.delta.meta, now: Date.now(), stale: [{ scheduler: "slurm", error: "`squeue` did not answer within 30 s", last_success: Date.now() - 95000 }] } };
    window.__model.emit("change:delta");
  });
  await page.waitForTimeout(100);
  const staleText = await page.locator(".cj-stale").textContent();
  check("stale warning with the poll error", (await page.locator(".cj-stale").isVisible()) && /squeue. did not answer/.test(staleText) && /1 min ago/.test(staleText), staleText);
  await page.locator(".cj-search").fill("");
  await page.waitForTimeout(300);
  fs.mkdirSync(path.dirname(SHOT), { recursive: true });
  await page.screenshot({ path: SHOT });
} catch (error) {
  check("driver ran to the end", false, String(error && error.stack ? error.stack : error).slice(0, 800));
} finally {
  await browser.close();
}
const failed = results.filter((ok) => !ok).length;
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
