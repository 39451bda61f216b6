// The optional browser notification behind the bell (the in-widget notices are notices.js).
// The permission is only ever requested from the bell's click handler, never automatically.

import { h } from "./dom.js";
import { notificationSupport } from "./notify.js";
import { bellIcon } from "./sparkline.js";

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
