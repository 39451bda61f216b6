import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { buildOutputs } from "../build.mjs";

test("the shipped bundle is what `npm run build` makes from js/src", async () => {
  const outputs = await buildOutputs();
  for (const [file, text] of Object.entries(outputs)) {
    assert.equal(readFileSync(file, "utf8") === text, true, `${file} is stale: run \`npm run build\``);
  }
});

test("the views never use innerHTML or insertAdjacentHTML", () => {
  for (const name of ["dom.js", "table.js", "cells.js", "detail.js", "notices.js", "logtail.js", "progress.js", "index.js"]) {
    const source = readFileSync(new URL(`../src/${name}`, import.meta.url), "utf8");
    assert.doesNotMatch(source, /innerHTML|outerHTML|insertAdjacentHTML|document\.write/, name);
  }
});

test("no emoji glyphs in what the views draw (fonts may lack them: icons are inline SVG or CSS)", async () => {
  // Seen on main: "⏳" (U+23F3) before a waiting job's dependency rendered as an empty box with
  // Debian's default fonts; "⚠" (U+26A0) is an emoji in many fonts too.
  const outputs = await buildOutputs();
  const emoji = /[\u231A-\u23FF\u2600-\u27BF\u2B00-\u2BFF\u{1F000}-\u{1FAFF}\uFE0F]/u;
  for (const [file, text] of Object.entries(outputs)) {
    const found = text.match(emoji);
    assert.equal(found, null, `${file} draws ${found && found[0]} (U+${found && found[0].codePointAt(0).toString(16)})`);
  }
});
