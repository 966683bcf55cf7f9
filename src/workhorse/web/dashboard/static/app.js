// The workhorse dashboard: polls the JSON API and redraws what changed.
// Every value from the server reaches the page through textContent or an attribute
// (never parsed as HTML), so job data can never become markup.
"use strict";

(function () {
  const BASE = document.body.dataset.base || "";
  const POLL_MS = 1000;
  const THROUGHPUT_EVERY = 5;
  const STATES = ["scheduled", "queued", "blocked", "running", "completed", "failed", "cancelled"];
  const SVG_NS = "http://www.w3.org/2000/svg";

  let session = null;
  let filters = {};
  let cursors = [];      // before_id of each page shown so far (null: newest)
  let nextCursor = null;
  let selectedId = null;
  let tick = 0;
  let timer = null;      // the next scheduled refresh
  let refreshing = false; // a refresh is awaiting its requests
  let again = false;     // something asked for a refresh meanwhile: run one when it ends
  const drawn = {};      // section -> JSON last drawn (redraw only on change)

  const $ = (id) => document.getElementById(id);

  // -- helpers -------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function changed(section, data) {
    const text = JSON.stringify(data);
    if (drawn[section] === text) return false;
    drawn[section] = text;
    return true;
  }

  function ago(iso) {
    if (!iso) return "";
    const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    return duration(seconds) + " ago";
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    if (seconds < 60) return Math.round(seconds) + "s";
    if (seconds < 3600) return Math.round(seconds / 60) + "m";
    if (seconds < 86400) return (seconds / 3600).toFixed(1) + "h";
    return (seconds / 86400).toFixed(1) + "d";
  }

  function when(iso) {
    return iso ? new Date(iso).toLocaleString() : "";
  }

  // A completed job is done, whatever progress it last reported.
  function shownProgress(job) {
    return job.state === "completed" ? 100 : job.progress;
  }

  function badge(state) {
    return el("span", { class: "badge " + state, dataset: { state } }, state);
  }

  class HttpError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function call(method, path, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET" && session) headers["X-CSRF-Token"] = session.csrf;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(BASE + path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 204) return null;
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (!response.ok) {
      const message = data && data.error ? data.error.message : "HTTP " + response.status;
      if (response.status === 401 && path !== "/dashboard/login") showLogin();
      throw new HttpError(response.status, message);
    }
    return data;
  }

  // -- login ---------------------------------------------------------------------

  function showLogin() {
    session = null;
    stopPolling();
    closeDetail();
    $("main-view").hidden = true;
    $("logout").hidden = true;
    $("who").textContent = "";
    $("login-view").hidden = false;
    $("api-key").focus();
  }

  function showMain() {
    $("login-view").hidden = true;
    $("main-view").hidden = false;
    $("logout").hidden = false;
    $("who").textContent = session.label;
    $("filter-tenant-label").hidden = !session.admin;
    startPolling();
  }

  async function login(event) {
    event.preventDefault();
    $("login-error").textContent = "";
    try {
      session = await call("POST", "/dashboard/login", { api_key: $("api-key").value });
      $("api-key").value = "";
      showMain();
    } catch (err) {
      $("login-error").textContent = err.message;
    }
  }

  async function logout() {
    try {
      await call("POST", "/dashboard/logout");
    } finally {
      for (const key of Object.keys(drawn)) delete drawn[key];
      showLogin();
    }
  }

  // -- polling -------------------------------------------------------------------

  function startPolling() {
    stopPolling();
    tick = 0;
    refresh();
  }

  function stopPolling() {
    if (timer !== null) clearTimeout(timer);
    timer = null;
  }

  // One chain of refreshes at a time: each schedules the next when it ends. A refresh
  // asked for while one is in flight (a click, a filter) only marks "again", so no
  // second chain can start and outlive the first.
  async function refresh() {
    stopPolling();
    if (refreshing) {
      again = true;
      return;
    }
    refreshing = true;
    again = false;
    try {
      await refreshOnce();
    } finally {
      refreshing = false;
    }
    if (!session) return;
    if (again) refresh();
    else timer = setTimeout(refresh, POLL_MS);
  }

  async function refreshOnce() {
    try {
      const jobsPath = "/jobs?" + jobQuery().toString();
      const tasks = [
        call("GET", "/queues").then(drawQueues),
        call("GET", "/workers").then(drawWorkers),
        call("GET", jobsPath).then(drawJobs).catch(jobsFailed),
      ];
      if (tick % THROUGHPUT_EVERY === 0) tasks.push(call("GET", "/throughput?minutes=15").then(drawThroughput));
      if (selectedId !== null) tasks.push(loadDetail());
      await Promise.all(tasks);
      $("live").className = "live on";
    } catch (err) {
      $("live").className = "live off";
    }
    tick += 1;
  }

  function refreshSoon() {
    if (session) refresh();
  }

  // -- queues --------------------------------------------------------------------

  function drawQueues(queues) {
    if (!changed("queues", queues)) return;
    const body = $("queues").tBodies[0];
    body.replaceChildren(
      ...queues.map((q) =>
        el("tr", { class: "clickable", dataset: { queue: q.queue } },
          el("td", {}, q.queue),
          ...STATES.map((s) => el("td", { class: "num", dataset: { state: s } }, q.counts[s] || 0)),
          el("td", { class: "num" }, q.oldest_queued_age_seconds === null ? "—" : duration(q.oldest_queued_age_seconds)),
        ),
      ),
    );
    $("queues-empty").hidden = queues.length > 0;
  }

  function pickQueue(event) {
    const row = event.target.closest("tr[data-queue]");
    if (!row) return;
    $("filter-queue").value = row.dataset.queue;
    applyFilters();
  }

  // -- workers -------------------------------------------------------------------

  function drawWorkers(workers) {
    const rows = workers.map((w) => [w.id, w.hostname, w.pid, w.queues, w.running, w.concurrency, Math.round(w.heartbeat_age_seconds)]);
    if (!changed("workers", rows)) return;
    $("workers").tBodies[0].replaceChildren(
      ...workers.map((w) =>
        el("tr", { dataset: { worker: w.id } },
          el("td", { title: w.hostname + " pid " + w.pid }, w.id),
          el("td", {}, w.queues ? w.queues.join(", ") : "all"),
          el("td", { class: "num" }, w.running + " / " + w.concurrency),
          el("td", { title: when(w.heartbeat_at) }, duration(w.heartbeat_age_seconds) + " ago"),
        ),
      ),
    );
    $("workers-empty").hidden = workers.length > 0;
  }

  // -- throughput chart ----------------------------------------------------------

  // Each bar stacks the attempts that ended in its slice, bottom up in this order.
  const OUTCOMES = ["completed", "retried", "failed"];

  function drawThroughput(data) {
    if (!changed("throughput", data)) return;
    const width = 560;
    const height = 140;
    const left = 28;
    const bottom = 18;
    const buckets = data.buckets;
    const ended = (b) => OUTCOMES.reduce((sum, outcome) => sum + (b[outcome] || 0), 0);
    const peak = Math.max(1, ...buckets.map(ended));
    const plotWidth = width - left;
    const plotHeight = height - bottom - 6;
    const step = plotWidth / Math.max(1, buckets.length);
    const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-label": "Attempts ended per time slice" });
    chart.append(svg("line", { class: "chart-grid", x1: left, x2: width, y1: 6, y2: 6 }));
    chart.append(svg("line", { class: "chart-grid", x1: left, x2: width, y1: 6 + plotHeight, y2: 6 + plotHeight }));
    chart.append(svg("text", { class: "chart-axis", x: left - 4, y: 14, "text-anchor": "end" }, String(peak)));
    chart.append(svg("text", { class: "chart-axis", x: left - 4, y: 6 + plotHeight, "text-anchor": "end" }, "0"));
    buckets.forEach((b, i) => {
      const x = left + i * step + 1;
      const barWidth = Math.max(1, step - 2);
      const counts = OUTCOMES.map((outcome) => `${b[outcome] || 0} ${outcome}`).join(", ");
      const group = svg("g", {});
      group.append(svg("title", {}, `${new Date(b.start).toLocaleTimeString()}: ${counts}`));
      let top = 6 + plotHeight;
      for (const outcome of OUTCOMES) {
        const barHeight = ((b[outcome] || 0) / peak) * plotHeight;
        top -= barHeight;
        group.append(svg("rect", { class: `bar ${outcome}`, x, width: barWidth, y: top, height: barHeight }));
      }
      chart.append(group);
    });
    const span = Math.round((buckets.length * data.bucket_seconds) / 60);
    chart.append(svg("text", { class: "chart-axis", x: left, y: height - 4 }, `${span} min ago`));
    chart.append(svg("text", { class: "chart-axis", x: width, y: height - 4, "text-anchor": "end" }, "now"));
    $("throughput").replaceChildren(chart);
    const total = (outcome) => buckets.reduce((sum, b) => sum + (b[outcome] || 0), 0);
    const finished = total("completed") + total("failed");
    $("throughput-caption").textContent = `${finished} finished, ${total("retried")} retried, ${data.bucket_seconds}s per bar`;
  }

  // -- jobs ----------------------------------------------------------------------

  function jobQuery() {
    const query = new URLSearchParams({ limit: "25" });
    for (const [key, value] of Object.entries(filters)) {
      if (Array.isArray(value)) value.forEach((item) => query.append(key, item));
      else if (value) query.set(key, value);
    }
    const before = cursors[cursors.length - 1];
    if (before) query.set("before_id", String(before));
    return query;
  }

  // A datetime-local value (the browser's time zone) as UTC ISO 8601, or "" if none.
  function utcOf(local) {
    const moment = local ? new Date(local) : null;
    return moment && !Number.isNaN(moment.getTime()) ? moment.toISOString() : "";
  }

  function readFilters() {
    const next = {
      status: Array.from($("filter-status").querySelectorAll("input:checked"), (box) => box.value),
      queue: $("filter-queue").value.trim(),
      task: $("filter-task").value.trim(),
      label: $("filter-label").value.trim(),
      created_after: utcOf($("filter-created-after").value),
      created_before: utcOf($("filter-created-before").value),
    };
    if (session && session.admin) next.tenant = $("filter-tenant").value.trim();
    return next;
  }

  function applyFilters(event) {
    if (event) event.preventDefault();
    filters = readFilters();
    cursors = [];
    delete drawn.jobs;
    refreshSoon();
  }

  function clearFilters() {
    $("filters").reset();
    applyFilters();
  }

  function jobsFailed(err) {
    if (err instanceof HttpError && err.status === 401) throw err;
    $("jobs-error").textContent = err.message;
  }

  function drawJobs(page) {
    $("jobs-error").textContent = "";
    nextCursor = page.next_cursor;
    $("page-older").disabled = nextCursor === null;
    $("page-newer").disabled = cursors.length === 0;
    if (!changed("jobs", [page, selectedId])) return;
    $("jobs").tBodies[0].replaceChildren(
      ...page.jobs.map((job) =>
        el("tr", { class: "clickable" + (job.id === selectedId ? " selected" : ""), dataset: { jobId: job.id, state: job.state } },
          el("td", { class: "num" }, job.id),
          el("td", { class: "task" }, job.task),
          el("td", {}, job.queue),
          el("td", {}, badge(job.state)),
          el("td", {}, el("progress", { max: 100, value: shownProgress(job), title: Math.round(shownProgress(job)) + "%" })),
          el("td", { class: "num" }, job.attempt + " / " + job.max_attempts),
          el("td", {}, job.tenant || ""),
          el("td", { title: when(job.created_at) }, ago(job.created_at)),
        ),
      ),
    );
    $("jobs-empty").hidden = page.jobs.length > 0;
  }

  function pickJob(event) {
    const row = event.target.closest("tr[data-job-id]");
    if (!row) return;
    selectedId = Number(row.dataset.jobId);
    delete drawn.detail;
    $("action-message").textContent = "";
    refreshSoon();
  }

  function olderPage() {
    if (nextCursor === null) return;
    cursors.push(nextCursor);
    refreshSoon();
  }

  function newerPage() {
    cursors.pop();
    refreshSoon();
  }

  // -- job detail ----------------------------------------------------------------

  async function loadDetail() {
    let job;
    try {
      job = await call("GET", "/jobs/" + selectedId);
    } catch (err) {
      if (err instanceof HttpError && err.status === 404) closeDetail();
      else throw err;
      return;
    }
    drawDetail(job);
    let workflow = null;
    if (job.workflow_id !== null && job.workflow_id !== undefined) {
      try {
        workflow = await call("GET", "/workflows/" + job.workflow_id);
      } catch (err) {
        if (!(err instanceof HttpError && err.status === 404)) throw err;
      }
    }
    drawWorkflow(workflow, job.id);
  }

  // The parts of the selected job's workflow, each with its state and what it waits
  // for; a click on a part opens it.
  function drawWorkflow(workflow, jobId) {
    if (!changed("workflow", [workflow, jobId])) return;
    $("detail-workflow-box").hidden = workflow === null;
    if (workflow === null) {
      $("detail-workflow").replaceChildren();
      return;
    }
    $("detail-workflow-title").replaceChildren(
      "Workflow " + workflow.id + (workflow.name ? " · " + workflow.name : "") + " ",
      badge(workflow.state),
    );
    $("detail-workflow").replaceChildren(
      ...workflow.parts.map((part) =>
        el(
          "tr",
          {
            class: "clickable" + (part.id === jobId ? " selected" : ""),
            dataset: { jobId: String(part.id), state: part.state },
          },
          el("td", { class: "num" }, part.id),
          el("td", {}, part.task + (part.stage ? " · " + part.stage : "")),
          el("td", {}, badge(part.state)),
          el("td", {}, part.depends_on.join(", ")),
        ),
      ),
    );
  }

  function field(name, value) {
    return [el("dt", {}, name), el("dd", {}, value === null || value === undefined || value === "" ? "—" : value)];
  }

  function drawDetail(job) {
    if (!changed("detail", job)) return;
    showDetail(true);
    $("job-detail").dataset.jobId = String(job.id);
    $("job-detail").dataset.state = job.state;
    $("detail-title").replaceChildren("Job " + job.id + " ", badge(job.state));
    $("detail-progress").value = shownProgress(job);
    $("detail-progress-text").textContent =
      Math.round(shownProgress(job)) + "%" + (job.progress_message ? " · " + job.progress_message : "");
    const labels = Object.entries(job.labels).map(([k, v]) => k + ":" + v).join(", ");
    $("detail-fields").replaceChildren(
      ...field("Task", job.task),
      ...field("Queue", job.queue),
      ...field("Tenant", job.tenant),
      ...field("Priority", job.priority),
      ...field("Attempts", job.attempt + " of " + job.max_attempts),
      ...field("Created", when(job.created_at)),
      ...field("Run at", when(job.run_at)),
      ...field("Started", when(job.started_at)),
      ...field("Finished", when(job.finished_at)),
      ...field("Worker", job.worker_id),
      ...field("Labels", labels),
      ...field("Unique key", job.unique_key),
      ...field("Stage", job.stage),
      ...field("Workflow", job.workflow_id),
      ...field("Cancel requested", job.cancel_requested ? "yes" : ""),
    );
    $("detail-args").textContent = JSON.stringify({ args: job.args, kwargs: job.kwargs }, null, 2);
    const done = job.state === "completed";
    $("detail-result-box").hidden = !done;
    $("detail-result").textContent = done ? JSON.stringify(job.result, null, 2) : "";
    $("detail-error-box").hidden = !job.error;
    $("detail-error").textContent = job.error ? job.error.type + ": " + job.error.message : "";
    $("detail-traceback").textContent = job.error && job.error.traceback ? job.error.traceback : "";
    const writable = session && !session.read_only;
    const final = ["completed", "failed", "cancelled"].includes(job.state);
    $("cancel-btn").hidden = !writable || final || job.cancel_requested;
    $("retry-btn").hidden = !writable || !["failed", "cancelled"].includes(job.state);
    $("delete-btn").hidden = !writable || !final;
  }

  function showDetail(shown) {
    $("job-detail").hidden = !shown;
    $("detail-backdrop").hidden = !shown;
    document.body.classList.toggle("detail-open", shown);
  }

  function closeDetail() {
    selectedId = null;
    delete drawn.detail;
    delete drawn.workflow;
    delete drawn.jobs;
    showDetail(false);
  }

  function closeOnEscape(event) {
    if (event.key === "Escape" && selectedId !== null) closeDetail();
  }

  async function act(method, suffix, done, closeAfter) {
    const id = selectedId;
    if (id === null) return;
    $("action-message").textContent = "";
    try {
      await call(method, "/jobs/" + id + suffix);
      $("action-message").textContent = done;
      if (closeAfter) closeDetail();
    } catch (err) {
      $("action-message").textContent = err.message;
    }
    delete drawn.detail;
    refreshSoon();
  }

  // -- wiring --------------------------------------------------------------------

  async function start() {
    $("login-form").addEventListener("submit", login);
    $("logout").addEventListener("click", logout);
    $("filters").addEventListener("submit", applyFilters);
    $("filter-clear").addEventListener("click", clearFilters);
    $("queues").addEventListener("click", pickQueue);
    $("jobs").addEventListener("click", pickJob);
    $("detail-workflow").addEventListener("click", pickJob);
    $("page-older").addEventListener("click", olderPage);
    $("page-newer").addEventListener("click", newerPage);
    $("detail-close").addEventListener("click", closeDetail);
    $("detail-backdrop").addEventListener("click", closeDetail);
    document.addEventListener("keydown", closeOnEscape);
    $("cancel-btn").addEventListener("click", () => act("DELETE", "", "Cancel requested."));
    $("retry-btn").addEventListener("click", () => act("POST", "/retry", "Sent back to the queue."));
    $("delete-btn").addEventListener("click", () => act("DELETE", "", "Deleted.", true));
    try {
      session = await call("GET", "/dashboard/session");
      showMain();
    } catch (err) {
      showLogin();
    }
  }

  start();
})();
