import { chromium } from "playwright-core";
import { pathToFileURL } from "node:url";
// Opens a report in headless Chromium RUNS times (a fresh page each, the browser started once) and
// prints {ms: [...], count, rows, errors, sortName, sortRun, filter}: ms from navigation to the table
// decoded and its first rows shown; then, on the last page, how long a sort by name, a sort by run
// time and a filter take until the table shows their rows.
//   node benchmarks/report_open.mjs REPORT.html [RUNS]   (env: CHROMIUM)
const runs = Number(process.argv[3] || 1);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium", headless: true, args: ["--no-sandbox"],
});
const errors = [];
const ms = [];
let page;
try {
  for (let i = 0; i < runs; i++) {
    if (page) await page.close();
    page = await browser.newPage();
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    page.on("pageerror", (e) => errors.push(String(e)));
    const t0 = Date.now();
    await page.goto(pathToFileURL(process.argv[2]).href);
    await page.waitForFunction(() => document.body.dataset.tableReady, null, { timeout: 300000, polling: 10 });
    ms.push(Date.now() - t0);
  }
  const timed = async (action, done) => {
    const t0 = Date.now();
    await action();
    await page.waitForFunction(done, null, { timeout: 300000, polling: 10 });
    return Date.now() - t0;
  };
  const result = {
    ms, count: await page.locator("#job-count").textContent(), rows: await page.locator("#jobs-table tbody tr").count(),
  };
  result.sortName = await timed(() => page.locator("th[data-key=name] button").click(),
    () => document.querySelector("th[data-key=name]").getAttribute("aria-sort") === "ascending");
  result.sortRun = await timed(() => page.locator("th[data-key=run] button").click(),
    () => document.querySelector("th[data-key=run]").getAttribute("aria-sort") === "ascending");
  // The input handler renders synchronously: the table is done when fill returns.
  result.filter = await timed(() => page.locator("#job-filter").fill("failed"), () => true);
  result.filterCount = await page.locator("#job-count").textContent();
  result.errors = errors;
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
