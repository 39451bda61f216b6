// The view's window of the kernel's table (js/src/window.js): loading a window, applying a tick's
// diff, the rows under expanded ones, and which rows a scroll position needs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { WindowStore, WINDOW_MARGIN } from "../src/window.js";

const row = (id, extra = {}) => ({ id, name: `job ${id}`, status: "completed", ...extra });

function loaded() {
  const win = new WindowStore();
  win.load({
    offset: 100, limit: 4, ids: ["a", "b", "c", "d"], total: 1000, counts: { completed: 990, running: 10 },
    rows: [row("a"), row("b", { status: "running" }), row("c"), row("d"), row("c1", { parent: "c" }), row("c2", { parent: "c" }), row("old", { rby: "c" })],
    children: { c: ["c1", "c2", "old"] }, kids: { c: [2, 1] },
  }, 7);
  return win;
}

test("window: a loaded window lists its rows, with the rows under an expanded one", () => {
  const win = loaded();
  assert.equal(win.req, 7);
  assert.deepEqual(win.items(new Set()).map((i) => i.row.id), ["a", "b", "c", "d"]);
  const items = win.items(new Set(["c"]));
  assert.deepEqual(items.map((i) => [i.row.id, i.depth]), [["a", 0], ["b", 0], ["c", 0], ["c1", 1], ["c2", 1], ["old", 1], ["d", 0]]);
  assert.equal(items[2].childCount, 3);
  assert.equal(items[2].attempts, 1); // "old" is an earlier attempt, c1 and c2 array tasks
  assert.equal(items[5].attempt, true);
  assert.equal(win.length(items), 1003);
});

test("window: scroll positions outside the window name the top-level rows to ask for", () => {
  const win = loaded();
  const items = win.items(new Set(["c"]));
  // Positions 98..106: two rows before the window, the 7 items of the window.
  const { rows, missing } = win.slice(items, 98, 107);
  assert.deepEqual(rows.map((r) => (r.item ? r.item.row.id : null)), [null, null, "a", "b", "c", "c1", "c2", "old", "d"]);
  assert.deepEqual(missing, { first: 98, last: 100 });
  // After the window, positions count the expanded rows: position 107 is top-level row 104.
  assert.deepEqual(win.slice(items, 107, 109).missing, { first: 104, last: 106 });
  assert.equal(win.slice(items, 100, 107).missing, null);
  const ask = WindowStore.around(500, 520, 1000);
  assert.deepEqual(ask, { offset: 500 - WINDOW_MARGIN, limit: 20 + 2 * WINDOW_MARGIN });
});

test("window: a tick's diff changes only its rows; an old window's diff is ignored", () => {
  const win = loaded();
  const version = win.version;
  assert.equal(win.apply({ req: 7, offset: 100, rows: [row("b", { status: "failed" })], total: 1000 }), true);
  assert.equal(win.rows.get("b").status, "failed");
  assert.equal(win.rows.get("a").status, "completed");
  assert.ok(win.version > version);
  // A new job at the top: the order moves, the row that left the window is dropped.
  win.apply({ req: 7, offset: 100, rows: [row("z")], ids: ["z", "a", "b", "c"], total: 1001 });
  assert.deepEqual(win.ids, ["z", "a", "b", "c"]);
  assert.equal(win.rows.has("d"), false);
  assert.equal(win.total, 1001);
  // A diff for another offset (the view asked for another window meanwhile) changes nothing.
  assert.equal(win.apply({ req: 7, offset: 0, rows: [row("a", { status: "failed" })], total: 5 }), false);
  assert.equal(win.rows.get("a").status, "completed");
  // Collapsed in the kernel: the rows under it go.
  win.apply({ req: 7, offset: 100, rows: [], collapsed: ["c"], total: 1001 });
  assert.equal(win.children.has("c"), false);
  assert.equal(win.rows.has("c1"), false);
});

test("window: values that are not counts or ids never break it", () => {
  const win = new WindowStore();
  assert.equal(win.load({ ids: "nope" }), false);
  assert.equal(win.load({ ids: [1, 2], rows: [{ id: 1 }, null, { id: 2 }], total: -5, counts: { failed: "x", completed: 3 }, offset: 1.5 }), true);
  assert.deepEqual(win.ids, ["1", "2"]);
  assert.equal(win.total, 0);
  assert.equal(win.offset, 0);
  assert.deepEqual(win.counts, { completed: 3 });
});

test("window: the kernel's notice (a search not over the whole history) is kept as text, bounded", () => {
  const win = loaded();
  assert.equal(win.notice, "");
  win.load({ offset: 0, limit: 1, ids: ["a"], rows: [row("a")], total: 1, notice: "type 3 or more" });
  assert.equal(win.notice, "type 3 or more");
  win.load({ offset: 0, limit: 1, ids: ["a"], rows: [row("a")], total: 1, notice: { html: "<b>x</b>" } });
  assert.equal(win.notice, "");
  win.load({ offset: 0, limit: 1, ids: ["a"], rows: [row("a")], total: 1, notice: "x".repeat(1000) });
  assert.equal(win.notice.length, 300);
});
