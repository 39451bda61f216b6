// Takes docs/dashboard.png (run by tests/e2e/readme_screenshot.py): the demo project's dashboard
// in real JupyterLab at 1280×900, the file browser closed, the failed job selected (its log below).
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const { JL_URL, JL_TOKEN, SHOT } = process.env;
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "celline-shot-chrome-"));
const ctx = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium", headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
  viewport: { width: 1280, height: 900 },
});
try {
  const page = ctx.pages()[0] || (await ctx.newPage());
  await page.goto(`${JL_URL}/lab/tree/dashboard.ipynb?reset&token=${JL_TOKEN}`, { waitUntil: "domcontentloaded" });
  await page.waitForFunction(() => {
    const k = document.querySelector(".jp-NotebookPanel-toolbar .jp-KernelName, .jp-NotebookPanel-toolbar [data-jp-item-name='kernelName']");
    const s = document.querySelector(".jp-Notebook-ExecutionIndicator");
    return k && /python/i.test(k.textContent || "") && s && s.getAttribute("data-status") === "idle";
  }, null, { timeout: 60000 });
  await page.locator('.jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current').first().click().catch(() => {}); // close the file browser
  await page.click(".jp-NotebookPanel .jp-Cell .jp-InputArea-prompt");
  await page.locator(".lm-MenuBar-item", { hasText: /^Run$/ }).click();
  await page.click('li.lm-Menu-item[data-command="runmenu:run-all"]', { timeout: 10000 });
  await page.locator(".cj-jobtable").first().waitFor({ state: "visible", timeout: 60000 });
  // A moment with every kind of row: done, failed (with its error line), running, waiting.
  await page.waitForFunction(() => [...document.querySelectorAll(".cj-jobtable .cj-why")].some((w) => /Error in readRDS/.test(w.textContent)),
    null, { timeout: 60000 });
  await page.waitForTimeout(3500);
  await page.locator(".cj-jobtable .cj-row", { hasText: "Predict cell types" }).locator('[data-col="name"]').click();
  await page.waitForFunction(() => /readRDS/.test(document.querySelector(".cj-logtail .cj-log-body")?.textContent || ""), null, { timeout: 15000 }).catch(() => {});
  await page.locator(".jp-toast-button", { hasText: /^No$/ }).click({ timeout: 500 }).catch(() => {});
  await page.evaluate(() => {
    const out = document.querySelector(".jp-OutputArea-output .cj-jobtable");
    out.closest(".jp-Cell").scrollIntoView({ block: "start" });
  });
  await page.waitForTimeout(800);
  await page.screenshot({ path: SHOT });
  console.log(`wrote ${SHOT}`);
} finally {
  await ctx.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
