"""The JobAPI handlers (``/celline-jobs/api/v1/``) and the standalone page (``/celline-jobs/``).

Authentication and authorization are Jupyter's own: token or login cookie, XSRF on POST, and the
``authorized`` decorators with the resource name ``celline-jobs`` (GET and the WebSockets are
"read", cancel and retry "write"), so a deployment's authorizer can grant read-only access.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized, ws_authenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.utils import url_path_join
from tornado import web, websocket

from ..core.errors import CellineJobsError, InvalidInputError, JobNotFoundError, StoreError
from ..core.models import JobStatus
from .hub import LogStream, ProjectError, ProjectHub, hub_for, job_json, progress_json, resolve_project
from .routes import API_PREFIX, AUTH_RESOURCE, BASE

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_BODY = 64 * 1024
MAX_LIMIT = 1_000_000


def _project_root(handler: JupyterHandler) -> Path:
    return resolve_project(handler.settings.get("server_root_dir") or ".", handler.get_query_argument("project", None))


def _status_of(exc: CellineJobsError) -> int:
    if isinstance(exc, ProjectError):
        return exc.status
    if isinstance(exc, JobNotFoundError):
        return 404
    if isinstance(exc, InvalidInputError):
        return 400
    if isinstance(exc, StoreError) and "read-only" in str(exc):
        return 403
    return 503


class _ApiError(web.HTTPError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, log_message=message.replace("%", "%%"))
        self.message = message


class _Api(APIHandler):
    auth_resource = AUTH_RESOURCE

    def hub(self) -> ProjectHub:
        try:
            root = _project_root(self)
            return hub_for(root)
        except CellineJobsError as exc:
            raise _ApiError(_status_of(exc), str(exc)) from None

    def fail(self, exc: CellineJobsError) -> _ApiError:
        return _ApiError(_status_of(exc), str(exc))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "message", None) or getattr(exc, "log_message", None) or self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": str(message).replace("%%", "%"), "status": status_code}))

    def reply(self, data: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(data))


class JobsHandler(_Api):
    @web.authenticated
    @authorized
    def get(self) -> None:
        hub = self.hub()
        status = self.get_query_argument("status", None)
        limit_text = self.get_query_argument("limit", None)
        try:
            statuses = [JobStatus.parse(s) for s in status.split(",") if s.strip()] if status else None
            limit = None
            if limit_text is not None:
                if not limit_text.isdigit() or not 0 < int(limit_text) <= MAX_LIMIT:
                    raise InvalidInputError(f"invalid limit {limit_text[:20]!r}: give a whole number from 1 "
                                            f"to {MAX_LIMIT}")
                limit = int(limit_text)
            jobs = hub.monitor.list_jobs(statuses, limit=limit)
        except CellineJobsError as exc:
            raise self.fail(exc) from None
        self.reply({"jobs": [job_json(j) for j in jobs]})


class JobHandler(_Api):
    @web.authenticated
    @authorized
    def get(self, job_id: str) -> None:
        hub = self.hub()
        try:
            self.reply(job_json(hub.monitor.get_job(job_id)))
        except CellineJobsError as exc:
            raise self.fail(exc) from None


class ProgressHandler(_Api):
    @web.authenticated
    @authorized
    def get(self, job_id: str) -> None:
        hub = self.hub()
        try:
            self.reply(progress_json(hub.monitor.get_job(job_id)))
        except CellineJobsError as exc:
            raise self.fail(exc) from None


class CancelHandler(_Api):
    @web.authenticated
    @authorized
    async def post(self, job_id: str) -> None:
        hub = self.hub()
        try:
            full_id = hub.monitor.store.resolve(job_id)
            # cancel waits (up to 3 s) for the end: on a thread, never on the IOLoop
            cancelled = await asyncio.get_running_loop().run_in_executor(None, hub.monitor.cancel_job, full_id)
        except CellineJobsError as exc:
            raise self.fail(exc) from None
        self.reply({"cancelled": bool(cancelled), "job_id": full_id})


class RetryHandler(_Api):
    @web.authenticated
    @authorized
    async def post(self, job_id: str) -> None:
        hub = self.hub()
        resources = None
        body = self.request.body or b""
        if len(body) > MAX_BODY:
            raise _ApiError(413, f"request body over {MAX_BODY} bytes: send {{\"resources\": \"mem=64G\"}} at most")
        if body.strip():
            try:
                data = json.loads(body)
            except ValueError:
                raise _ApiError(400, 'invalid JSON body: send {"resources": "mem=64G"} or nothing') from None
            if not isinstance(data, dict) or not isinstance(data.get("resources", ""), (str, type(None))):
                raise _ApiError(400, 'invalid body: send {"resources": "mem=64G"} (a string) or nothing')
            resources = data.get("resources") or None
        try:
            full_id = hub.monitor.store.resolve(job_id)
            new_id = await asyncio.get_running_loop().run_in_executor(None, hub.monitor.retry_job, full_id, resources)
        except InvalidInputError as exc:
            raise _ApiError(409 if "still" in str(exc) else 400, str(exc)) from None
        except CellineJobsError as exc:
            raise self.fail(exc) from None
        self.reply({"job_id": new_id, "retry_of": full_id})


class _Socket(WebSocketMixin, JupyterHandler, websocket.WebSocketHandler):
    """A WebSocket behind Jupyter's login, authorized as a "read" of ``celline-jobs``."""

    auth_resource = AUTH_RESOURCE
    hub_: ProjectHub
    closed = False

    async def _prepare_socket(self, *args: Any) -> None:
        authorized_ = await ensure_async(self.authorizer.is_authorized(self, self.current_user, "read", AUTH_RESOURCE))
        if not authorized_:
            raise web.HTTPError(403, f"not authorized to read {AUTH_RESOURCE}")
        try:
            root = _project_root(self)
            self.hub_ = hub_for(root)
        except CellineJobsError as exc:
            raise web.HTTPError(_status_of(exc), str(exc).replace("%", "%%")) from None

    @ws_authenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        await self._prepare_socket(*args)
        await self._check_args(*args, **kwargs)
        result = super().get(*args, **kwargs)
        if result is not None:
            await result

    async def _check_args(self, *args: Any, **kwargs: Any) -> None:
        return None

    def send(self, message: dict[str, Any]) -> None:
        if not self.closed:
            try:
                self.write_message(json.dumps(message))
            except websocket.WebSocketClosedError:
                self.closed = True

    def on_close(self) -> None:
        self.closed = True
        super().on_close()


