"""The plain-HTML copy of the job table that a saved notebook carries: honest when saved at any time.

Where the widget's JavaScript does not run — GitHub, nbviewer, ``jupyter nbconvert --to html``
opened offline — a notebook shows what its outputs hold as plain HTML. A widget output's own
``text/html`` does not help: nbconvert shows the widget view instead as soon as the notebook
holds the widget's saved state (``jupyter execute`` saves it), and that view needs scripts from
a CDN. So the dashboard shows the table as a second output of its own (``text/html``, with a
``display_id``) right after the widget, and keeps it current with ``update_display``:

- when jobs end (a status changes), at most every ``min_interval`` seconds, from the poller's
  thread (a front end applies it whatever cell runs; JupyterLab saves what it shows);
- at the end of every cell run (in the cell's own context, so ``jupyter execute`` records it).

A live view hides this copy next to itself (widget.css: an output area that holds a live
``.cj-root`` hides its ``.celline-jobs-fallback``); where the widget does not render, it shows.
"""

from __future__ import annotations

import html
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

log = logging.getLogger("celline.job")

FALLBACK_CLASS = "celline-jobs-fallback"


class HtmlFallback:
    """A display of ``render()`` (``(html, text)``) that can be updated in place."""

    def __init__(self, render: Callable[[], tuple[str, str]], min_interval: float = 5.0) -> None:
        self.render = render
        self.min_interval = min_interval
        self.display_id = f"celline-jobs-{uuid.uuid4().hex}"
        self.shown = False
        self.dirty = False
        self.updates = 0
        self._last = float("-inf")
        self._lock = threading.Lock()

    def bundle(self) -> dict[str, str]:
        body, text = self.render()
        wrapped = (f'<div class="{FALLBACK_CLASS}" data-display-id="{html.escape(self.display_id)}">'
                   f"{body}</div>")
        return {"text/html": wrapped, "text/plain": text}

    def show(self) -> None:
        """Display the copy (once per display of the widget) below the widget."""
        from IPython.display import display

        display(self.bundle(), raw=True, display_id=self.display_id)
        with self._lock:
            self.shown = True
            self.dirty = False
            self._last = time.monotonic()

    def changed(self) -> None:
        """Something the copy shows changed (a job ended): update it, at most every ``min_interval`` s."""
        with self._lock:
            if not self.shown:
                return
            self.dirty = True
            if time.monotonic() - self._last < self.min_interval:
                return  # the next tick or the end of the cell sends it
        self.flush()

    def flush(self) -> bool:
        """Send the update now if something changed since the last one."""
        with self._lock:
            if not self.shown or not self.dirty:
                return False
            self.dirty = False
            self._last = time.monotonic()
        try:
            from IPython.display import update_display

            update_display(self.bundle(), raw=True, display_id=self.display_id)
            self.updates += 1
            return True
        except Exception:  # no kernel any more: the saved copy stays as it was
            log.debug("could not update the saved table", exc_info=True)
            return False

    def due(self) -> None:
        """A tick: send a change held back by the throttle once its time has come."""
        with self._lock:
            ready = self.dirty and time.monotonic() - self._last >= self.min_interval
        if ready:
            self.flush()


def widget_bundle_without_html(data: dict[str, Any], summary: str) -> dict[str, Any]:
    """The widget output's bundle: the view and a one-line text (the table is the next output)."""
    out = {k: v for k, v in data.items() if k != "text/html"}
    out["text/plain"] = summary
    return out
