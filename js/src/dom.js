// The only way the views create elements. Strings always become text nodes (textContent), never
// markup: job names, commands and log lines cannot inject HTML or run script.

import { styleToCss } from "./ansi.js";

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = String(value);
    else if (key === "style") Object.assign(el.style, value);
    else if (key === "dataset") for (const [k, v] of Object.entries(value)) el.dataset[k] = String(v);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child)) : child);
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** Nodes for highlighted ANSI segments ({text, style, mark}): spans with classes, text nodes inside. */
export function segmentNodes(segments) {
  const nodes = [];
  for (const seg of segments) {
    const css = styleToCss(seg.style);
    let node;
    if (css.classes.length || css.color || css.background) {
      node = document.createElement("span");
      if (css.classes.length) node.className = css.classes.join(" ");
      if (css.color) node.style.color = css.color;
      if (css.background) node.style.backgroundColor = css.background;
      node.textContent = seg.text;
    } else {
      node = document.createTextNode(seg.text);
    }
    if (seg.mark) {
      const mark = document.createElement("mark");
      mark.className = "cj-mark";
      mark.append(node);
      node = mark;
    }
    nodes.push(node);
  }
  return nodes;
}
