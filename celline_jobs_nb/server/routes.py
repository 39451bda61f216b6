"""Where the extension is served and what an authorizer is asked about: one place for the names the
package's ``__init__`` (the Jupyter hooks) and ``handlers`` (the routes) both use."""

from __future__ import annotations

#: The ``authorized`` resource name: a deployment's authorizer may grant "read" (every GET and the
#: WebSockets) without "write" (cancel, retry).
AUTH_RESOURCE = "celline-jobs"
BASE = "celline-jobs"
API_PREFIX = f"{BASE}/api/v1"
