import { test } from "node:test";
import assert from "node:assert/strict";
import {
  formatBytes, formatCpu, formatEff, effHint, effTitle, attemptText, attemptTitle, retryCountdown, formatCountdown,
  sparkPoints, sampleSeries, diskSummary, MEM_EFF_HIGH, CPU_EFF_LOW,
} from "../src/usage.js";

test("formatBytes: powers of 1024, the same forms as the Python snapshot", () => {
  assert.equal(formatBytes(0), "0B");
  assert.equal(formatBytes(512), "512B");
  assert.equal(formatBytes(1023), "1023B");
  assert.equal(formatBytes(1024), "1K");
  assert.equal(formatBytes(1536), "1.5K");
  assert.equal(formatBytes(10 * 1024), "10K");
  assert.equal(formatBytes(1023.6 * 1024), "1M"); // never "1024K"
  assert.equal(formatBytes(350 * 1024 ** 2), "350M");
  assert.equal(formatBytes(1.2 * 1024 ** 3), "1.2G");
  assert.equal(formatBytes(4 * 1024 ** 3), "4G");
  assert.equal(formatBytes(9.96 * 1024 ** 3), "10G");
  assert.equal(formatBytes(3 * 1024 ** 4), "3T");
  assert.equal(formatBytes(-5), "0B");
  assert.equal(formatBytes(undefined), "");
  assert.equal(formatBytes(NaN), "");
  assert.equal(formatBytes("12"), "");
});

test("CPU and efficiency numbers, colour hints at the documented thresholds", () => {
  assert.equal(formatCpu(187.4), "187%");
  assert.equal(formatCpu(0), "0%");
  assert.equal(formatCpu(undefined), "");
  assert.equal(formatEff(43.5), "44%");
  assert.equal(MEM_EFF_HIGH, 90);
  assert.equal(CPU_EFF_LOW, 25);
  assert.equal(effHint("mem", 91), "high");
  assert.equal(effHint("mem", 90), "");
  assert.equal(effHint("mem", 10), "");
  assert.equal(effHint("cpu", 24), "low");
  assert.equal(effHint("cpu", 25), "");
  assert.equal(effHint("cpu", 300), "");
  assert.equal(effHint("cpu", undefined), "");
  assert.match(effTitle("mem", 95, { peak: 3 * 1024 ** 3 }), /peak 3G.*close to the request/);
  assert.match(effTitle("cpu", 10), /little of the CPUs/);
  assert.match(effTitle("cpu", undefined), /not measured/);
});

test("attempt n/m with a retry policy, n alone after a manual retry", () => {
  assert.equal(attemptText({}), "");
  assert.equal(attemptText({ maxatt: 4 }), "1/4");
  assert.equal(attemptText({ attempt: 2, maxatt: 4 }), "2/4");
  assert.equal(attemptText({ attempt: 3 }), "3");
  assert.equal(attemptText({ attempt: 1 }), "");
  const title = attemptTitle({ attempt: 2, maxatt: 4, retry_of: "a1", rreason: "attempt 1 oom: out of memory", rby: "a3" });
  assert.match(title, /attempt 2 of at most 4/);
  assert.match(title, /retry of a1/);
  assert.match(title, /why: attempt 1 oom/);
  assert.match(title, /retried as a3/);
});

test("a retry in its backoff counts down in the browser", () => {
  const now = 1_000_000;
  const row = { id: "r", status: "pending", nb: now + 12_000 };
  assert.deepEqual(retryCountdown(row, now), { text: "retry in 12 s", due: false });
  assert.deepEqual(retryCountdown(row, now + 2_500), { text: "retry in 10 s", due: false });
  assert.deepEqual(retryCountdown(row, now + 11_200), { text: "retry in 1 s", due: false });
  assert.equal(retryCountdown(row, now + 12_000).due, true);
  assert.match(retryCountdown({ ...row, nb: now + 185_000 }, now).text, /^retry in 3m 05s$/);
  assert.equal(retryCountdown({ ...row, status: "running" }, now), null);
  assert.equal(retryCountdown({ id: "x", status: "pending" }, now), null);
  assert.equal(formatCountdown(0.2), "1 s");
});

test("sparkline points: scaled into the box, nulls skipped, flat series", () => {
  const geo = sparkPoints([0, 50, 100], 102, 22, { pad: 1 });
  assert.equal(geo.points, "1,21 51,11 101,1");
  assert.equal(geo.count, 3);
  assert.equal(geo.last, 100);
  const gaps = sparkPoints([10, null, 30], 100, 20, { pad: 0 });
  assert.equal(gaps.points.split(" ").length, 2);
  assert.equal(sparkPoints([5], 100, 20).points, "");
  assert.equal(sparkPoints([], 100, 20).points, "");
  const flat = sparkPoints([0, 0, 0], 100, 20, { pad: 0 });
  assert.equal(flat.points, "0,20 50,20 100,20");
  // A fixed maximum clips larger values to the top.
  assert.equal(sparkPoints([0, 200], 10, 10, { max: 100, pad: 0 }).points, "0,10 10,0");
  // Only numbers reach the attribute: nothing a job could inject.
  assert.match(geo.points, /^[0-9., ]+$/);
});

test("sample series from [[t, cpu, rss], ...]", () => {
  const s = sampleSeries([[100, 50, 1000], [102, null, 2000], ["x", 20, "y"], "junk", [160, 10, 4000]]);
  assert.deepEqual(s.cpu, [50, null, 20, 10]);
  assert.deepEqual(s.rss, [1000, 2000, null, 4000]);
  assert.equal(s.span, 60);
  assert.deepEqual(sampleSeries(undefined), { cpu: [], rss: [], span: 0 });
});

test("disk usage line, warning under 10% free", () => {
  const G = 1024 ** 3;
  const ok = diskSummary({ folders: [["data", 1.2 * G], ["resources", 300 * 1024 ** 2], ["results", 4 * G]], free: 120 * G, total: 500 * G });
  assert.equal(ok.text, "data 1.2G · resources 300M · results 4G · free 120G of 500G (24%)");
  assert.equal(ok.low, false);
  const low = diskSummary({ folders: [], free: 9 * G, total: 100 * G });
  assert.equal(low.low, true);
  assert.equal(low.text, "free 9G of 100G (9%)");
  assert.equal(diskSummary({ folders: [], free: 10 * G, total: 100 * G }).low, false);
  assert.equal(diskSummary(null), null);
  assert.equal(diskSummary({}), null);
  assert.equal(diskSummary({ folders: [["<b>x</b>", 1]] }).text, "<b>x</b> 1B"); // text, rendered with textContent
});
