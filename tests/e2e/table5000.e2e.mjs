// The shipped widget bundle renders a 5,000-job table in headless Chromium, without JupyterLab:
// a minimal stand-in for the anywidget model, with a stand-in kernel that answers the view's window
// requests from the 5,000 rows (sort, status chips, text, grouping) and sends ticks as the kernel
// does. Checks that only the visible rows exist in the DOM, that scrolling, sorting and filtering
// ask the kernel and stay fast, that a tick of one row updates the view, and that job text is
// never parsed as HTML. Also: resource use columns
// with their colour hints, attempt n/m and a ticking retry countdown, the selected job's sparklines,
// the disk usage line, a grouped toast when jobs end, and the bell (a stand-in Notification records
// what the browser would be asked and shown).
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
const t0 = Date.now();
const check = (name, ok, detail = "") => {
  results.push(Boolean(ok));
  console.log(`CHECK ${ok ? "ok" : "FAIL"} ${name}${detail ? `: ${detail}` : ""} [${((Date.now() - t0) / 1000).toFixed(1)}s]`);
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
      const row = rows[rows.length - 1];
      if (row.status === "running") Object.assign(row, { cpu: 700 + (i % 50), rss: 1.2 * 1024 ** 3, peak: 3 * 1024 ** 3, ceff: i % 12 === 0 ? 10 : 80, meff: i % 12 === 0 ? 95 : 40 });
      else if (row.status === "completed") Object.assign(row, { peak: 2 * 1024 ** 3, ceff: 70, meff: 50 });
    }
    // The array's own row (its tasks are job04990 .. job04999).
    rows.push({ id: "array1", name: "sample array count", type: "Count", scheduler: "slurm", status: "running", submit: now - 20000, res: "4 cpu · 32G" });
    // A retry waiting in its backoff (attempt 2 of 4).
    Object.assign(rows[4001], { status: "pending", start: undefined, end: undefined, attempt: 2, maxatt: 4, retry_of: "job04000",
      nb: now + 55000, rreason: "attempt 1 oom: out of memory" });
    // Browser notifications: a stand-in that records what would be asked and shown.
    window.__notes = [];
    window.__asked = 0;
    class FakeNotification {
      constructor(title, options) { window.__notes.push({ title, ...options }); }
      static async requestPermission() { window.__asked++; FakeNotification.permission = "granted"; return "granted"; }
    }
    FakeNotification.permission = "default";
    window.Notification = FakeNotification;
    Object.defineProperty(window, "isSecureContext", { value: true }); // as on http://127.0.0.1 (JupyterLab)
    const disk = { folders: [["data", 1.2 * 1024 ** 4], ["resources", 300 * 1024 ** 3], ["results", 80 * 1024 ** 3]], free: 40 * 1024 ** 3, total: 2 * 1024 ** 4, at: now };
    // A stand-in kernel: the view's window requests answered from `rows`, ticks sent as the kernel does.
    const STATUS_ORDER = ["pending", "queued", "held", "running", "completed", "failed", "cancelled", "unknown"];
    const collator = new Intl.Collator("en", { numeric: true, sensitivity: "base" });
    const kernel = {
      rows: new Map(rows.map((r) => [r.id, r])),
      view: null,
      superseded(r) {
        if (this.oldVersion !== this.version) {
          this.old = new Set([...this.rows.values()].map((o) => o.retry_of).filter(Boolean));
          this.oldVersion = this.version;
        }
        return this.old.has(r.id);
      },
      version: 0,
      counts() {
        const c = {};
        for (const r of this.rows.values()) if (!this.superseded(r)) c[r.status] = (c[r.status] || 0) + 1;
        return c;
      },
      top(q) {
        const words = (q.text || "").toLowerCase().split(/\s+/).filter(Boolean);
        const hay = (r) => [r.id, r.name, r.type, r.reason].filter(Boolean).join(" ").toLowerCase();
        const value = (r) => (q.sort === "submit" ? r.submit : q.sort === "status" ? STATUS_ORDER.indexOf(r.status) : r[q.sort]);
        const out = [...this.rows.values()].filter((r) => !r.parent && !this.superseded(r)
          && (!q.statuses.length || q.statuses.includes(r.status)) && words.every((w) => hay(r).includes(w)));
        out.sort((a, b) => {
          const va = value(a);
          const vb = value(b);
          if (va === undefined || vb === undefined) return (va === undefined) - (vb === undefined);
          const c = typeof va === "number" ? va - vb : collator.compare(String(va), String(vb));
          return q.dir === "desc" ? -c : c;
        });
        return out;
      },
      answer(msg) {
        const q = { sort: "submit", dir: "desc", statuses: [], text: "", ...(msg.query || {}) };
        const top = this.top(q);
        const slice = top.slice(msg.offset, msg.offset + msg.limit);
        const kids = {};
        const children = {};
        const out = [...slice];
        for (const r of slice) {
          const tasks = r.id === "array1" ? [...this.rows.values()].filter((c) => c.parent === r.id).sort((a, b) => a.idx - b.idx) : [];
          const attempts = r.retry_of && this.rows.has(r.retry_of) ? [this.rows.get(r.retry_of)] : [];
          if (tasks.length + attempts.length) kids[r.id] = [tasks.length, attempts.length];
          if ((msg.expanded || []).includes(r.id)) {
            children[r.id] = [...tasks, ...attempts].map((c) => c.id);
            out.push(...tasks, ...attempts);
          }
        }
        this.view = { token: msg.view, req: msg.req, offset: msg.offset, shown: new Set(out.map((r) => r.id)) };
        return { type: "win", view: msg.view, req: msg.req, query: q, offset: msg.offset, limit: msg.limit, ids: slice.map((r) => r.id),
          rows: out, kids, children, total: top.length, counts: this.counts(), full: true };
      },
      tick(changed = [], meta = {}, ended = []) {
        for (const r of changed) this.rows.set(r.id, r);
        this.version++;
        const msg = { type: "tick", seq: Date.now(), meta: { ...state.window.meta, now: Date.now(), ...meta }, counts: this.counts(), views: {} };
        if (ended.length) msg.ended = ended;
        const v = this.view;
        if (v) msg.views[v.token] = { req: v.req, offset: v.offset, rows: changed.filter((r) => v.shown.has(r.id)), total: this.top({ sort: "submit", dir: "desc", statuses: [], text: "" }).length };
        model.emit("msg:custom", msg);
      },
    };
    window.__kernel = kernel;
    const state = {
      _kind: "table", title: "5,000 jobs", selected: "",
      window: { ...kernel.answer({ view: "first", req: null, query: {}, offset: 0, limit: 60 }), meta: { now, updated: now, live: true, interval: 2, stale: [], disk } },
      detail: {},
    };
    kernel.view = null;
    const model = {
      sent: [],
      get: (k) => state[k],
      set: (k, v) => { state[k] = v; },
      save_changes: () => {},
      send: (msg) => {
        model.sent.push(msg);
        if (msg && msg.type === "window") setTimeout(() => model.emit("msg:custom", kernel.answer(msg)), 5);
      },
      on: (ev, fn) => { (listeners[ev] ||= []).push(fn); },
      off: (ev, fn) => { listeners[ev] = (listeners[ev] || []).filter((f) => f !== fn); },
      emit: (ev, ...args) => (listeners[ev] || []).forEach((fn) => fn(...args)),
    };
    const listeners = {};
    window.__model = model;
    window.__state = state;
    const el = document.getElementById("host");
    const t0 = performance.now();
    widget.render({ model, el });
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    await new Promise((r) => setTimeout(r, 100)); // the view's own window
    const renderMs = performance.now() - t0;
    return { renderMs };
  }, bundle);

  const domRows = await page.locator(".cj-row[data-job-id]").count();
  check("5,000 jobs render fast", timings.renderMs < 1500, `${timings.renderMs.toFixed(0)} ms`);
  check("only the visible rows are in the DOM", domRows > 5 && domRows < 80, `${domRows} row elements`);
  const footer = await page.locator(".cj-footer").textContent();
  // job04001 is a retry of job04000: the two attempts are one job (5,000 jobs + the array's row - 1).
  check("footer counts every job (attempts of one job once)", /^5,000 jobs/.test(footer || ""), footer);
  const chipAll = await page.locator('.cj-chip[data-status="all"]').textContent();
  check("status chips count logical jobs", /5,000/.test(chipAll || ""), chipAll);
  const fit = await page.evaluate(async () => {
    const host = document.getElementById("host");
    host.style.width = "1000px";
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    const vp = document.querySelector(".cj-viewport");
    const cols = [...document.querySelectorAll(".cj-header .cj-hcell")].map((c) => c.getAttribute("data-col"));
    const mids = [...document.querySelectorAll(".cj-toolbar > *, .cj-toolbar-right > *")].map((e) => { const r = e.getBoundingClientRect(); return (r.top + r.bottom) / 2; });
    const search = document.querySelector(".cj-search").getBoundingClientRect();
    const result = { scroll: vp.scrollWidth, client: vp.clientWidth, cols, chips: document.querySelectorAll(".cj-chip").length,
      oneLine: Math.max(...mids) - Math.min(...mids) <= 8, searchIn: search.width >= 100 && search.right <= host.getBoundingClientRect().right + 1 };
    host.style.width = "";
    return result;
  });
  check("the default view fits 1,000 px without sideways scrolling", fit.scroll <= fit.client &&
    JSON.stringify(fit.cols) === JSON.stringify(["id", "name", "type", "status", "progress", "runtime", "end"]), JSON.stringify(fit));
  // Seen on main: the toolbar wrapped once ~6 chips appeared, pushing the filter to a second line.
  check("7 status chips: the toolbar stays on one line with the filter in view", fit.chips === 7 && fit.oneLine && fit.searchIn, JSON.stringify(fit));

  // Scroll to the bottom: the kernel is asked for the last rows; still only a window of them.
  const scrollMs = await page.evaluate(async () => {
    const vp = document.querySelector(".cj-viewport");
    const t = performance.now();
    vp.scrollTop = vp.scrollHeight;
    for (let i = 0; i < 100 && !document.querySelector(".cj-row[data-job-id='job00000']"); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
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

  // Array tasks: listed under their array's row, which expands (the kernel sends the tasks).
  await page.locator(".cj-search").fill("array1");
  await onlyRow("array1");
  const groupRows = await page.locator(".cj-row[data-job-id='array1'] .cj-expander").count();
  await page.locator(".cj-row[data-job-id='array1'] .cj-expander").first().click();
  await page.waitForFunction(() => document.querySelectorAll(".cj-row.cj-child").length === 10, null, { timeout: 3000 }).catch(() => {});
  const children = await page.locator(".cj-row.cj-child").count();
  check("array tasks grouped under their parent, expandable", groupRows === 1 && children === 10, `${groupRows} group, ${children} tasks`);
  await page.locator(".cj-search").fill("");
  await page.waitForTimeout(300);

  // A tick of one row (what the kernel sends) updates the table.
  await page.locator(".cj-search").fill("sample 4989");
  await onlyRow("job04989");
  await page.evaluate(() => {
    const k = window.__kernel;
    const row = { ...k.rows.get("job04989"), status: "failed", reason: "exit code 3", exit: 3, end: Date.now(),
      pct: 35, err: "Error in readRDS(file): cannot open" };
    k.tick([row], {}, [row]);
  });
  const status = await page.locator(".cj-row [data-col='status'] .cj-badge").first().textContent();
  check("a one-row diff updates the view", status === "failed", status);
  // Seen on main: a failed job's bar stayed blue at 35 % and its row said only "exit code 3".
  const failedLook = await page.evaluate(() => {
    const row = document.querySelector(".cj-row[data-job-id='job04989']");
    const fill = row.querySelector(".cj-bar.cj-bar-failed .cj-bar-fill");
    return { fill: fill ? getComputedStyle(fill).backgroundColor : null, width: fill ? fill.style.width : null,
      why: row.querySelector(".cj-why")?.textContent || "" };
  });
  check("a failed job: a red bar where it stopped and its error line in the row",
    failedLook.fill === "rgb(220, 38, 38)" && failedLook.width === "35%" && failedLook.why === "exit 3 · Error in readRDS(file): cannot open",
    JSON.stringify(failedLook));
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
    window.__kernel.tick([], { stale: [{ scheduler: "slurm", error: "`squeue` did not answer within 30 s", last_success: Date.now() - 95000 }] });
  });
  await page.waitForTimeout(100);
  const staleText = await page.locator(".cj-stale").textContent();
  check("stale warning with the poll error", (await page.locator(".cj-stale").isVisible()) && /squeue. did not answer/.test(staleText) && /1 min ago/.test(staleText), staleText);
  await page.locator(".cj-search").fill("");
  await page.waitForTimeout(300);

  // The column chooser: more columns on demand; id and name stay pinned when the view scrolls sideways.
  await page.locator(".cj-colsbtn").click();
  for (const key of ["attempt", "cpu", "rss", "peak", "ceff", "meff", "reason", "res", "submit", "start", "exit", "scheduler"]) {
    await page.locator(`.cj-colpanel input[data-col='${key}']`).check();
  }
  await page.locator(".cj-colsbtn").click();
  const pinned = await page.evaluate(async () => {
    const vp = document.querySelector(".cj-viewport");
    vp.scrollLeft = 600;
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    const row = document.querySelector(".cj-row[data-job-id]");
    const left = vp.getBoundingClientRect().left;
    const id = row.querySelector("[data-col='id']").getBoundingClientRect();
    const name = row.querySelector("[data-col='name']").getBoundingClientRect();
    const res = { scrolled: vp.scrollLeft, wide: vp.scrollWidth > vp.clientWidth, idLeft: Math.round(id.left - left), nameLeft: Math.round(name.left - id.right) };
    vp.scrollLeft = 0;
    return res;
  });
  check("a wide view scrolls sideways with id and name pinned", pinned.wide && pinned.scrolled > 0 && Math.abs(pinned.idLeft) <= 2 && Math.abs(pinned.nameLeft) <= 2,
    JSON.stringify(pinned));

  // Resource use: numbers in the rows, colour hints on efficiency.
  await page.locator(".cj-search").fill("sample 4980 ");
  await onlyRow("job04980"); // running, i % 12 === 0: low CPU and high memory efficiency
  const usageCells = await page.evaluate(() => {
    const row = document.querySelector(".cj-row[data-job-id='job04980']");
    const get = (k) => row.querySelector(`[data-col='${k}']`);
    return { cpu: get("cpu").textContent, rss: get("rss").textContent, peak: get("peak").textContent, ceff: get("ceff").textContent,
      meff: get("meff").textContent, ceffLow: get("ceff").classList.contains("cj-eff-low"), meffHigh: get("meff").classList.contains("cj-eff-high") };
  });
  check("running job shows CPU %, memory, peak and efficiency with hints",
    usageCells.cpu === "730%" && usageCells.rss === "1.2G" && usageCells.peak === "3G" && usageCells.ceff === "10%" && usageCells.meff === "95%" &&
    usageCells.ceffLow && usageCells.meffHigh, JSON.stringify(usageCells));
  const diskText = await page.locator(".cj-disk").textContent();
  const diskLow = await page.locator(".cj-disk.cj-disk-low").count();
  check("disk usage in the footer, warning under 10% free", /^Disk: data 1\.2T · resources 300G · results 80G · free 40G of 2T \(2%\)$/.test(diskText || "") && diskLow === 1, diskText);

  // Attempt n/m and a retry countdown that ticks in the browser.
  await page.locator(".cj-search").fill("sample 4001 ");
  await onlyRow("job04001");
  const attemptCell = await page.locator(".cj-row [data-col='attempt']").textContent();
  const cd1 = await page.locator(".cj-row [data-col='status'] .cj-countdown").textContent();
  await page.waitForTimeout(2100);
  const cd2 = await page.locator(".cj-row [data-col='status'] .cj-countdown").textContent();
  const n = (t) => Number((/retry in (\d+) s/.exec(t || "") || [])[1]);
  const reasonCell = await page.locator(".cj-row [data-col='reason']").textContent();
  check("attempt n/m and 'retry in N s' ticking", attemptCell === "2/4" && n(cd1) >= 10 && n(cd1) <= 55 && n(cd2) <= n(cd1) - 2 &&
    /attempt 1 oom/.test(reasonCell || ""), `${attemptCell}; ${cd1} -> ${cd2}; ${reasonCell}`);

  // The selected job's detail: sparklines built as SVG from its samples (sent for this job only).
  await page.locator(".cj-search").fill("sample 4980 ");
  await onlyRow("job04980");
  await page.locator(".cj-row[data-job-id='job04980'] [data-col='name']").click();
  await page.evaluate(() => {
    const t = Date.now() / 1000;
    window.__state.detail = {
      id: "job04980", status: "running", cpu_percent: 730, rss_bytes: 1.2 * 1024 ** 3, max_rss_bytes: 3 * 1024 ** 3, cpu_seconds: 5000,
      alloc_cpus: 8, req_mem_bytes: 3.1 * 1024 ** 3, cpu_eff: 0.1, mem_eff: 0.95, read_bytes: 5e9, write_bytes: 1e8,
      samples: Array.from({ length: 60 }, (_, i) => [t - 120 + 2 * i, 600 + 10 * Math.sin(i / 5), 1e9 + i * 1e7]),
    };
    window.__model.emit("change:detail");
  });
  const spark = await page.evaluate(() => {
    const svgs = [...document.querySelectorAll(".cj-detail svg.cj-spark")];
    return { count: svgs.length, ns: svgs.every((s) => s.namespaceURI === "http://www.w3.org/2000/svg"),
      points: svgs.map((s) => s.querySelector("polyline").getAttribute("points").split(" ").length),
      text: document.querySelector(".cj-detail")?.textContent || "", high: document.querySelectorAll(".cj-detail .cj-eff-high").length };
  });
  check("selected job's panel: CPU and memory sparklines (SVG), figures, hints",
    spark.count === 2 && spark.ns && spark.points.every((p) => p === 60) && /730% now/.test(spark.text) && /peak 3G/.test(spark.text) &&
    /read 4\.7G/.test(spark.text) && spark.high === 1, JSON.stringify(spark).slice(0, 300));

  // Jobs ending in one tick: one grouped toast. The bell asks for the permission only on a click.
  check("no permission asked before the bell is clicked", await page.evaluate(() => window.__asked) === 0);
  await page.locator(".cj-bell").click();
  await page.waitForFunction(() => document.querySelector(".cj-bell")?.getAttribute("aria-pressed") === "true", null, { timeout: 3000 }).catch(() => {});
  const bellOn = await page.locator(".cj-bell").getAttribute("aria-pressed");
  await page.evaluate(() => {
    document.hasFocus = () => false; // as if the user were in another tab
    const k = window.__kernel;
    const ids = ["job04968", "job04974", "job04962", "job04956", "job04950"]; // running ones
    const ended = ids.map((id, i) => ({ ...k.rows.get(id), status: i === 4 ? "failed" : "completed", end: Date.now(), cpu: undefined, rss: undefined }));
    k.tick(ended, { stale: [] }, ended);
  });
  await page.waitForFunction(() => /6 jobs/.test(document.querySelector(".cj-strip .cj-notice-title")?.textContent || ""), null, { timeout: 3000 }).catch(() => {});
  const strip = await page.evaluate(() => {
    const el = document.querySelector(".cj-strip");
    const vp = document.querySelector(".cj-viewport").getBoundingClientRect();
    return { title: el.querySelector(".cj-notice-title")?.textContent || "", lines: el.querySelectorAll(".cj-notice-title").length,
      above: el.getBoundingClientRect().bottom <= vp.top, show: el.querySelector(".cj-notice-show")?.textContent || "" };
  });
  const notes = await page.evaluate(() => window.__notes);
  // The earlier one-row diff (job04989 failed) and these 5: one line in the strip above the table.
  check("endings aggregated in one strip above the table (no overlay)", strip.lines === 1 && strip.title === "6 jobs ended: 4 completed, 2 failed" &&
    strip.above && /^Show /.test(strip.show), JSON.stringify(strip));
  check("bell: permission asked on click, then a browser notification", bellOn === "true" &&
    (await page.evaluate(() => window.__asked)) === 1 && notes.length === 1 && notes[0].title === "5 jobs ended: 4 completed, 1 failed", JSON.stringify(notes));
  // Sorting and filtering are the kernel's: each change asks it for a window in that order.
  const windowsAsked = () => page.evaluate(() => window.__model.sent.filter((m) => m.type === "window").map((m) => m.query));
  const before = (await windowsAsked()).length;
  await page.locator(".cj-hcell[data-col='name'] button").click();
  await page.locator(".cj-search").fill("oom");
  await page.waitForFunction((n) => window.__model.sent.filter((m) => m.type === "window").length >= n + 2, before, { timeout: 3000 }).catch(() => {});
  const queries = (await windowsAsked()).slice(before);
  check("a sort and a filter are asked of the kernel (a window in that order)",
    queries.some((q) => q.sort === "name") && queries.some((q) => q.sort === "name" && q.text === "oom" && Array.isArray(q.statuses)),
    JSON.stringify(queries));
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
