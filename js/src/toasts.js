// Toasts inside the widget (text only) and the optional browser notification behind the bell.
// The permission is only ever requested from the bell's click handler, never automatically.

import { h, clear } from "./dom.js";
import { notificationSupport } from "./notify.js";
import { bellIcon } from "./sparkline.js";

const MAX_TOASTS = 3;
const TOAST_MS = { ok: 6000, warn: 10000, error: 20000 };

/** A stack of toasts in `container`; `onShow(jobId)` is called by a single job's "Show" button. */
export function createToaster(container, { onShow = null, timers = globalThis } = {}) {
  const live = [];
  function remove(entry) {
    const i = live.indexOf(entry);
    if (i >= 0) live.splice(i, 1);
    timers.clearTimeout(entry.timer);
    entry.el.remove();
  }
  return {
    /** Show one toast for a summary from summarizeEnded (null: nothing). */
    show(summary) {
      if (!summary) return null;
      const close = h("button", { class: "cj-toast-close", type: "button", title: "Dismiss", "aria-label": "Dismiss" }, "×");
      const body = summary.body ? h("div", { class: "cj-toast-body" }, summary.body) : null;
      const buttons = [];
      if (summary.jobId && onShow) {
        const show = h("button", { class: "cj-btn cj-link cj-toast-show", type: "button" }, "Show");
        show.addEventListener("click", () => onShow(summary.jobId));
        buttons.push(show);
      }
      const el = h("div", {
        class: `cj-toast cj-toast-${summary.level}`, role: summary.level === "error" ? "alert" : "status",
        "data-count": String(summary.count),
      }, h("div", { class: "cj-toast-title" }, summary.title), body, buttons, close);
      const entry = { el, timer: null };
      close.addEventListener("click", () => remove(entry));
      entry.timer = timers.setTimeout(() => remove(entry), TOAST_MS[summary.level] || TOAST_MS.ok);
      container.append(el);
      live.push(entry);
      while (live.length > MAX_TOASTS) remove(live[0]);
      return el;
    },
    clear() {
      for (const entry of [...live]) remove(entry);
      clear(container);
    },
    get count() {
      return live.length;
    },
  };
}

/**
 * The bell: off by default; a click turns browser notifications on, asking for the permission
 * then (and only then) if the browser has not been asked yet. `say(text)` reports problems.
 */
export function createBell({ say = () => {}, globalObj = globalThis } = {}) {
  const state = { on: false };
  const label = h("span", { class: "cj-bell-label" });
  const button = h("button", { class: "cj-btn cj-bell", type: "button", "aria-pressed": "false" }, bellIcon(), label);
  function render() {
    const support = notificationSupport(globalObj);
    label.textContent = state.on ? "Notify: on" : "Notify";
    button.setAttribute("aria-pressed", String(state.on));
    button.classList.toggle("cj-active", state.on);
    button.title = support === "unsupported"
      ? "Browser notifications are not available here (only toasts in this widget)"
      : support === "denied"
        ? "Browser notifications are blocked for this site: allow them in the browser's site settings"
        : state.on
          ? "Browser notifications on: a notification when jobs end while this tab is in the background. Click to turn off."
          : "Also notify me in the browser when jobs end (asks the browser's permission once)";
  }
  button.addEventListener("click", async () => {
    if (state.on) {
      state.on = false;
      render();
      return;
    }
    const support = notificationSupport(globalObj);
    if (support === "unsupported") {
      say("Browser notifications are not available here; the widget still shows toasts.");
    } else if (support === "denied") {
      say("Browser notifications are blocked for this site: allow them in the browser's site settings.");
    } else if (support === "granted") {
      state.on = true;
    } else {
      let answer = "default";
      try {
        answer = await globalObj.Notification.requestPermission();
      } catch (error) {
        answer = "default";
      }
      if (answer === "granted") state.on = true;
      else say(answer === "denied" ? "Browser notifications were not allowed." : "Browser notifications were not enabled.");
    }
    render();
  });
  render();
  return {
    button,
    get on() {
      return state.on;
    },
    /** A browser notification for `summary`, when on and the page is not in front. */
    notify(summary) {
      if (!summary || !state.on || notificationSupport(globalObj) !== "granted") return null;
      const doc = globalObj.document;
      const inFront = doc && doc.visibilityState === "visible" && typeof doc.hasFocus === "function" && doc.hasFocus();
      if (inFront) return null; // the toast is enough
      try {
        return new globalObj.Notification(summary.title, { body: summary.body || "", tag: summary.tag });
      } catch (error) {
        return null; // e.g. Android Chrome needs a service worker: toasts only
      }
    },
  };
}
