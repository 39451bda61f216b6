// The rows a view has: one window of the kernel's sorted, filtered table (the kernel answers window
// requests from its store and sends, each tick, only what changed in a view's window). Pure: no DOM.
//
// A window is `offset` (the position of its first top-level row), `ids` (its top-level rows in
// order), `children` (the rows listed under each expanded one), `rows` (every row by id), `kids`
// (how many rows each lists under it) and `total` (top-level rows matching the query). Positions
// in the scrolled list ("items") count the top-level rows before the window, the window's rows
// with their expanded children, then the top-level rows after it.

export const WINDOW_MARGIN = 40; // rows asked for above and below the visible ones
export const MAX_WINDOW = 600; // the kernel's limit is higher: this keeps each answer small

export class WindowStore {
  constructor() {
    this.req = null; // the request this window answers (null: the widget's first window)
    this.offset = 0;
    this.limit = 0;
    this.ids = [];
    this.rows = new Map();
    this.children = new Map();
    this.kids = {};
    this.total = 0;
    this.notice = ""; // the kernel's note when the query does not search the whole history
    this.counts = {};
    this.query = null;
    this.version = 0;
  }

  /** A whole window (the kernel's answer to a request, or the widget's first window). */
  load(msg, req = null) {
    if (!msg || !Array.isArray(msg.ids)) return false;
    this.req = req;
    this.offset = safeInt(msg.offset);
    this.limit = safeInt(msg.limit) || msg.ids.length;
    this.ids = msg.ids.map(String);
    this.rows = new Map();
    for (const row of msg.rows || []) if (row && row.id !== undefined) this.rows.set(String(row.id), row);
    this.children = new Map();
    for (const [parent, list] of Object.entries(msg.children || {})) {
      if (Array.isArray(list)) this.children.set(parent, list.map(String));
    }
    this.kids = cleanKids(msg.kids);
    this.total = safeInt(msg.total);
    this.notice = typeof msg.notice === "string" ? msg.notice.slice(0, 300) : "";
    if (msg.counts) this.counts = cleanCounts(msg.counts);
    if (msg.query) this.query = msg.query;
    this.version++;
    return true;
  }

  /** A tick's diff of this window: changed rows, and the new order/children/kids/total if they moved. */
  apply(diff) {
    if (!diff || safeInt(diff.offset) !== this.offset) return false;
    for (const row of diff.rows || []) if (row && row.id !== undefined) this.rows.set(String(row.id), row);
    if (Array.isArray(diff.ids)) this.ids = diff.ids.map(String);
    for (const [parent, list] of Object.entries(diff.children || {})) {
      if (Array.isArray(list)) this.children.set(parent, list.map(String));
    }
    for (const parent of diff.collapsed || []) this.children.delete(String(parent));
    if (diff.kids) this.kids = cleanKids(diff.kids);
    if (diff.total !== undefined) this.total = safeInt(diff.total);
    // Rows no longer in the window or under an expanded row are dropped (the kernel has them).
    const keep = new Set(this.ids);
    for (const [parent, list] of this.children) if (keep.has(parent)) for (const id of list) keep.add(id);
    for (const id of [...this.rows.keys()]) if (!keep.has(id)) this.rows.delete(id);
    this.version++;
    return true;
  }

  /** Update one row wherever it is shown (the selected job's row from a tick). */
  update(row) {
    if (!row || !this.rows.has(String(row.id))) return false;
    this.rows.set(String(row.id), row);
    this.version++;
    return true;
  }

  /** The window's items: each top-level row, then (when expanded) the rows under it. */
  items(expanded) {
    const out = [];
    for (const id of this.ids) {
      const row = this.rows.get(id);
      if (!row) continue;
      const children = this.children.get(id);
      const [tasks, attempts] = this.kids[id] || [0, 0];
      const isOpen = Boolean(children && expanded.has(id));
      out.push({ row, depth: 0, childCount: tasks + attempts, expanded: isOpen, attempts });
      if (isOpen) {
        for (const cid of children) {
          const child = this.rows.get(cid);
          if (!child) continue;
          const attempt = child.parent !== id; // not a task of this array: an earlier attempt
          out.push({ row: child, depth: 1, childCount: 0, expanded: false, attempt });
        }
      }
    }
    return out;
  }

  /** How many items the scrolled list has (top-level rows, plus the rows under expanded ones here). */
  length(items) {
    return this.total + Math.max(0, items.length - this.ids.length);
  }

  /**
   * What to show at list positions [start, end): [{index, item}] with item null where the row is
   * not loaded yet, and the top-level range [first, last) those positions need.
   */
  slice(items, start, end) {
    const extra = Math.max(0, items.length - this.ids.length);
    const out = [];
    let first = Infinity;
    let last = -Infinity;
    for (let i = start; i < end; i++) {
      let item = null;
      let top;
      if (i < this.offset) top = i;
      else if (i < this.offset + items.length) {
        item = items[i - this.offset];
        top = null;
      } else top = i - extra;
      if (top !== null) {
        first = Math.min(first, top);
        last = Math.max(last, top + 1);
      }
      out.push({ index: i, item });
    }
    return { rows: out, missing: first < last ? { first, last } : null };
  }

  /** The window to ask for so that top-level rows [first, last) are in it (with a margin). */
  static around(first, last, total) {
    const offset = Math.max(0, first - WINDOW_MARGIN);
    const limit = Math.min(MAX_WINDOW, last - first + 2 * WINDOW_MARGIN);
    return { offset: Math.min(offset, Math.max(0, total - 1)), limit };
  }
}

function safeInt(value) {
  const n = Number(value);
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}

/** {id: [array tasks, earlier attempts]}: pairs of whole numbers only. */
function cleanKids(given) {
  const out = {};
  if (!given || typeof given !== "object") return out;
  for (const [key, value] of Object.entries(given)) {
    if (!Array.isArray(value)) continue;
    const pair = [safeInt(value[0]), safeInt(value[1])];
    if (pair[0] + pair[1] > 0) out[String(key)] = pair;
  }
  return out;
}

function cleanCounts(given) {
  const out = {};
  if (!given || typeof given !== "object") return out;
  for (const [key, value] of Object.entries(given)) {
    const n = Number(value);
    if (Number.isSafeInteger(n) && n > 0) out[String(key)] = n;
  }
  return out;
}
