// The same dashboard in other front ends, in Debian's headless Chromium: Jupyter Notebook 7 (run
// all cells), Voila (renders the notebook by itself) and marimo (`mo.ui.anywidget`, runs by itself).
//   FRONT=notebook7|voila|marimo URL=... [SHOT=...] node tests/e2e/front_ends.e2e.mjs
// Checks: the table renders with the jobs; the failed job's status says its exit code and error
// line; a job turns completed while nothing runs (updates from the kernel's poller); no plain-HTML
// copy shows next to the live view; no page errors. Prints "CHECK ok|FAIL name: detail" lines.
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const FRONT = process.env.FRONT;
const URL_ = process.env.URL;
const SHOT = process.env.SHOT || `test-output/front-${FRONT}.png`;
const results = [];
const t0 = Date.now();
const check = (name, ok, detail = "") => {
  results.push(Boolean(ok));
  console.log(`CHECK ${ok ? "ok" : "FAIL"} ${FRONT}: ${name}${detail ? `: ${detail}` : ""} [${((Date.now() - t0) / 1000).toFixed(1)}s]`);
};
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "celline-front-chrome-"));
const ctx = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium", headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
  viewport: { width: 1280, height: 900 },
});
const errors = [];
let page;
try {
  page = ctx.pages()[0] || (await ctx.newPage());
  page.on("pageerror", (e) => errors.push(`${e}\n${(e.stack || "").split("\n").slice(1, 4).join("\n")}`));
  // marimo puts each anywidget in a shadow root: queries here look inside open shadow roots too.
  await page.addInitScript(() => {
    window.__deep = (selector) => {
      const out = [];
      const walk = (root) => {
        out.push(...root.querySelectorAll(selector));
        for (const el of root.querySelectorAll("*")) if (el.shadowRoot) walk(el.shadowRoot);
      };
      walk(document);
      return out;
    };
  });
  page.on("dialog", (d) => d.dismiss().catch(() => {}));
  await page.goto(URL_, { waitUntil: "domcontentloaded", timeout: 60000 });
  if (FRONT === "notebook7") {
    await page.waitForFunction(() => {
      const s = document.querySelector(".jp-Notebook-ExecutionIndicator");
      const k = document.querySelector(".jp-KernelName, [data-jp-item-name='kernelName']");
      return s && s.getAttribute("data-status") === "idle" && k && /python/i.test(k.textContent || "");
    }, null, { timeout: 60000 });
    await page.locator(".lm-MenuBar-item", { hasText: /^Run$/ }).click();
    await page.locator(".lm-Menu-item", { hasText: /^Run All Cells$/ }).click();
  }
  const table = page.locator(".cj-jobtable").first();
  await table.waitFor({ state: "visible", timeout: 60000 });
  await page.waitForFunction(() => window.__deep(".cj-jobtable .cj-row[data-job-id]").length >= 3, null, { timeout: 30000 }).catch(() => {});
  const rowsNow = await page.locator(".cj-jobtable .cj-row[data-job-id]").count();
  check("the table renders the jobs", rowsNow === 3, `${rowsNow} rows`);
  const statusOf = (name) => page.evaluate((n) => {
    const row = window.__deep(".cj-jobtable .cj-row[data-job-id]").find((r) => r.querySelector('[data-col="name"] .cj-name')?.textContent === n);
    return row ? { status: row.querySelector(".cj-badge")?.textContent, why: row.querySelector(".cj-why")?.textContent || "" } : null;
  }, name);
  const first = await statusOf("Slow count");
  // The slow job runs a few seconds after the page shows it: it must turn completed with nothing running.
  await page.waitForFunction(() => window.__deep(".cj-jobtable .cj-row[data-job-id]")
    .some((r) => r.querySelector('[data-col="name"] .cj-name')?.textContent === "Slow count" && r.querySelector(".cj-badge")?.textContent === "completed"),
  null, { timeout: 40000 }).catch(() => {});
  const last = await statusOf("Slow count");
  check("a job turns completed by itself (updates from the kernel)", first && first.status !== "completed" && last && last.status === "completed",
    `${first && first.status} -> ${last && last.status}`);
  await page.waitForFunction(() => window.__deep(".cj-jobtable .cj-row[data-job-id]")
    .some((r) => /Error in readRDS/.test(r.querySelector(".cj-why")?.textContent || "")), null, { timeout: 20000 }).catch(() => {});
  const failed = await statusOf("Predict cell types");
  check("the failed job says its exit code and error line", failed && failed.status === "failed" &&
    /^exit 3 · Error in readRDS\(file\): cannot open ref\.rds$/.test(failed.why), JSON.stringify(failed));
  const copies = await page.evaluate(() => window.__deep(".celline-jobs-fallback")
    .filter((c) => c.getBoundingClientRect().height > 0).length);
  check("no plain-HTML copy next to the live view", copies === 0, `${copies} shown`);
  const fits = await page.evaluate(() => { const vp = window.__deep(".cj-jobtable .cj-viewport")[0]; return vp.scrollWidth - vp.clientWidth; });
  check("no sideways scroll at 1280 px", fits <= 0, `${fits}px`);
  // Notebook 7.6 itself throws once while loading a settings schema (seen with no extension of ours
  // involved); only errors from elsewhere count.
  const ours = errors.filter((e) => !/TypeError: Cannot read properties of undefined \(reading 'schema'\)\n\s+at \S+\/static\/notebook\/notebook_core/.test(e));
  if (ours.length !== errors.length) console.log(`  (ignored ${errors.length - ours.length} error(s) thrown by Notebook's own code)`);
  check("no page errors", ours.length === 0, ours.join("; ").slice(0, 400));
} catch (error) {
  check("driver ran to the end", false, String(error && error.stack ? error.stack : error).slice(0, 800));
} finally {
  if (page) {
    fs.mkdirSync(path.dirname(SHOT), { recursive: true });
    await page.screenshot({ path: SHOT }).catch(() => {});
  }
  await ctx.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
const failedCount = results.filter((ok) => !ok).length;
console.log(`${results.length - failedCount} passed, ${failedCount} failed`);
process.exit(failedCount ? 1 : 0);
