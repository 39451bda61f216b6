// The log panel's lines, rebuilt from the kernel's two traits: `snapshot` ({gen, lines}: the
// buffer at the last compaction or job change) and `tail` ({gen, seq, lines, partial}: every line
// appended since). Pure: no DOM. `sync` says what to redraw: everything (reset) or only new lines.

export class LogBuffer {
  constructor(maxLines = 2000) {
    this.maxLines = maxLines;
    this.gen = null;
    this.tailSeen = 0;
    this.lines = [];
    this.partial = "";
  }

  sync(snapshot, tail) {
    let reset = false;
    let appended = [];
    let dropped = 0;
    if (snapshot && snapshot.gen !== undefined && snapshot.gen !== this.gen) {
      this.gen = snapshot.gen;
      this.lines = (snapshot.lines || []).slice(-this.maxLines);
      this.tailSeen = 0;
      this.partial = "";
      reset = true;
    }
    if (tail && tail.gen === this.gen) {
      const tailLines = tail.lines || [];
      if (tailLines.length < this.tailSeen) {
        // Cannot happen within one generation; rebuild rather than show a wrong log.
        this.lines = [...((snapshot && snapshot.lines) || []), ...tailLines].slice(-this.maxLines);
        reset = true;
      } else if (tailLines.length > this.tailSeen) {
        appended = tailLines.slice(this.tailSeen);
        this.lines.push(...appended);
        if (this.lines.length > this.maxLines) {
          dropped = this.lines.length - this.maxLines;
          this.lines.splice(0, dropped);
        }
        if (appended.length > this.maxLines) appended = appended.slice(-this.maxLines);
      }
      this.tailSeen = tailLines.length;
      this.partial = tail.partial || "";
    }
    if (reset) {
      appended = [];
      dropped = 0;
    }
    return { reset, appended, dropped, partial: this.partial };
  }
}
