import { test } from "node:test";
import assert from "node:assert/strict";
import { isEnding, summarizeEnded, notificationSupport } from "../src/notify.js";
import { RowStore } from "../src/rows.js";

test("isEnding: a move to completed/failed/cancelled, or a new row already ended", () => {
  assert.equal(isEnding({ status: "running" }, { status: "completed" }), true);
  assert.equal(isEnding({ status: "pending" }, { status: "cancelled" }), true);
  assert.equal(isEnding(undefined, { status: "failed" }), true);
  assert.equal(isEnding({ status: "failed" }, { status: "failed", rby: "x" }), false);
  assert.equal(isEnding({ status: "queued" }, { status: "running" }), false);
  assert.equal(isEnding(undefined, { status: "pending" }), false);
});

test("one job: its name and status; failures say why", () => {
  const one = summarizeEnded([{ id: "a1", name: "Count S1", status: "completed" }]);
  assert.equal(one.title, "Count S1 completed");
  assert.equal(one.body, "");
  assert.equal(one.level, "ok");
  assert.equal(one.jobId, "a1");
  const failed = summarizeEnded([{ id: "a2", name: "Predict", status: "failed", reason: "exit code 3" }]);
  assert.equal(failed.title, "Predict failed");
  assert.equal(failed.body, "exit code 3");
  assert.equal(failed.level, "error");
  assert.equal(summarizeEnded([{ id: "a3", status: "failed", exit: 2 }]).title, "a3 failed");
  assert.equal(summarizeEnded([{ id: "a3", status: "failed", exit: 2 }]).body, "exit code 2");
  assert.equal(summarizeEnded([{ id: "a3", status: "failed", rby: "a4" }]).body, "retried as a4");
  assert.equal(summarizeEnded([{ id: "a5", name: "x", status: "cancelled" }]).level, "warn");
  assert.equal(summarizeEnded([]), null);
  assert.equal(summarizeEnded(undefined), null);
});

test("many jobs in one tick: one grouped toast", () => {
  const ended = [
    { id: "j1", name: "c1", status: "completed" }, { id: "j2", name: "c2", status: "completed" },
    { id: "j3", name: "c3", status: "completed" }, { id: "j4", name: "p1", status: "failed" },
    { id: "j5", name: "c4", status: "completed" },
  ];
  const s = summarizeEnded(ended);
  assert.equal(s.title, "5 jobs ended: 4 completed, 1 failed");
  assert.equal(s.count, 5);
  assert.equal(s.level, "error");
  assert.equal(s.jobId, null);
  assert.ok(s.body.startsWith("p1, "), "failed jobs are named first");
  assert.match(s.body, /and 1 more$/);
  const mixed = summarizeEnded([{ id: "a", status: "cancelled" }, { id: "b", status: "completed" }]);
  assert.equal(mixed.title, "2 jobs ended: 1 completed, 1 cancelled");
  assert.equal(mixed.level, "warn");
  // The same set of jobs gives the same tag (a second view's notification replaces the first).
  assert.equal(summarizeEnded([...ended].reverse()).tag, s.tag);
});

test("RowStore reports the rows that ended in each sync, never those ended before first display", () => {
  const store = new RowStore();
  const snap = { gen: 1, rows: [
    { id: "old", status: "completed" }, { id: "run", status: "running" }, { id: "q", status: "queued" },
  ] };
  store.sync(snap, { gen: 1, seq: 1, rows: [{ id: "gone", status: "failed" }] });
  assert.deepEqual(store.ended, [], "the first sync is the baseline");
  store.sync(snap, { gen: 1, seq: 2, rows: [{ id: "gone", status: "failed" }, { id: "run", status: "completed" }] });
  assert.deepEqual(store.ended.map((r) => r.id), ["run"]);
  // The same traits again (a re-sync): nothing new ended.
  store.sync(snap, { gen: 1, seq: 2, rows: [{ id: "gone", status: "failed" }, { id: "run", status: "completed" }] });
  assert.deepEqual(store.ended, []);
  // A cumulative diff repeating an ended row does not report it twice; a new row already ended does count.
  store.sync(snap, { gen: 1, seq: 3, rows: [{ id: "gone", status: "failed" }, { id: "run", status: "completed" },
    { id: "fast", status: "completed" }, { id: "q", status: "running" }] });
  assert.deepEqual(store.ended.map((r) => r.id), ["fast"]);
  // Compaction: the new snapshot carries an ending; the diff that comes with it is empty.
  store.sync({ gen: 2, rows: [{ id: "old", status: "completed" }, { id: "run", status: "completed" }, { id: "gone", status: "failed" },
    { id: "fast", status: "completed" }, { id: "q", status: "cancelled" }] }, { gen: 2, seq: 4, rows: [] });
  assert.deepEqual(store.ended.map((r) => r.id), ["q"]);
  // A view created now (late, or after a page reload) starts from this state without toasts.
  const late = new RowStore();
  late.sync({ gen: 2, rows: [{ id: "q", status: "cancelled" }] }, { gen: 2, seq: 4, rows: [] });
  assert.deepEqual(late.ended, []);
});

test("notification support is read from the browser, never requested here", () => {
  let asked = 0;
  const N = function Notification() {};
  N.requestPermission = async () => { asked++; return "granted"; };
  N.permission = "default";
  assert.equal(notificationSupport({ Notification: N, isSecureContext: true }), "default");
  N.permission = "granted";
  assert.equal(notificationSupport({ Notification: N, isSecureContext: true }), "granted");
  N.permission = "denied";
  assert.equal(notificationSupport({ Notification: N }), "denied");
  assert.equal(notificationSupport({ Notification: N, isSecureContext: false }), "unsupported");
  assert.equal(notificationSupport({}), "unsupported");
  assert.equal(asked, 0);
});
