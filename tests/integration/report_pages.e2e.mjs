// Opens a report of a long table in headless Chromium (network refused) and prints, as one JSON line,
// what a reader sees: the first page, "Show more", a sort by name and a filter.
//   node tests/integration/report_pages.e2e.mjs REPORT.html   (env: CHROMIUM)
import { chromium } from "playwright-core";
import path from "node:path";
import { pathToFileURL } from "node:url";

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium", headless: true, args: ["--no-sandbox"],
});
try {
  const context = await browser.newContext({ offline: true });
  const problems = [];
  await context.route(/^(?!file:)/, (route) => { problems.push(route.request().url()); return route.abort(); });
  const page = await context.newPage();
  page.on("console", (message) => { if (message.type() === "error") problems.push(message.text()); });
  page.on("pageerror", (error) => problems.push(String(error)));
  await page.goto(pathToFileURL(path.resolve(process.argv[2])).href);
  await page.waitForFunction(() => document.body.dataset.tableReady, null, { timeout: 30000 });
  const rows = () => page.locator("#jobs-table tbody tr").count();
  const ids = () => page.locator("#jobs-table tbody tr td:nth-child(1)").allTextContents();
  const names = () => page.locator("#jobs-table tbody tr td:nth-child(2)").allTextContents();
  const count = () => page.locator("#job-count").textContent();
  const more = page.locator("#job-more");
  const seen = { first: { rows: await rows(), count: await count(), more: await more.textContent(), ids: await ids() } };
  await more.click();
  seen.second = { rows: await rows(), count: await count(), more: await more.textContent() };
  await more.click();
  seen.third = { rows: await rows(), hidden: await more.isHidden() };
  await page.locator("th[data-key=name] button").click();
  seen.byName = { rows: await rows(), names: await names() };
  await page.locator("#job-filter").fill("\u{1F600}");
  seen.filtered = { count: await count(), names: await names(), hidden: await more.isHidden() };
  seen.problems = problems;
  console.log(JSON.stringify(seen));
} finally {
  await browser.close();
}
