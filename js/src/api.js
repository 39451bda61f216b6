// A typed client of the celline-jobs JobAPI (docs/jobapi.yaml): the seed's JobAPI interface
//   listJobs(status?), getJob(jobId), cancelJob(jobId), retryJob(jobId), streamLogs(jobId), getProgress(jobId)
// plus events(). Works in a page served by the Jupyter server (its login cookie, the _xsrf cookie on
// POST) or anywhere with a token. No DOM access here: callers render job text with textContent.

/** @typedef {"pending"|"queued"|"held"|"running"|"completed"|"failed"|"cancelled"|"unknown"} JobStatus */

/**
 * What a job last reported about its progress (the seed's getProgress shape).
 * @typedef {Object} Progress
 * @property {string} job_id
 * @property {number|null} progress   percent, 0-100
 * @property {string|null} stage
 * @property {Object<string, *>} details
 * @property {string|null} timestamp  ISO 8601 UTC
 */

/**
 * One job: the seed's nine fields first, then ours. Times are ISO 8601 UTC strings.
 * @typedef {Object} JobInfo
 * @property {string} job_id
 * @property {string} name
 * @property {JobStatus} status
 * @property {string} command
 * @property {string|null} start_time
 * @property {string|null} end_time
 * @property {string|null} log_file
 * @property {string|null} working_dir
 * @property {Object<string, *>} resources
 * @property {string} scheduler
 * @property {string|null} native_id
 * @property {string} job_type
 * @property {string|null} submit_time
 * @property {number|null} exit_code
 * @property {number|null} signal
 * @property {string|null} reason
 * @property {number} attempt
 * @property {string|null} retry_of
 * @property {string[]} depends_on
 * @property {string|null} array_parent
 * @property {number|null} array_index
 * @property {{percent: number|null, stage: string|null, details: Object, updated_at: string|null}} progress
 * @property {string} created_at
 * @property {string|null} updated_at
 * @property {Object<string, *>} metadata
 * @property {number|null} runtime_seconds
 * @property {string|null} archived_at
 */

/**
 * A message of the log WebSocket.
 * @typedef {Object} LogMessage
 * @property {"log"|"reset"|"end"|"error"} type
 * @property {string} [text]
 * @property {number} [offset]   byte offset after this message (reconnect with {from: offset})
 * @property {number} [bytes_read]
 * @property {boolean} [archived]
 * @property {string} [message]
 */

/**
 * A message of the events WebSocket: one "changes" message per poller tick with changes.
 * @typedef {Object} EventsMessage
 * @property {"hello"|"changes"} type
 * @property {string|null} [timestamp]
 * @property {Array<{kind: "status"|"progress", job_id: string, status?: JobStatus,
 *   previous_status?: string|null, reason?: string|null, progress?: number|null, stage?: string|null}>} [events]
 * @property {JobInfo[]} [jobs]
 * @property {boolean} [truncated]
 */

/**
 * The seed's JobAPI interface.
 * @typedef {Object} JobAPI
 * @property {(status?: JobStatus|JobStatus[], options?: {limit?: number}) => Promise<JobInfo[]>} listJobs  newest first
 * @property {(jobId: string) => Promise<JobInfo>} getJob
 * @property {(jobId: string) => Promise<boolean>} cancelJob
 * @property {(jobId: string, resources?: string) => Promise<string>} retryJob
 * @property {(jobId: string, from?: number) => WebSocket} streamLogs  from: a byte offset, or -N for the last N bytes
 * @property {(jobId: string) => Promise<Progress>} getProgress
 * @property {() => WebSocket} events
 */

/** An answer other than 2xx: `status` is the HTTP status, `message` the server's one-line error. */
export class JobAPIError extends Error {
  /** @param {number} status @param {string} message */
  constructor(status, message) {
    super(message);
    this.name = "JobAPIError";
    this.status = status;
  }
}

/** @param {string} name @returns {string|null} */
function cookie(name) {
  if (typeof document === "undefined") return null;
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

/**
 * A client of one project.
 * @param {Object} options
 * @param {string} options.project  the project's path relative to the server's root directory
 * @param {string} [options.base]   the extension's URL ("/celline-jobs", or with the server's base_url)
 * @param {string} [options.origin] e.g. "http://127.0.0.1:8888" (default: the page's own)
 * @param {string} [options.token]  a Jupyter token (default: the login cookie)
 * @param {string} [options.xsrf]   the _xsrf value (default: read from the cookie)
 * @param {typeof fetch} [options.fetch]
 * @returns {JobAPI}
 */
export function createJobAPI({ project, base = "/celline-jobs", origin, token, xsrf, fetch: fetchImpl } = {}) {
  if (!project) throw new Error("createJobAPI: give the project's path relative to the server's root");
  const here = origin || (typeof location !== "undefined" ? location.origin : "");
  const doFetch = fetchImpl || ((...args) => fetch(...args));

  /** @param {string} path @param {Object<string, *>} [query] @param {boolean} [ws] */
  function url(path, query = {}, ws = false) {
    const u = new URL(`${base.replace(/\/$/, "")}/api/v1/${path}`, here || "http://localhost");
    u.searchParams.set("project", project);
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) u.searchParams.set(k, String(v));
    if (token && ws) u.searchParams.set("token", token);
    if (ws) u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    return u.toString();
  }

  /** @param {string} method @param {string} path @param {Object} [query] @param {*} [body] */
  async function call(method, path, query, body) {
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = `token ${token}`;
    if (method !== "GET") {
      const x = xsrf || cookie("_xsrf");
      if (x) headers["X-XSRFToken"] = x;
      headers["Content-Type"] = "application/json";
    }
    const response = await doFetch(url(path, query), {
      method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (!response.ok) throw new JobAPIError(response.status, (data && data.error) || response.statusText);
    return data;
  }

  const id = (jobId) => encodeURIComponent(String(jobId));
  return {
    async listJobs(status, { limit } = {}) {
      const s = Array.isArray(status) ? status.join(",") : status;
      return (await call("GET", "jobs", { status: s, limit })).jobs;
    },
    getJob: (jobId) => call("GET", `jobs/${id(jobId)}`),
    async cancelJob(jobId) {
      return (await call("POST", `jobs/${id(jobId)}/cancel`, {}, {})).cancelled;
    },
    async retryJob(jobId, resources) {
      return (await call("POST", `jobs/${id(jobId)}/retry`, {}, resources ? { resources } : {})).job_id;
    },
    getProgress: (jobId) => call("GET", `jobs/${id(jobId)}/progress`),
    streamLogs: (jobId, from = 0) => new WebSocket(url(`jobs/${id(jobId)}/logs`, { from }, true)),
    events: () => new WebSocket(url("events", {}, true)),
  };
}
