"""A real ``jupyter server`` subprocess on 127.0.0.1 with a token and the celline-jobs extension,
for the JobAPI tests (integration and e2e) and the benchmark."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Server extensions installed beside ours, off in these servers (a faster start; nothing of ours needs them).
OTHER_EXTENSIONS = ("jupyterlab", "notebook", "notebook_shim", "voila.server_extension", "jupyter_lsp",
                    "jupyter_server_terminals", "nbclassic", "jupyter_server_ydoc", "jupyter_collaboration")


REPO = Path(__file__).resolve().parents[1]


try:  # the server subprocess imports this module to find the authorizer below
    from jupyter_server.auth.authorizer import Authorizer
except ImportError:  # pragma: no cover - without jupyter_server the tests that use it skip
    Authorizer = object  # type: ignore[misc,assignment]


class ReadOnlyAuthorizer(Authorizer):  # type: ignore[misc,valid-type]
    """A deployment's authorizer that grants celline-jobs "read" and nothing else."""

    def is_authorized(self, handler, user, action, resource):
        return resource != "celline-jobs" or action == "read"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    token: str
    root: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str) -> str:
        return f"{self.url}/celline-jobs/api/v1/{path}"

    def ws(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}/celline-jobs/api/v1/{path}"

    def request(self, method: str, path: str, *, token: bool = True, body: Any = None,
                headers: dict[str, str] | None = None, full_url: str | None = None) -> tuple[int, Any]:
        """(status, parsed JSON or text) of one request; never raises for an HTTP error."""
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = urllib.request.Request(full_url or self.api(path), data=data, method=method)
        if token:
            req.add_header("Authorization", f"token {self.token}")
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, raw, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as err:
            status, raw, ctype = err.code, err.read(), err.headers.get("Content-Type", "")
        if "json" in ctype:
            return status, json.loads(raw or b"null")
        return status, raw.decode("utf-8", errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_server(root: Path, home: Path, *, extra_env: dict[str, str] | None = None,
                 extra_args: tuple[str, ...] = ()) -> Server:
    """``jupyter server`` with only this package's extension enabled (its own config and runtime dirs):
    enabled by the very file a pip install puts in ``etc/jupyter/jupyter_server_config.d``."""
    config = home / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "jupyter_server_config.json").write_text(json.dumps(
        {"ServerApp": {"jpserver_extensions": {name: False for name in OTHER_EXTENSIONS}}}))
    token = secrets.token_hex(16)
    port = free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTER_DATA_DIR": str(home / "data"), "JUPYTER_PLATFORM_DIRS": "1",
           "JUPYTER_CONFIG_PATH": str(REPO / "jupyter-config"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "tests"), os.environ.get("PYTHONPATH")])),
           **(extra_env or {})}
    log = home / "server.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--ServerApp.open_browser=False", "--allow-root", "--ServerApp.disable_check_xsrf=False", *extra_args],
        env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT, cwd=root, start_new_session=True)
    server = Server(process, port, token, root, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter server exited {process.returncode}: {log.read_text()[-2000:]}")
        try:
            status, _ = server.request("GET", "", full_url=f"{server.url}/api/status")
            if status == 200:
                return server
        except OSError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"jupyter server did not start in 60 s: {log.read_text()[-2000:]}")
