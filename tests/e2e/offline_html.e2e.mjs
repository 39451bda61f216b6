// Opens an HTML file (a notebook exported by `jupyter nbconvert --to html`) in headless Chromium
// with every network request refused, as on a laptop offline, and prints what a reader sees:
//   node tests/e2e/offline_html.e2e.mjs FILE.html   (env: CHROMIUM, SHOT)  -> one JSON line
import { chromium } from "playwright-core";
import path from "node:path";

const file = path.resolve(process.argv[2]);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, offline: true });
  const blocked = [];
  await context.route(/^(?!file:)/, (route) => { blocked.push(route.request().url()); return route.abort(); });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`file://${file}`, { waitUntil: "load" });
  await page.waitForTimeout(1500); // time for any script that could still change the page
  const seen = await page.evaluate(() => {
    const visible = (el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== "hidden"; };
    const tables = [...document.querySelectorAll("table.celline-jobs-table")].filter(visible);
    const rows = tables.flatMap((t) => [...t.querySelectorAll("tbody tr")]).map((tr) => ({
      status: tr.getAttribute("data-status"), cells: [...tr.querySelectorAll("td")].map((td) => td.textContent),
    }));
    const summary = [...document.querySelectorAll(".celline-jobs-fallback p")].filter(visible).map((p) => p.textContent);
    return { tables: tables.length, rows, summary, imgs: document.querySelectorAll(".celline-jobs-fallback img").length };
  });
  if (process.env.SHOT) await page.screenshot({ path: process.env.SHOT, fullPage: true });
  console.log(JSON.stringify({ ...seen, blocked: blocked.length, errors }));
} finally {
  await browser.close();
}
