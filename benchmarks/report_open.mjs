import { chromium } from "playwright-core";
import { pathToFileURL } from "node:url";
// Opens a report in headless Chromium and prints {ms, count, rows, errors}: ms until the table is decoded and shown.
//   node benchmarks/report_open.mjs REPORT.html
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: ["--no-sandbox"] });
const page = await browser.newPage();
const errors = [];
page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
const t0 = Date.now();
await page.goto(pathToFileURL(process.argv[2]).href);
await page.waitForFunction(() => document.body.dataset.tableReady, null, { timeout: 60000 });
const ms = Date.now() - t0;
console.log(JSON.stringify({ ms, count: await page.locator("#job-count").textContent(), rows: await page.locator("#jobs-table tbody tr").count(), errors }));
await browser.close();
