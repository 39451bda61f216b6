import { test } from "node:test";
import assert from "node:assert/strict";
import {
  RowStore, buildView, compareRows, sortRows, filterRows, matchesFilter, statusCounts, dependencyInfo, visibleRange,
  aggregateStatus, COLUMNS, olderJobs,
} from "../src/rows.js";

const rows = [
  { id: "a1", name: "Count S10", type: "Count", scheduler: "local", status: "completed", submit: 1000, start: 1100, end: 5000, exit: 0 },
  { id: "a2", name: "Count S2", type: "Count", scheduler: "local", status: "running", submit: 2000, start: 2100, pct: 40 },
  { id: "a3", name: "Preprocess", type: "Preprocess", scheduler: "slurm", status: "pending", submit: 3000, deps: ["a2"], dkind: "afterok" },
  { id: "a4", name: "Predict", type: "Prediction", scheduler: "slurm", status: "failed", submit: 4000, start: 4100, end: 4200, exit: 3, reason: "exit code 3" },
];

test("RowStore: snapshot then cumulative diffs, idempotent", () => {
  const store = new RowStore();
  assert.equal(store.sync({ gen: 1, rows: rows.slice(0, 2) }, { gen: 1, seq: 1, rows: [] }), true);
  assert.deepEqual([...store.rows.keys()], ["a1", "a2"]);
  // The same traits again: nothing changes.
  assert.equal(store.sync({ gen: 1, rows: rows.slice(0, 2) }, { gen: 1, seq: 1, rows: [] }), false);
  const changed = { ...rows[1], status: "completed", end: 9000 };
  assert.equal(store.sync({ gen: 1, rows: rows.slice(0, 2) }, { gen: 1, seq: 2, rows: [changed, rows[2]] }), true);
  assert.equal(store.rows.get("a2").status, "completed");
  assert.equal(store.rows.size, 3);
  // A later cumulative diff that repeats rows already applied changes nothing.
  assert.equal(store.sync(null, { gen: 1, seq: 3, rows: [changed, rows[2]] }), false);
  // A diff for another generation is ignored until its snapshot arrives.
  assert.equal(store.sync(null, { gen: 2, seq: 4, rows: [rows[3]] }), false);
  assert.equal(store.rows.has("a4"), false);
  // Compaction: new snapshot replaces everything.
  assert.equal(store.sync({ gen: 2, rows }, { gen: 2, seq: 4, rows: [] }), true);
  assert.equal(store.rows.size, 4);
  assert.equal(store.rows.get("a2").status, "running");
  // Removed rows.
  assert.equal(store.sync({ gen: 2, rows }, { gen: 2, seq: 5, rows: [], removed: ["a1"] }), true);
  assert.equal(store.rows.has("a1"), false);
});

test("RowStore: a view created late rebuilds the same table from the two traits", () => {
  const early = new RowStore();
  const snapshot = { gen: 1, rows: rows.slice(0, 2) };
  early.sync(snapshot, { gen: 1, seq: 1, rows: [] });
  early.sync(snapshot, { gen: 1, seq: 2, rows: [rows[2]] });
  early.sync(snapshot, { gen: 1, seq: 3, rows: [rows[2], rows[3]] });
  const late = new RowStore();
  late.sync(snapshot, { gen: 1, seq: 3, rows: [rows[2], rows[3]] });
  assert.deepEqual([...late.rows.entries()].sort(), [...early.rows.entries()].sort());
});

test("sorting by every column, empty values last in both directions", () => {
  for (const col of COLUMNS) {
    for (const dir of ["asc", "desc"]) {
      const sorted = sortRows(rows, col.key, dir, 10000);
      assert.equal(sorted.length, rows.length, `${col.key} ${dir}`);
    }
  }
  assert.deepEqual(sortRows(rows, "name", "asc", 0).map((r) => r.name), ["Count S2", "Count S10", "Predict", "Preprocess"]);
  assert.deepEqual(sortRows(rows, "submit", "desc", 0).map((r) => r.id), ["a4", "a3", "a2", "a1"]);
  assert.deepEqual(sortRows(rows, "status", "asc", 0).map((r) => r.status), ["pending", "running", "completed", "failed"]);
  assert.deepEqual(sortRows(rows, "exit", "asc", 0).map((r) => r.id), ["a1", "a4", "a2", "a3"]);
  assert.deepEqual(sortRows(rows, "exit", "desc", 0).map((r) => r.id), ["a4", "a1", "a2", "a3"]);
  // runtime: the running job's runtime grows with now.
  assert.deepEqual(sortRows(rows, "runtime", "desc", 100000).map((r) => r.id), ["a2", "a1", "a4", "a3"]);
  assert.ok(compareRows(rows[0], rows[0], "name", "asc", 0) === 0);
});

