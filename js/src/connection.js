// Whether a view is still connected to its kernel. The widget's comm closes, or (JupyterLab,
// Notebook 7) the kernel restarts, dies or is replaced: `onLost(why)` is called once, at once —
// not after the silence check's ~20 s. Front ends without these objects only get the comm event.

const LOST = new Set(["restarting", "autorestarting", "dead", "terminating"]);

export function watchConnection(model, onLost) {
  let lost = false;
  const manager = model.widget_manager;
  let kernel = null;
  try {
    kernel = manager && manager.kernel && typeof manager.kernel === "object" ? manager.kernel : null;
  } catch (_err) {
    kernel = null;
  }
  const lose = (why) => {
    if (lost) return;
    lost = true;
    onLost(why);
  };
  const check = () => {
    if (lost) return;
    try {
      if (manager && manager.isDisposed) lose("the notebook's kernel changed");
      else if (kernel && (kernel.isDisposed || LOST.has(kernel.status))) lose(`the kernel is ${kernel.isDisposed ? "gone" : kernel.status}`);
    } catch (_err) {
      // a front end without these properties: the silence check still says it
    }
  };
  const onCommClose = () => lose("the widget's connection to the kernel closed");
  try {
    if (kernel && kernel.statusChanged && typeof kernel.statusChanged.connect === "function") kernel.statusChanged.connect(check);
  } catch (_err) {
    // not a JupyterLab kernel connection
  }
  model.on("comm:close", onCommClose);
  return {
    check,
    get lost() {
      return lost;
    },
    dispose() {
      model.off("comm:close", onCommClose);
      try {
        if (kernel && kernel.statusChanged) kernel.statusChanged.disconnect(check);
      } catch (_err) {
        // already gone
      }
    },
  };
}
