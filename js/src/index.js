// Entry point anywidget loads (bundled to celline_jobs_nb/widgets/static/widget.js). One bundle
// serves the three widgets; the Python class says which view it wants in `_kind`.

import { renderTable } from "./table.js";
import { renderLogTail } from "./logtail.js";
import { renderProgress } from "./progress.js";

const VIEWS = { table: renderTable, logtail: renderLogTail, progress: renderProgress };

function render({ model, el }) {
  const kind = model.get("_kind");
  const view = VIEWS[kind];
  if (!view) {
    el.textContent = `celline_jobs_nb: unknown widget kind ${JSON.stringify(kind)}`;
    return undefined;
  }
  return view({ model, el });
}

export default { render };