test("filtering: status chips and free text (all words)", () => {
  assert.deepEqual(filterRows(rows, new Set(["running", "pending"]), "").map((r) => r.id), ["a2", "a3"]);
  assert.deepEqual(filterRows(rows, new Set(), "count").map((r) => r.id), ["a1", "a2"]);
  assert.deepEqual(filterRows(rows, null, "count s2").map((r) => r.id), ["a2"]);
  assert.deepEqual(filterRows(rows, null, "SLURM exit").map((r) => r.id), ["a4"]);
  assert.equal(matchesFilter(rows[0], new Set(["failed"]), ""), false);
  const { counts, total } = statusCounts(rows);
  assert.equal(total, 4);
  assert.equal(counts.running, 1);
  assert.equal(counts.unknown, 0);
});

test("array tasks are grouped under their parent, expand/collapse", () => {
  const tasks = [0, 1, 2].map((i) => ({ id: `arr_${i}`, name: "Array", parent: "arr", idx: i, status: i === 1 ? "failed" : "completed", submit: 500, start: 600 + i, end: 700 + i }));
  const map = new Map([...rows, ...tasks].map((r) => [r.id, r]));
  let view = buildView(map, { sortKey: "submit", sortDir: "asc" });
  const group = view.items.find((it) => it.row.id === "arr");
  assert.ok(group.row.synthetic, "a group row stands for the parent that has no row of its own");
  assert.equal(group.childCount, 3);
  assert.equal(group.row.status, "failed");
  assert.equal(view.items.length, 5); // collapsed
  assert.equal(view.total, 7);
  view = buildView(map, { sortKey: "submit", sortDir: "asc", expanded: new Set(["arr"]) });
  assert.equal(view.items.length, 8);
  const idx = view.items.findIndex((it) => it.row.id === "arr");
  assert.deepEqual(view.items.slice(idx + 1, idx + 4).map((it) => [it.row.id, it.depth]), [["arr_0", 1], ["arr_1", 1], ["arr_2", 1]]);
  // Filtering on a task keeps its parent visible.
  view = buildView(map, { statuses: new Set(["failed"]), expanded: new Set(["arr"]) });
  assert.deepEqual(view.items.map((it) => it.row.id).sort(), ["a4", "arr", "arr_1"]);
  assert.equal(view.matched, 2);
  // A real parent row is used when it exists.
  map.set("arr", { id: "arr", name: "Array parent", status: "running", submit: 400 });
  view = buildView(map, { expanded: new Set() });
  assert.equal(view.items.find((it) => it.row.id === "arr").row.synthetic, undefined);
  assert.equal(aggregateStatus([{ status: "completed" }, { status: "running" }]), "running");
  assert.equal(aggregateStatus([{ status: "completed" }, { status: "cancelled" }]), "cancelled");
});

test("dependencies say what a job waits for", () => {
  const map = new Map(rows.map((r) => [r.id, r]));
  const info = dependencyInfo(rows[2], map);
  assert.match(info.text, /^waits for Count S2 \(a2, running\) · afterok$/);
  assert.equal(info.waiting.length, 1);
  map.set("a2", { ...rows[1], status: "completed" });
  assert.match(dependencyInfo(rows[2], map).text, /^after Count S2 \(a2, completed\)/);
  assert.equal(dependencyInfo(rows[0], map), null);
  assert.match(dependencyInfo({ id: "x", status: "pending", deps: ["gone"] }, map).text, /gone, missing/);
});

