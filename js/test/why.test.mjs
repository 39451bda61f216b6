// The "why" after a status, progress that says where a job stopped, attempts as one job, and the
// column chooser's rules. Pure functions.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  statusWhy, progressNote, localSlotsUsed, loadColumnChoices, saveColumnChoices, constantColumns, visibleColumns, gridTemplate, COLUMNS_KEY,
} from "../src/why.js";
import { buildView, logicalRows, statusCounts, supersededBy } from "../src/rows.js";

test("a failed job: exit code and its last error line, not just 'exit code 3'", () => {
  const row = { id: "p1", status: "failed", exit: 3, reason: "exit code 3", err: "Error in readRDS(file): cannot open" };
  assert.deepEqual(statusWhy(row), { text: "exit 3 · Error in readRDS(file): cannot open", level: "error" });
  assert.equal(statusWhy({ id: "p2", status: "failed", sig: 9, reason: "out of memory (OOM killer)" }).text, "signal 9 · out of memory (OOM killer)");
  assert.equal(statusWhy({ id: "p3", status: "failed", exit: 1 }).text, "exit 1");
});

test("a waiting job says what it waits for, by name, or that every local slot is taken", () => {
  const rows = new Map([
    ["c1", { id: "c1", name: "Count S1", status: "running", scheduler: "local" }],
    ["c2", { id: "c2", name: "Count S2", status: "completed", scheduler: "local" }],
  ]);
  const dep = { id: "p1", status: "pending", scheduler: "local", deps: ["c1", "c2"] };
  assert.deepEqual(statusWhy(dep, { rows, slotsUsed: 1, slotsMax: 4 }), { text: "waits for Count S1", level: "wait", wait: true });
  // Seen on main: a job pending because max_parallel slots were full had an empty reason.
  const queuedBehind = { id: "p2", status: "pending", scheduler: "local" };
  assert.equal(statusWhy(queuedBehind, { rows, slotsUsed: 6, slotsMax: 6 }).text, "no free slot (6/6)");
  assert.equal(statusWhy(queuedBehind, { rows, slotsUsed: 2, slotsMax: 6 }).text, "starting");
  assert.equal(statusWhy({ id: "h", status: "held", reason: "JobHeldUser" }).text, "JobHeldUser");
  assert.equal(statusWhy({ id: "q", status: "queued", scheduler: "slurm", reason: "Priority" }).text, "Priority");
  assert.equal(statusWhy({ id: "r", status: "running" }).text, "");
  assert.equal(localSlotsUsed([{ scheduler: "local", status: "running" }, { scheduler: "local", status: "queued" },
    { scheduler: "slurm", status: "running" }, { scheduler: "local", status: "pending" }]), 2);
});

test("progress says plainly where an ended job stopped", () => {
  assert.equal(progressNote({ status: "completed", pct: 98, stage: "step 89" }), "ended at 98% · step 89");
  assert.equal(progressNote({ status: "failed", pct: 35 }), "stopped at 35%");
  assert.equal(progressNote({ status: "completed", pct: 100, stage: "done" }), "done");
  assert.equal(progressNote({ status: "running", pct: 40, stage: "Aligning" }), "Aligning");
});

test("attempts are one job: grouped under the latest, counted once, manual and automatic links alike", () => {
  // a1 -> a2 linked only by rby (manual retry on old code would have no link at all); a2 -> a3 by retry_of.
  const rows = new Map([
    ["a1", { id: "a1", name: "Predict", status: "failed", rby: "a2", submit: 1 }],
    ["a2", { id: "a2", name: "Predict", status: "failed", retry_of: "a1", rby: "a3", attempt: 2, submit: 2 }],
    ["a3", { id: "a3", name: "Predict", status: "running", retry_of: "a2", attempt: 3, submit: 3 }],
    ["b1", { id: "b1", name: "Count", status: "completed", submit: 0 }],
  ]);
  assert.deepEqual([...supersededBy(rows)].sort(), [["a1", "a3"], ["a2", "a3"]]);
  const { counts, total } = statusCounts(logicalRows(rows));
  assert.equal(total, 2);
  assert.equal(counts.failed, 0, "the failed attempts are not failed jobs: the job is running again");
  assert.equal(counts.running, 1);
  const view = buildView(rows, {});
  assert.deepEqual(view.items.map((i) => [i.row.id, i.childCount, i.attempts]), [["a3", 2, 2], ["b1", 0, 0]]);
  assert.equal(view.total, 2);
  const open = buildView(rows, { expanded: new Set(["a3"]) });
  assert.deepEqual(open.items.map((i) => [i.row.id, i.depth, Boolean(i.attempt)]),
    [["a3", 0, false], ["a1", 1, true], ["a2", 1, true], ["b1", 0, false]]);
  // A filter that matches only an earlier attempt keeps its job in view.
  assert.deepEqual(buildView(rows, { statuses: new Set(["failed"]) }).items.map((i) => i.row.id), ["a3"]);
});

test("columns: the default view fits ~1,000 px; constant columns hidden; the user's choice wins and is stored", () => {
  const cols = visibleColumns({}, new Set());
  assert.deepEqual(cols.map((c) => c.key), ["id", "name", "type", "status", "progress", "runtime", "end"]);
  const { width, template } = gridTemplate(cols);
  assert.ok(width <= 840, `default minimum width ${width}px (JupyterLab at 1280 px with its file browser open gives ~848 px)`);
  assert.match(template, /minmax\(220px, 3fr\)/, "the status column takes most of the spare width");
  const rows = [{ type: "Count", scheduler: "local" }, { type: "Count", scheduler: "local" }];
  const constant = constantColumns(rows);
  assert.deepEqual([...constant].sort(), ["scheduler", "type"]);
  assert.ok(!visibleColumns({}, constant).some((c) => c.key === "type"));
  assert.ok(visibleColumns({ type: true, exit: true }, constant).some((c) => c.key === "type" && true));
  assert.ok(visibleColumns({ exit: true }, constant).some((c) => c.key === "exit"));
  assert.ok(visibleColumns({ id: false }, constant).some((c) => c.key === "id"), "the id column always shows");
  const mem = new Map();
  const storage = { getItem: (k) => mem.get(k) ?? null, setItem: (k, v) => mem.set(k, v) };
  saveColumnChoices({ exit: true, res: false }, storage);
  assert.deepEqual(JSON.parse(mem.get(COLUMNS_KEY)), { exit: true, res: false });
  assert.deepEqual(loadColumnChoices(storage), { exit: true, res: false });
  mem.set(COLUMNS_KEY, '{"exit": "yes", "nope": true, "res": false}');
  assert.deepEqual(loadColumnChoices(storage), { res: false }, "unknown keys and bad values dropped");
  mem.set(COLUMNS_KEY, "not json");
  assert.deepEqual(loadColumnChoices(storage), {});
  const throwing = { getItem: () => { throw new Error("SecurityError"); }, setItem: () => { throw new Error("quota"); } };
  assert.deepEqual(loadColumnChoices(throwing), {});
  saveColumnChoices({ exit: true }, throwing); // no throw
});
