// A small inline SVG sparkline, built with createElementNS and attributes only (no markup strings).
// `doc` is injectable so that js/test/sparkline.test.mjs can check what is created without a DOM.

import { sparkPoints } from "./usage.js";

export const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * An <svg class="cj-spark ..."> of `values` (nulls skipped): a polyline plus a dot on the last
 * value, with a <title> (text node) for the tooltip. Returns null when there are < 2 values.
 */
export function sparklineSvg(values, { width = 160, height = 28, label = "", className = "", max = null, doc = globalThis.document } = {}) {
  const geo = sparkPoints(values, width, height, { max, pad: 3 });
  if (!geo.points) return null;
  const svg = doc.createElementNS(SVG_NS, "svg");
  svg.setAttribute("class", `cj-spark${className ? ` ${className}` : ""}`);
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.setAttribute("data-points", String(geo.count));
  const title = doc.createElementNS(SVG_NS, "title");
  title.textContent = label;
  svg.appendChild(title);
  const line = doc.createElementNS(SVG_NS, "polyline");
  line.setAttribute("class", "cj-spark-line");
  line.setAttribute("points", geo.points);
  line.setAttribute("fill", "none");
  svg.appendChild(line);
  const last = geo.points.split(" ").pop().split(",");
  const dot = doc.createElementNS(SVG_NS, "circle");
  dot.setAttribute("class", "cj-spark-dot");
  dot.setAttribute("cx", last[0]);
  dot.setAttribute("cy", last[1]);
  dot.setAttribute("r", "2");
  svg.appendChild(dot);
  return svg;
}

/** A bell icon (16×16, currentColor) for the notification toggle: no emoji font needed. */
export function bellIcon({ doc = globalThis.document } = {}) {
  const svg = doc.createElementNS(SVG_NS, "svg");
  for (const [k, v] of [["class", "cj-icon"], ["width", "14"], ["height", "14"], ["viewBox", "0 0 16 16"], ["aria-hidden", "true"]]) svg.setAttribute(k, v);
  const path = doc.createElementNS(SVG_NS, "path");
  path.setAttribute("fill", "currentColor");
  path.setAttribute("d", "M8 1.5a1 1 0 0 1 1 1v.6a4.5 4.5 0 0 1 3.5 4.4v3l1.5 2H2l1.5-2v-3A4.5 4.5 0 0 1 7 3.1v-.6a1 1 0 0 1 1-1zM6.3 13.5h3.4a1.7 1.7 0 0 1-3.4 0z");
  svg.appendChild(path);
  return svg;
}
