// Hostile job text in the shipped widget bundle, in headless Chromium: rows made by the package's
// own row formatter (tests/e2e/test_hostile_widget.py writes them to ROWS) with names, reasons,
// stages and commands full of HTML, script, ANSI escapes, newlines and very long strings. Every
// string must show as the same characters, nothing may be parsed as markup, no dialog may open.
//   ROWS=rows.json node tests/e2e/hostile.e2e.mjs   (env: CHROMIUM)
import { chromium } from "playwright-core";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const bundle = fs.readFileSync(path.join(root, "celline_jobs_nb", "widgets", "static", "widget.js"), "utf8");
const css = fs.readFileSync(path.join(root, "celline_jobs_nb", "widgets", "static", "widget.css"), "utf8");
const rows = JSON.parse(fs.readFileSync(process.env.ROWS, "utf8"));
let failed = 0;
const check = (name, ok, detail = "") => {
  if (!ok) failed++;
  console.log(`CHECK ${ok ? "ok" : "FAIL"} ${name}${detail ? `: ${detail}` : ""}`);
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
  const dialogs = [];
  page.on("dialog", async (d) => { dialogs.push(d.message()); await d.dismiss(); });
  await page.setContent(`<!doctype html><html><head><style>${css}</style></head><body><div id="host"></div></body></html>`);
  await page.evaluate(async ({ src, rows }) => {
    window.__pwned = 0;
    const url = URL.createObjectURL(new Blob([src], { type: "text/javascript" }));
    const widget = (await import(url)).default;
    const now = Date.now();
    const meta = { now, updated: now, live: true, interval: 2, stale: [] };
    const state = { _kind: "table", title: "hostile", selected: "", detail: {},
                    window: { offset: 0, ids: rows.map((r) => r.id), rows, total: rows.length, counts: { failed: rows.length }, meta } };
    const listeners = {};
    const model = {
      get: (k) => state[k], set: (k, v) => { state[k] = v; }, save_changes: () => {}, send: () => {},
      on: (ev, fn) => { (listeners[ev] ||= []).push(fn); }, off: () => {},
    };
    widget.render({ model, el: document.getElementById("host") });
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  }, { src: bundle, rows });
  await page.waitForTimeout(500); // an injected onerror or script would have run by now
  const host = page.locator("#host");
  check("no element was made from job text", (await host.locator("img, script, iframe, b, svg[onload]").count()) === 0);
  check("no dialog opened", dialogs.length === 0, dialogs.join(" | "));
  check("nothing ran", (await page.evaluate(() => window.__pwned)) === 0);
  const text = await host.evaluate((el) => el.textContent);
  for (const row of rows) {
    const shown = row.name.replace(/\s+/g, " ").slice(0, 40);
    const flat = text.replace(/\s+/g, " ");
    check(`name shown as text: ${JSON.stringify(row.name.slice(0, 30))}`, flat.includes(shown));
  }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
