// The selected job's resource use under the table: CPU and memory figures with their sparklines,
// I/O, and its attempts. The samples come from the kernel for this one job only (`detail`).

import { h } from "./dom.js";
import { formatDuration, formatTime } from "./format.js";
import { attemptText, effHint, formatBytes, formatCpu, formatEff, retryCountdown, sampleSeries } from "./usage.js";
import { sparklineSvg } from "./sparkline.js";

/** Draw `d` (the kernel's detail of `row`) into `el`; false when there is nothing to show. Retry
 * countdown spans are added to `countdownCells` ([span, row]) for the clock to tick. */
export function renderUsage(el, d, row, nowMs, countdownCells) {
  const num = (v) => typeof v === "number" && Number.isFinite(v);
  const lines = [];
  const cpuParts = [];
  if (num(d.cpu_percent)) cpuParts.push(`${formatCpu(d.cpu_percent)} now`);
  if (num(d.cpu_seconds)) cpuParts.push(`${formatDuration(d.cpu_seconds)} CPU time`);
  if (num(d.cpu_eff)) {
    const pct = d.cpu_eff * 100;
    const span = h("span", { class: `cj-eff${effHint("cpu", pct) ? ` cj-eff-${effHint("cpu", pct)}` : ""}` },
      `efficiency ${formatEff(pct)}${num(d.alloc_cpus) ? ` of ${d.alloc_cpus} CPU${d.alloc_cpus === 1 ? "" : "s"}` : ""}`);
    cpuParts.push(span);
  } else if (num(d.alloc_cpus)) cpuParts.push(`${d.alloc_cpus} CPU${d.alloc_cpus === 1 ? "" : "s"} requested`);
  const memParts = [];
  if (num(d.rss_bytes)) memParts.push(`${formatBytes(d.rss_bytes)} now`);
  if (num(d.max_rss_bytes)) memParts.push(`peak ${formatBytes(d.max_rss_bytes)}`);
  if (num(d.mem_eff)) {
    const pct = d.mem_eff * 100;
    memParts.push(h("span", { class: `cj-eff${effHint("mem", pct) ? ` cj-eff-${effHint("mem", pct)}` : ""}` },
      `${formatEff(pct)} of ${num(d.req_mem_bytes) ? formatBytes(d.req_mem_bytes) : "the request"}`));
  } else if (num(d.req_mem_bytes)) memParts.push(`${formatBytes(d.req_mem_bytes)} requested`);
  const ioParts = [];
  if (num(d.read_bytes)) ioParts.push(`read ${formatBytes(d.read_bytes)}`);
  if (num(d.write_bytes)) ioParts.push(`written ${formatBytes(d.write_bytes)}`);
  const join = (parts) => parts.flatMap((p, i) => (i ? [" · ", p] : [p]));
  const series = sampleSeries(d.samples);
  const over = series.span > 0 ? ` over the last ${formatDuration(series.span)}` : "";
  // CPU on a scale of at least one core: a mostly idle job draws a flat line, not noise.
  const cpuMax = Math.max(100, ...series.cpu.filter((v) => v !== null));
  const cpuSpark = sparklineSvg(series.cpu, { label: `CPU % (0–${Math.round(cpuMax)}%)${over}`, className: "cj-spark-cpu", max: cpuMax });
  const rssSpark = sparklineSvg(series.rss, { label: `Memory (RSS)${over}`, className: "cj-spark-rss" });
  const measured = num(d.cpu_seconds) || num(d.max_rss_bytes) || num(d.cpu_percent) || num(d.rss_bytes) || Boolean(cpuSpark || rssSpark);
  if (measured && (cpuParts.length || cpuSpark)) {
    lines.push(h("div", { class: "cj-detail-line cj-detail-cpu" }, h("span", { class: "cj-detail-label" }, "CPU"), cpuSpark, h("span", {}, join(cpuParts))));
  }
  if (measured && (memParts.length || rssSpark)) {
    lines.push(h("div", { class: "cj-detail-line cj-detail-mem" }, h("span", { class: "cj-detail-label" }, "Memory"), rssSpark, h("span", {}, join(memParts))));
  }
  if (ioParts.length) lines.push(h("div", { class: "cj-detail-line" }, h("span", { class: "cj-detail-label" }, "I/O"), h("span", {}, join(ioParts))));
  const retryParts = [];
  const attempt = attemptText(row);
  if (attempt) retryParts.push(`attempt ${attempt}`);
  if (d.retry_of) retryParts.push(`retry of ${d.retry_of}`);
  if (d.retry_reason) retryParts.push(`after: ${d.retry_reason}`);
  if (d.retried_by) retryParts.push(`retried as ${d.retried_by}`);
  const countdown = retryCountdown(row, nowMs);
  if (countdown) {
    const span = h("span", { class: `cj-countdown${countdown.due ? " cj-due" : ""}` }, countdown.text);
    countdownCells.push([span, row]);
    retryParts.unshift(span);
  }
  if (retryParts.length) lines.push(h("div", { class: "cj-detail-line cj-detail-retry" }, h("span", { class: "cj-detail-label" }, "Retries"), h("span", {}, join(retryParts))));
  if (!lines.length) return false;
  const when = num(d.sampled_at) ? ` · sampled ${formatTime(d.sampled_at, nowMs)}` : "";
  el.append(h("div", { class: "cj-detail-title" }, `Resource use of ${row.name || row.id}${when}`), ...lines);
  return true;
}

