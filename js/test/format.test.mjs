import { test } from "node:test";
import assert from "node:assert/strict";
import {
  formatDuration, formatTime, formatTimeFull, formatAgo, runtimeSeconds, runtimeText, etaSeconds, formatPercent, exitText, formatCount,
} from "../src/format.js";

test("formatDuration matches the Python snapshot's forms", () => {
  assert.equal(formatDuration(0), "0s");
  assert.equal(formatDuration(45.9), "45s");
  assert.equal(formatDuration(185), "3m 05s");
  assert.equal(formatDuration(3720), "1h 02m");
  assert.equal(formatDuration(2 * 86400 + 3 * 3600), "2d 03h");
  assert.equal(formatDuration(-5), "0s");
  assert.equal(formatDuration(null), "");
  assert.equal(formatDuration(NaN), "");
});

test("formatTime shows local clock time today, the date otherwise", () => {
  const now = new Date(2026, 10, 28, 15, 0, 0).getTime();
  assert.equal(formatTime(new Date(2026, 10, 28, 14, 3, 7).getTime(), now), "14:03:07");
  assert.equal(formatTime(new Date(2026, 10, 27, 9, 5, 0).getTime(), now), "2026-11-27 09:05");
  assert.equal(formatTime(undefined, now), "");
  assert.equal(formatTimeFull(new Date(2026, 0, 2, 3, 4, 5).getTime()), "2026-01-02 03:04:05");
});

test("formatAgo", () => {
  assert.equal(formatAgo(0.4), "just now");
  assert.equal(formatAgo(3), "3 s ago");
  assert.equal(formatAgo(125), "2 min ago");
  assert.equal(formatAgo(7200), "2 h ago");
  assert.equal(formatAgo(3 * 86400), "3 d ago");
});

test("runtime: end - start, or now - start while running", () => {
  assert.equal(runtimeSeconds({ status: "running", start: 1000 }, 11000), 10);
  assert.equal(runtimeSeconds({ status: "completed", start: 1000, end: 4000 }, 99999), 3);
  assert.equal(runtimeSeconds({ status: "failed", start: 1000 }, 99999), null); // ended without an end time
  assert.equal(runtimeSeconds({ status: "pending" }, 5000), null);
  assert.equal(runtimeText({ status: "running", start: 0 }, 65000), "1m 05s");
});

test("ETA extrapolates from progress", () => {
  // 25% after 100 s -> 300 s left at the time of the update; 10 s later 290 s.
  assert.equal(etaSeconds(25, 0, 100000, 100000), 300);
  assert.equal(etaSeconds(25, 0, 100000, 110000), 290);
  assert.equal(etaSeconds(0, 0, 100000, 100000), null);
  assert.equal(etaSeconds(100, 0, 100000, 100000), null);
  assert.equal(etaSeconds(null, 0, 100000, 100000), null);
  assert.equal(etaSeconds(50, 0, 10000, 1e9), 0); // never negative
});

test("percent, exit code, counts", () => {
  assert.equal(formatPercent(42.345), "42.3%");
  assert.equal(formatPercent(undefined), "");
  assert.equal(exitText({ exit: 3 }), "3");
  assert.equal(exitText({ sig: 9 }), "sig 9");
  assert.equal(exitText({}), "");
  assert.equal(formatCount(5000), "5,000");
});

test("ETA: '—' when a job went quiet or the estimate ran out (never 'ETA 0s')", async () => {
  const { etaText } = await import("../src/format.js");
  assert.equal(etaText(25, 0, 100000, 100000), "ETA 5m 00s");
  // Seen on main: 10 % reported at 10 s, nothing since; at 200 s it said "ETA 0s".
  assert.equal(etaText(10, 0, 10000, 200000), "ETA —");
  // Quiet for long compared with its pace: unknown, even if the linear estimate has time left.
  assert.equal(etaText(50, 0, 1000000, 1000000 + 3 * 20000 * 50 + 1), "ETA —");
  assert.equal(etaText(50, 0, 1000000, 1000000 + 30000), "ETA 16m 10s");
  assert.equal(etaText(null, 0, 1000, 2000), "");
});
