import { test } from "node:test";
import assert from "node:assert/strict";
import { LogBuffer } from "../src/logbuffer.js";

test("log buffer: snapshot, appended lines only, partial line", () => {
  const b = new LogBuffer(5);
  let r = b.sync({ gen: 1, lines: ["a", "b"] }, { gen: 1, seq: 1, lines: [], partial: "" });
  assert.equal(r.reset, true);
  assert.deepEqual(b.lines, ["a", "b"]);
  r = b.sync({ gen: 1, lines: ["a", "b"] }, { gen: 1, seq: 2, lines: ["c"], partial: "d" });
  assert.deepEqual(r, { reset: false, appended: ["c"], dropped: 0, partial: "d" });
  r = b.sync({ gen: 1, lines: ["a", "b"] }, { gen: 1, seq: 3, lines: ["c", "d", "e", "f"], partial: "" });
  assert.deepEqual(r.appended, ["d", "e", "f"]);
  assert.equal(r.dropped, 1); // bounded: at most 5 lines
  assert.deepEqual(b.lines, ["b", "c", "d", "e", "f"]);
  // Same state again: nothing new.
  r = b.sync({ gen: 1, lines: ["a", "b"] }, { gen: 1, seq: 3, lines: ["c", "d", "e", "f"], partial: "" });
  assert.deepEqual(r.appended, []);
  // Compaction or a new job: a new generation resets.
  r = b.sync({ gen: 2, lines: ["x"] }, { gen: 2, seq: 4, lines: ["y"], partial: "" });
  assert.equal(r.reset, true);
  assert.deepEqual(b.lines, ["x", "y"]);
});

test("log buffer: a view created late sees the same lines", () => {
  const snapshot = { gen: 3, lines: ["1", "2"] };
  const tail = { gen: 3, seq: 9, lines: ["3", "4"], partial: "5" };
  const early = new LogBuffer(100);
  early.sync(snapshot, { gen: 3, seq: 8, lines: ["3"], partial: "" });
  early.sync(snapshot, tail);
  const late = new LogBuffer(100);
  late.sync(snapshot, tail);
  assert.deepEqual(late.lines, early.lines);
  assert.equal(late.partial, "5");
});
