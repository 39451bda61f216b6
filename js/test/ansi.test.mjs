import { test } from "node:test";
import assert from "node:assert/strict";
import { parseAnsi, stripAnsi, applySgr, initialStyle, styleToCss, highlightSegments, countMatches, xterm256 } from "../src/ansi.js";

test("SGR colours become styled segments", () => {
  const { segments } = parseAnsi("plain \x1b[1;32mgreen bold\x1b[0m back \x1b[31mred");
  assert.deepEqual(segments.map((s) => s.text), ["plain ", "green bold", " back ", "red"]);
  assert.equal(segments[1].style.fg, 2);
  assert.equal(segments[1].style.bold, true);
  assert.equal(segments[2].style.fg, null);
  assert.equal(segments[3].style.fg, 1);
  assert.deepEqual(styleToCss(segments[1].style).classes, ["cj-ansi-fg-2", "cj-ansi-bold"]);
});

test("256 and true colours, bright colours, resets", () => {
  let s = applySgr(initialStyle(), "38;5;208");
  assert.equal(s.fg, xterm256(208));
  s = applySgr(s, "48;2;10;20;300");
  assert.equal(s.bg, "rgb(10,20,255)");
  s = applySgr(s, "94");
  assert.equal(s.fg, 12);
  s = applySgr(s, "39;49");
  assert.equal(s.fg, null);
  assert.equal(s.bg, null);
  assert.equal(applySgr(initialStyle(), "38;5;3").fg, 3);
  assert.equal(styleToCss(applySgr(initialStyle(), "38;2;1;2;3")).color, "rgb(1,2,3)");
  // inverse swaps colours
  assert.deepEqual(styleToCss(applySgr(initialStyle(), "7")).classes, ["cj-ansi-fg-inverse", "cj-ansi-bg-inverse"]);
});

test("other escapes are dropped, text is kept verbatim (no markup)", () => {
  assert.equal(stripAnsi("\x1b[2K\x1b[1Gprogress \x1b]0;title\x07done"), "progress done");
  assert.equal(stripAnsi("<img src=x onerror=alert(1)>"), "<img src=x onerror=alert(1)>");
  assert.equal(stripAnsi("lone escape \x1b"), "lone escape ");
  assert.equal(stripAnsi("\ufffd invalid utf-8 replacement"), "\ufffd invalid utf-8 replacement");
  // carried style across lines
  const first = parseAnsi("\x1b[33myellow starts");
  const second = parseAnsi("still yellow", first.style);
  assert.equal(second.segments[0].style.fg, 3);
});

test("search highlight marks matches, across segment boundaries, case-insensitively", () => {
  const { segments } = parseAnsi("loss=\x1b[33m12\x1b[0m3 LOSS");
  const marked = highlightSegments(segments, "loss=123");
  assert.deepEqual(marked.filter((s) => s.mark).map((s) => s.text), ["loss=", "12", "3"]);
  const again = highlightSegments(segments, "loss");
  assert.deepEqual(again.filter((s) => s.mark).map((s) => s.text), ["loss", "LOSS"]);
  assert.deepEqual(highlightSegments(segments, "").filter((s) => s.mark), []);
  assert.deepEqual(highlightSegments(segments, "absent").map((s) => s.text).join(""), "loss=123 LOSS");
  assert.equal(countMatches("a A aa", "a"), 4);
  assert.equal(countMatches("abc", ""), 0);
});
