// Opens the offline HTML report in headless Chromium with every network request refused, sorts and
// filters its table as a reader would, and prints what it saw as one JSON line:
//   node tests/integration/report_offline.e2e.mjs REPORT.html   (env: CHROMIUM)
import { chromium } from "playwright-core";
import path from "node:path";
import { pathToFileURL } from "node:url";

const url = pathToFileURL(path.resolve(process.argv[2])).href;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
try {
  const context = await browser.newContext({ offline: true });
  const requests = [];
  const problems = [];
  await context.route(/^(?!file:)/, (route) => { requests.push(route.request().url()); return route.abort(); });
  const page = await context.newPage();
  page.on("request", (request) => requests.push(request.url()));
  page.on("dialog", (dialog) => { problems.push(`dialog: ${dialog.message()}`); return dialog.dismiss(); });
  page.on("console", (message) => { if (message.type() === "error") problems.push(message.text()); });
  page.on("pageerror", (error) => problems.push(String(error)));
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.tableReady, null, { timeout: 10000 }); // decoded

  const column = async (key) => {
    const keys = await page.locator("#jobs-table th").evaluateAll((ths) => ths.map((th) => th.getAttribute("data-key")));
    return page.locator(`#jobs-table tbody tr td:nth-child(${keys.indexOf(key) + 1})`).allTextContents();
  };
  const aria = (key) => page.locator(`th[data-key=${key}]`).getAttribute("aria-sort");
  const seen = {
    rows: await page.locator("#jobs-table tbody tr").count(),
    count: await page.locator("#job-count").textContent(),
    submitSort: await aria("submit"),
  };
  await page.locator("th[data-key=name] button").click();
  seen.nameAscending = { sort: await aria("name"), names: await column("name") };
  await page.locator("th[data-key=name] button").click();
  seen.nameDescending = { sort: await aria("name"), names: await column("name") };
  seen.imgs = await page.locator("img").count();
  seen.scripts = await page.locator("script").count();
  await page.locator("th[data-key=run] button").click();
  seen.byRun = { ids: await column("id"), submitSort: await aria("submit") };
  const failed = page.locator("#jobs-table tbody tr[data-status=failed]");
  seen.failedRows = await failed.count();
  seen.failedText = await failed.first().textContent();
  await page.locator("#job-filter").fill("onerror");
  seen.filteredCount = await page.locator("#job-count").textContent();
  seen.timelineRects = await page.locator("#timeline svg rect[data-status]").count();
  seen.failedLogs = await page.locator("#failed article pre").count();
  seen.requests = requests;
  seen.problems = problems;
  console.log(JSON.stringify(seen));
} finally {
  await browser.close();
}
