// One timer per view that fires every second: the Runtime column, "Updated N s ago" and ETAs
// advance in the browser without any kernel message. Timers are injectable for tests.

export function createTicker(callback, { intervalMs = 1000, timers = globalThis } = {}) {
  let handle = null;
  return {
    start() {
      if (handle === null) handle = timers.setInterval(() => callback(Date.now()), intervalMs);
      return this;
    },
    stop() {
      if (handle !== null) timers.clearInterval(handle);
      handle = null;
    },
    get running() {
      return handle !== null;
    },
  };
}
