// Drives the standalone page (/celline-jobs/?project=P) and the JS JobAPI client in headless Chromium:
//   node tests/e2e/jobapi_page.e2e.mjs URL RUNNING_ID DONE_ID   (env: CHROMIUM, SHOT)  -> one JSON line
import { chromium } from "playwright-core";

const [url, runningId, doneId] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
});
const out = { errors: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("pageerror", (e) => out.errors.push(String(e)));
  page.on("dialog", (d) => { out.errors.push(`dialog: ${d.message()}`); d.dismiss(); });
  await page.goto(url, { waitUntil: "load" });
  await page.waitForSelector(".cj-page-row", { timeout: 20000 });
  await page.waitForFunction(() => document.querySelector(".cj-page-conn")?.dataset.state === "live", null, { timeout: 20000 });
  const rows = () => page.evaluate(() => [...document.querySelectorAll(".cj-page-row")].map((tr) => ({
    id: tr.dataset.jobId, name: tr.querySelector(".cj-page-name").textContent,
    status: tr.querySelector(".cj-badge").textContent,
  })));
  out.rows = await rows();
  out.injected = await page.evaluate(() => document.querySelectorAll(".cj-page-table img").length);
  out.chip = await page.evaluate(() => { const c = document.querySelector(".cj-page-archived"); return c.hidden ? null : c.textContent; });

  // the seed's six calls through the JS client, in the page (its cookie, its _xsrf)
  out.client = await page.evaluate(async ([running, done]) => {
    const api = window.cellineJobs.api;
    const r = {};
    r.list = (await api.listJobs()).length;
    r.listCompleted = (await api.listJobs("completed")).map((j) => j.status);
    r.get = (await api.getJob(done)).status;
    r.progress = Object.keys(await api.getProgress(done)).sort();
    r.logs = await new Promise((resolve) => {
      const ws = api.streamLogs(done);
      const msgs = [];
      ws.onmessage = (e) => msgs.push(JSON.parse(e.data));
      ws.onclose = () => resolve({ text: msgs.filter((m) => m.type === "log").map((m) => m.text).join(""), last: msgs.at(-1)?.type });
    });
    try {
      await api.getJob("NOSUCHJOB");
    } catch (e) {
      r.missing = [e.name, e.status];
    }
    r.cancel = await api.cancelJob(running);
    r.retry = await api.retryJob(running, "mem=1G");
    r.retried = (await api.getJob(r.retry)).retry_of;
    r.cancelRetry = await api.cancelJob(r.retry);
    return r;
  }, [runningId, doneId]);

  // the table follows the events socket: the cancelled job shows it without a reload
  await page.waitForFunction((id) => document.querySelector(`.cj-page-row[data-job-id="${id}"] .cj-badge`)?.textContent === "cancelled",
    runningId, { timeout: 20000 });
  out.afterCancel = (await rows()).find((r) => r.id === runningId)?.status;

  // a click on a row follows its log in the dashboard's own log view
  await page.click(`.cj-page-row[data-job-id="${doneId}"]`);
  await page.waitForFunction(() => [...document.querySelectorAll(".cj-log-line")].some((l) => l.textContent.includes("hello")), null, { timeout: 20000 });
  out.logLines = await page.evaluate(() => [...document.querySelectorAll(".cj-log-body .cj-log-line")].map((l) => l.textContent).filter(Boolean));

  // archived jobs are hidden until the chip shows them
  if (out.chip) {
    const before = (await rows()).length;
    await page.click(".cj-page-archived");
    out.archivedShown = (await rows()).length - before;
  }
  if (process.env.SHOT) await page.screenshot({ path: process.env.SHOT, fullPage: true });
} catch (e) {
  out.errors.push(String(e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