class EventsSocket(_Socket):
    def open(self, *args: Any, **kwargs: Any) -> None:
        super().open(*args, **kwargs)
        self.hub_.subscribe(self.send)
        self.send({"type": "hello", "timestamp": None})

    def on_close(self) -> None:
        super().on_close()
        self.hub_.unsubscribe(self.send)


class LogsSocket(_Socket):
    stream: LogStream | None = None

    async def _check_args(self, job_id: str) -> None:
        start = self.get_query_argument("from", None)
        if start is not None and (not start.lstrip("-").isdigit() or start.count("-") > 1 or len(start) > 18):
            raise web.HTTPError(400, "invalid from: give a byte offset (or -N: the last N bytes)")
        self.start = int(start) if start else 0
        try:
            self.job_id = self.hub_.monitor.store.resolve(job_id)
            self.path = self.hub_.monitor.log_path(self.job_id)
        except CellineJobsError as exc:
            raise web.HTTPError(_status_of(exc), str(exc).replace("%", "%%")) from None

    def open(self, *args: Any, **kwargs: Any) -> None:
        super().open(*args, **kwargs)
        self.stream = LogStream(self.path, self.start, self.send, self.close)
        self.hub_.follow(self.job_id, self.path, self.stream)

    def on_close(self) -> None:
        super().on_close()
        if self.stream is not None:
            watch = self.hub_.watches.get(self.job_id)
            if watch is not None:
                watch.remove(self.stream)


class PageHandler(JupyterHandler):
    """The dashboard outside notebooks: the same JS, driven by the JobAPI."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    def get(self) -> None:
        project = self.get_query_argument("project", None) or "."  # `celline-jobs serve`: the root is the project
        try:
            resolve_project(self.settings.get("server_root_dir") or ".", project)
        except ProjectError as exc:
            raise web.HTTPError(exc.status, str(exc).replace("%", "%%")) from None
        html = (STATIC_DIR / "page.html").read_text(encoding="utf-8")
        base = url_path_join(self.base_url, BASE)
        config = json.dumps({"base": base, "project": project, "xsrf": self.xsrf_token.decode("ascii")})
        # JSON in a <script type="application/json">: "<" escaped so nothing can close the element
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(html.replace("__CONFIG__", config.replace("<", "\\u003c").replace(">", "\\u003e")))


class StaticHandler(JupyterHandler, web.StaticFileHandler):
    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized("read")
    def get(self, path: str, include_body: bool = True) -> Any:
        return web.StaticFileHandler.get(self, path, include_body)

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", "no-cache")


#: Every API route, as docs/jobapi.yaml names it (a test keeps the two the same).
API_ROUTES: list[tuple[str, type[web.RequestHandler]]] = [
    ("/jobs", JobsHandler),
    ("/jobs/{job_id}", JobHandler),
    ("/jobs/{job_id}/cancel", CancelHandler),
    ("/jobs/{job_id}/retry", RetryHandler),
    ("/jobs/{job_id}/progress", ProgressHandler),
    ("/jobs/{job_id}/logs", LogsSocket),
    ("/events", EventsSocket),
]
JOB_ID_PATTERN = r"(?P<job_id>[A-Za-z0-9_.\-]{1,100})"


def setup_handlers(serverapp: Any) -> None:
    web_app = serverapp.web_app
    base_url = web_app.settings["base_url"]
    api = url_path_join(base_url, API_PREFIX)
    handlers: list[tuple[Any, ...]] = [
        (api + path.replace("{job_id}", JOB_ID_PATTERN) + "/?", handler) for path, handler in API_ROUTES]
    handlers += [
        (url_path_join(base_url, BASE) + r"/?", PageHandler),
        (url_path_join(base_url, BASE, "static") + r"/(.*)", StaticHandler, {"path": str(STATIC_DIR)}),
    ]
    web_app.add_handlers(".*$", handlers)
    serverapp.log.info("celline-jobs: JobAPI at %s/", api)
