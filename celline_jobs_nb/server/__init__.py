"""The Jupyter Server extension: the seed's JobAPI over HTTP and WebSocket, and a page outside notebooks.

Served under ``/celline-jobs/`` by the Jupyter server the user already runs (behind its login, no new
port): ``/celline-jobs/api/v1/...`` (see docs/jobapi.yaml) and the standalone page
``/celline-jobs/?project=P``. Every reader goes through ``JobMonitor``; one poller per project is
shared by all clients (``hub.py``). ``celline-jobs serve`` runs the same extension in a Jupyter
Server of its own (``app.py``). Importing this package loads neither tornado nor jupyter_server:
they load when the server calls the hooks below.
"""

from __future__ import annotations

from typing import Any

from .routes import API_PREFIX, AUTH_RESOURCE, BASE

__all__ = ["API_PREFIX", "AUTH_RESOURCE", "BASE", "load_jupyter_server_extension"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "celline_jobs_nb.server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from .handlers import setup_handlers

    setup_handlers(serverapp)


# Older Jupyter servers (notebook < 7) look for this name.
load_jupyter_server_extension = _load_jupyter_server_extension


async def _unload_jupyter_server_extension(serverapp: Any) -> None:
    from .hub import close_all

    close_all()