test("virtual window: only visible rows plus overscan", () => {
  assert.deepEqual(visibleRange(0, 400, 28, 5000, 8), { start: 0, end: 24 });
  assert.deepEqual(visibleRange(28 * 1000, 400, 28, 5000, 8), { start: 992, end: 1024 });
  assert.deepEqual(visibleRange(28 * 5000, 400, 28, 5000, 8), { start: 4991, end: 5000 });
  assert.deepEqual(visibleRange(0, 400, 28, 0), { start: 0, end: 0 });
});

test("5,000 jobs: building the view stays fast", () => {
  const many = new Map();
  for (let i = 0; i < 5000; i++) {
    const id = `j${String(i).padStart(5, "0")}`;
    many.set(id, { id, name: `job ${i}`, status: ["running", "completed", "failed", "pending"][i % 4], submit: i, start: i + 1, parent: i % 10 === 0 ? undefined : undefined });
  }
  const start = performance.now();
  for (const key of ["name", "status", "runtime", "submit"]) buildView(many, { sortKey: key, sortDir: "asc", text: "job 4", nowMs: 1e6 });
  const elapsed = performance.now() - start;
  assert.ok(elapsed < 1000, `4 sorts+filters of 5,000 rows took ${elapsed.toFixed(0)} ms`);
});

test("RowStore: deltas that start after a later base, pending rows and resync", () => {
  const snapshot = { gen: 1, seq: 1, rows: rows.slice(0, 2) };
  const live = new RowStore();
  live.sync(snapshot, { gen: 1, seq: 1, base: 1, rows: [] });
  live.sync(snapshot, { gen: 1, seq: 2, base: 1, rows: [rows[2]] });
  // The kernel stopped re-sending rows[2]: the delta holds this tick's row only.
  live.sync(snapshot, { gen: 1, seq: 3, base: 2, rows: [rows[3]] });
  assert.equal(live.gap, false);
  assert.equal(live.rows.size, 4);
  // A view that joins now sees only the traits: it knows rows are missing.
  const late = new RowStore();
  late.sync(snapshot, { gen: 1, seq: 3, base: 2, rows: [rows[3]] });
  assert.equal(late.gap, true);
  assert.equal(late.rows.has("a3"), false);
  assert.equal(late.applyRows({ gen: 1, seq: 3, rows: [rows[2], rows[3]] }), true);
  assert.equal(late.gap, false);
  assert.deepEqual([...late.rows.entries()].sort(), [...live.rows.entries()].sort());
  // A reply for another generation is ignored.
  assert.equal(late.applyRows({ gen: 2, seq: 9, rows: [] }), false);
  // Saved state (snapshot + pending + an older delta): complete, the old delta is skipped.
  const saved = new RowStore();
  const pending = { gen: 1, seq: 3, rows: [rows[2], rows[3]] };
  saved.sync(snapshot, { gen: 1, seq: 2, base: 1, rows: [{ ...rows[2], status: "queued" }] }, pending);
  assert.equal(saved.gap, false);
  assert.deepEqual([...saved.rows.entries()].sort(), [...live.rows.entries()].sort());
  // pending + a newer delta starting at pending's tick: no gap.
  const reloaded = new RowStore();
  reloaded.sync(snapshot, { gen: 1, seq: 4, base: 3, rows: [] }, pending);
  assert.equal(reloaded.gap, false);
  assert.equal(reloaded.rows.size, 4);
});

test("olderJobs: the kernel's count of ended jobs not loaded, hostile values ignored", () => {
  assert.deepEqual(olderJobs({}), { total: 0, counts: {}, page: 500 });
  assert.deepEqual(olderJobs({ older: { total: 7, counts: { completed: 5, failed: 2 }, page: 200 } }),
    { total: 7, counts: { completed: 5, failed: 2 }, page: 200 });
  const hostile = olderJobs({ older: { counts: { completed: "1e400", failed: -3, running: 1.5, __proto__: 9, bogus: 4, cancelled: 2 }, page: "x" } });
  assert.deepEqual(hostile, { total: 2, counts: { cancelled: 2 }, page: 500 });
  assert.deepEqual(olderJobs({ older: "nonsense" }), { total: 0, counts: {}, page: 500 });
});
