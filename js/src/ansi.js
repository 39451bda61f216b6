// ANSI SGR colours -> styled segments. Pure: no DOM here (see dom.js for the nodes). Any other
// escape sequence (cursor moves, OSC titles, ...) is dropped. Job text never becomes markup: the
// view puts each segment's text in a text node.

// Matches CSI sequences (ESC [ params letter), OSC sequences (ESC ] ... BEL or ESC \) and 2-byte escapes.
// eslint-disable-next-line no-control-regex
const ESCAPE_RE = /\x1b\[([0-9;:?]*)([ -/]*[@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?/g;

export function initialStyle() {
  return { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false, inverse: false, strike: false };
}

const BASE_RGB = [
  [0, 0, 0], [205, 49, 49], [13, 188, 121], [229, 229, 16], [36, 114, 200], [188, 63, 188], [17, 168, 205], [229, 229, 229],
  [102, 102, 102], [241, 76, 76], [35, 209, 139], [245, 245, 67], [59, 142, 234], [214, 112, 214], [41, 184, 219], [255, 255, 255],
];

/** The CSS colour of xterm-256 colour `n` (0-15 are returned as palette indexes by the parser). */
export function xterm256(n) {
  if (n < 16) return `rgb(${BASE_RGB[n].join(",")})`;
  if (n < 232) {
    const i = n - 16;
    const steps = [0, 95, 135, 175, 215, 255];
    return `rgb(${steps[Math.floor(i / 36)]},${steps[Math.floor(i / 6) % 6]},${steps[i % 6]})`;
  }
  const v = 8 + (n - 232) * 10;
  return `rgb(${v},${v},${v})`;
}

function clampByte(value) {
  const n = Number(value);
  return Number.isFinite(n) ? Math.max(0, Math.min(255, Math.round(n))) : 0;
}

/** Apply one SGR parameter list ("1;31", "38;5;208", "38;2;10;20;30", "" = reset) to `style`. */
export function applySgr(style, params) {
  const codes = params === "" ? [0] : params.split(/[;:]/).map((p) => (p === "" ? 0 : Number(p)));
  const s = { ...style };
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    if (c === 0) Object.assign(s, initialStyle());
    else if (c === 1) s.bold = true;
    else if (c === 2) s.dim = true;
    else if (c === 3) s.italic = true;
    else if (c === 4) s.underline = true;
    else if (c === 7) s.inverse = true;
    else if (c === 9) s.strike = true;
    else if (c === 22) { s.bold = false; s.dim = false; }
    else if (c === 23) s.italic = false;
    else if (c === 24) s.underline = false;
    else if (c === 27) s.inverse = false;
    else if (c === 29) s.strike = false;
    else if (c >= 30 && c <= 37) s.fg = c - 30;
    else if (c >= 90 && c <= 97) s.fg = c - 90 + 8;
    else if (c === 39) s.fg = null;
    else if (c >= 40 && c <= 47) s.bg = c - 40;
    else if (c >= 100 && c <= 107) s.bg = c - 100 + 8;
    else if (c === 49) s.bg = null;
    else if (c === 38 || c === 48) {
      const key = c === 38 ? "fg" : "bg";
      if (codes[i + 1] === 5 && i + 2 < codes.length) {
        const n = Math.max(0, Math.min(255, codes[i + 2] | 0));
        s[key] = n < 16 ? n : xterm256(n);
        i += 2;
      } else if (codes[i + 1] === 2 && i + 4 < codes.length) {
        s[key] = `rgb(${clampByte(codes[i + 2])},${clampByte(codes[i + 3])},${clampByte(codes[i + 4])})`;
        i += 4;
      } else {
        break; // malformed: ignore the rest
      }
    }
  }
  return s;
}

function sameStyle(a, b) {
  return a.fg === b.fg && a.bg === b.bg && a.bold === b.bold && a.dim === b.dim && a.italic === b.italic &&
    a.underline === b.underline && a.inverse === b.inverse && a.strike === b.strike;
}

/**
 * Split `text` into [{text, style}] segments. `style` is the style in force at the start (to carry
 * colours across lines); the style at the end is returned too.
 */
export function parseAnsi(text, style = initialStyle()) {
  const segments = [];
  let current = style;
  let last = 0;
  const push = (chunk) => {
    if (!chunk) return;
    const prev = segments[segments.length - 1];
    if (prev && sameStyle(prev.style, current)) prev.text += chunk;
    else segments.push({ text: chunk, style: current });
  };
  ESCAPE_RE.lastIndex = 0;
  let m;
  while ((m = ESCAPE_RE.exec(text)) !== null) {
    push(text.slice(last, m.index));
    if (m[2] === "m") current = applySgr(current, m[1] || "");
    last = ESCAPE_RE.lastIndex;
    if (m[0].length === 0) ESCAPE_RE.lastIndex++; // never loop on an empty match
  }
  push(text.slice(last));
  return { segments, style: current };
}

/** The text without any escape sequence. */
export function stripAnsi(text) {
  return parseAnsi(text).segments.map((s) => s.text).join("");
}

/** CSS classes and inline colours for a style: {classes: [...], color, background}. */
export function styleToCss(style) {
  const classes = [];
  let fg = style.fg;
  let bg = style.bg;
  if (style.inverse) [fg, bg] = [bg ?? "default-bg", fg ?? "default-fg"];
  const out = { classes, color: null, background: null };
  if (typeof fg === "number") classes.push(`cj-ansi-fg-${fg}`);
  else if (fg === "default-fg") classes.push("cj-ansi-fg-inverse");
  else if (typeof fg === "string" && fg !== "default-bg") out.color = fg;
  else if (fg === "default-bg") classes.push("cj-ansi-fg-inverse");
  if (typeof bg === "number") classes.push(`cj-ansi-bg-${bg}`);
  else if (bg === "default-fg") classes.push("cj-ansi-bg-inverse");
  else if (typeof bg === "string" && bg !== "default-bg") out.background = bg;
  if (style.bold) classes.push("cj-ansi-bold");
  if (style.dim) classes.push("cj-ansi-dim");
  if (style.italic) classes.push("cj-ansi-italic");
  if (style.underline) classes.push("cj-ansi-underline");
  if (style.strike) classes.push("cj-ansi-strike");
  return out;
}

/**
 * Split styled segments further so that matches of `query` (case-insensitive) are marked:
 * [{text, style, mark}]. Matches may span segment boundaries.
 */
export function highlightSegments(segments, query) {
  if (!query) return segments.map((s) => ({ ...s, mark: false }));
  const full = segments.map((s) => s.text).join("");
  const lower = full.toLowerCase();
  const q = query.toLowerCase();
  const ranges = [];
  let from = 0;
  while (q && (from = lower.indexOf(q, from)) !== -1) {
    ranges.push([from, from + q.length]);
    from += q.length;
  }
  if (!ranges.length) return segments.map((s) => ({ ...s, mark: false }));
  const out = [];
  let offset = 0;
  let r = 0;
  for (const seg of segments) {
    const start = offset;
    const end = offset + seg.text.length;
    let pos = start;
    while (pos < end) {
      while (r < ranges.length && ranges[r][1] <= pos) r++;
      const range = ranges[r];
      if (!range || range[0] >= end) {
        out.push({ text: full.slice(pos, end), style: seg.style, mark: false });
        pos = end;
      } else if (range[0] > pos) {
        out.push({ text: full.slice(pos, range[0]), style: seg.style, mark: false });
        pos = range[0];
      } else {
        const stop = Math.min(range[1], end);
        out.push({ text: full.slice(pos, stop), style: seg.style, mark: true });
        pos = stop;
      }
    }
    offset = end;
  }
  return out;
}

/** How many times `query` occurs in `text` (case-insensitive, non-overlapping). */
export function countMatches(text, query) {
  if (!query) return 0;
  const lower = text.toLowerCase();
  const q = query.toLowerCase();
  let n = 0;
  let from = 0;
  while ((from = lower.indexOf(q, from)) !== -1) {
    n++;
    from += q.length;
  }
  return n;
}
