import { test, mock } from "node:test";
import assert from "node:assert/strict";
import { createTicker } from "../src/ticker.js";
import { runtimeText } from "../src/format.js";

test("the runtime advances every second with no kernel message", () => {
  mock.timers.enable({ apis: ["setInterval", "Date"], now: 10_000 });
  try {
    const row = { status: "running", start: 0 };
    const seen = [];
    const ticker = createTicker((now) => seen.push(runtimeText(row, now))).start();
    assert.equal(ticker.running, true);
    mock.timers.tick(1000);
    mock.timers.tick(1000);
    mock.timers.tick(1000);
    assert.deepEqual(seen, ["11s", "12s", "13s"]);
    ticker.stop();
    mock.timers.tick(5000);
    assert.equal(seen.length, 3);
    assert.equal(ticker.running, false);
  } finally {
    mock.timers.reset();
  }
});

test("start is idempotent", () => {
  let calls = 0;
  const fake = { setInterval: () => { calls++; return 1; }, clearInterval: () => {} };
  const t = createTicker(() => {}, { timers: fake });
  t.start();
  t.start();
  assert.equal(calls, 1);
  t.stop();
});
