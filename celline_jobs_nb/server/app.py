"""``celline-jobs serve``: the JobAPI extension and its page in a Jupyter Server of their own, for
people without JupyterLab. Bound to 127.0.0.1 only, behind a fresh token printed with the page's URL;
no other server extension is loaded."""

from __future__ import annotations

import os
import secrets
import signal
import sys
from pathlib import Path
from typing import TextIO

DEFAULT_PORT = 8765


def page_url(port: int, token: str, project: str = ".") -> str:
    return f"http://127.0.0.1:{port}/celline-jobs/?project={project}&token={token}"


def serve(project: Path, port: int | None = None, *, out: TextIO | None = None) -> int:
    """Run until interrupted (Ctrl-C). The server's root directory is the project itself."""
    from jupyter_server.serverapp import ServerApp
    from traitlets.config import Config

    out = out or sys.stdout
    token = secrets.token_urlsafe(24)
    config = Config()
    config.ServerApp.jpserver_extensions = {"celline_jobs_nb.server": True}
    config.ServerApp.ip = "127.0.0.1"
    config.ServerApp.port = port if port is not None else DEFAULT_PORT
    config.ServerApp.port_retries = 0 if port is not None else 50
    config.ServerApp.root_dir = str(project)
    config.ServerApp.open_browser = False
    config.ServerApp.allow_root = os.geteuid() == 0  # bound to 127.0.0.1 behind a token, nothing else loaded
    config.ServerApp.default_url = "/celline-jobs/"
    config.IdentityProvider.token = token
    app = ServerApp(config=config)
    app.initialize(argv=[], find_extensions=False)
    # Ctrl-C stops at once (Jupyter's own handler asks for a confirmation on a terminal)
    signal.signal(signal.SIGINT, lambda *_: app.stop(from_signal=True))
    print(f"celline-jobs: serving {project} at\n    {page_url(app.port, token)}\n"
          "(Ctrl-C stops the server, not the jobs)", file=out, flush=True)
    app.start()
    return 0
