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
  for (const name of ["dom.js", "table.js", "logtail.js", "progress.js", "index.js"]) {
    const source = readFileSync(new URL(`../src/${name}`, import.meta.url), "utf8");
    assert.doesNotMatch(source, /innerHTML|outerHTML|insertAdjacentHTML|document\.write/, name);
  }
});
