// The dashboard page: calls the JSON API, shows what each run did, and charts the live metrics.
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  target: "ttl",
  keyPrefix: freshPrefix(),
  info: null,
  busy: false,
  history: [],
  fleet: null,
};

const TARGET_LABELS = { ttl: "#[async_ttl] fn", lru: "#[async_lru] fn", direct: "AsyncCache" };
const MARKER_LABELS = {
  hit: "HIT",
  miss: "MISS",
  invalidation: "INVALIDATION",
  loop_detected: "LOOP DETECTED",
  loop_warned: "LOOP WARNED",
  error: "ERROR",
};
const SERIES = [
  { key: "ttl", label: "#[async_ttl]", color: "#4f46e5" },
  { key: "lru", label: "#[async_lru]", color: "#0d9488" },
  { key: "direct", label: "AsyncCache", color: "#d97706" },
  { key: "agent", label: "agent layer", color: "#db2777" },
];
const CACHE_ORDER = ["ttl_skip1", "ttl_skip0", "lru_skip1", "lru_skip0", "direct"];
const HISTORY = 60;
const REQUESTS = 100;

function freshPrefix() {
  return Math.random().toString(36).slice(2, 7);
}

// --- talking to the server -------------------------------------------------------------------

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    // Not JSON: reported below by status.
  }
  if (!response.ok) {
    throw new Error((data && data.error) || `${method} ${path}: HTTP ${response.status}`);
  }
  return data;
}

function showError(message) {
  $("error-text").textContent = message;
  $("error-banner").hidden = false;
}

function clearError() {
  $("error-banner").hidden = true;
  document.querySelectorAll("[aria-invalid]").forEach((input) => input.removeAttribute("aria-invalid"));
}

// A status line's `data-state` is idle, running, done or error; `data-runs` counts the runs
// finished, so a watcher can tell one run's end from the next.
function setStatus(id, kind, text) {
  const element = $(id);
  element.dataset.state = kind;
  if (kind === "done" || kind === "error") element.dataset.runs = Number(element.dataset.runs || 0) + 1;
  element.textContent = text;
}

const raw = (id) => $(id).value.trim();

// --- configuration and targets ---------------------------------------------------------------

function applyInfo(info) {
  state.info = info;
  const config = info.config;
  $("cfg-maxsize").value = config.maxsize;
  $("cfg-ttl").value = config.ttl === null ? "" : config.ttl;
  $("cfg-skip-args").value = config.skip_args;
  $("cfg-batch-window").value = config.batch_window_ms;
  $("cfg-max-batch").value = config.max_batch_size;
  showTarget();
}

async function applyConfig(event) {
  event.preventDefault();
  clearError();
  const inputs = Array.from(document.querySelectorAll("#config-form input"));
  const body = Object.fromEntries(inputs.map((input) => [input.name, input.value.trim()]));
  try {
    applyInfo(await api("POST", "/api/config", body));
    setStatus("run-status", "idle", "Configuration applied: the direct cache was rebuilt and the macro caches cleared.");
  } catch (error) {
    showError(error.message);
    inputs
      .filter((input) => error.message.includes(input.name))
      .forEach((input) => input.setAttribute("aria-invalid", "true"));
  }
}

function directDeclaration(config) {
  const lines = ["let cache: AsyncCache<String, String> = AsyncCache::builder()", `    .maxsize(${config.maxsize})`];
  if (config.ttl !== null) lines.push(`    .default_ttl(Duration::from_secs_f64(${config.ttl}))`);
  lines.push(`    .batch_window(Duration::from_micros(${Math.round(config.batch_window_ms * 1000)}))`);
  lines.push(`    .max_batch_size(${config.max_batch_size})`);
  if (state.info.fleet) lines.push(`    .fleet(fleet.cache("${state.info.fleet.direct}"))`);
  lines.push("    .build();");
  return lines.join("\n");
}

function showTarget() {
  document.querySelectorAll(".tab").forEach((tab) => tab.classList.toggle("active", tab.dataset.target === state.target));
  const direct = state.target === "direct";
  document.querySelectorAll(".macro-only").forEach((element) => (element.hidden = direct));
  document.querySelectorAll(".direct-only").forEach((element) => (element.hidden = !direct));
  if (!state.info) return;
  const config = state.info.config;
  $("target-declaration").textContent = direct
    ? directDeclaration(config)
    : state.info.declarations[state.target][config.skip_args];
}

function selectTarget(target) {
  if (state.busy) return;
  state.target = target;
  showTarget();
}

// --- concurrent runs -------------------------------------------------------------------------

function keysFor(pattern) {
  const prefix = state.keyPrefix;
  const unique = (offset) => Array.from({ length: REQUESTS }, (_, i) => `key-${prefix}-${offset + i}`);
  if (pattern === "same") return Array(REQUESTS).fill(`herd-${prefix}`);
  if (pattern === "unique") return unique(0);
  const mixed = Array(REQUESTS / 2).fill(`mixed-${prefix}`).concat(unique(REQUESTS).slice(0, REQUESTS / 2));
  for (let i = mixed.length - 1; i > 0; i -= 1) {
    const j = Math.floor(Math.random() * (i + 1));
    [mixed[i], mixed[j]] = [mixed[j], mixed[i]];
  }
  return mixed;
}

function setBusy(busy) {
  state.busy = busy;
  document.querySelectorAll(".actions .btn, .tab").forEach((button) => (button.disabled = busy));
}

function progress(done, total) {
  $("progress-bar").style.width = `${(100 * done) / total}%`;
}

async function fire(pattern) {
  if (state.busy) return;
  clearError();
  const target = state.target;
  const keys = keysFor(pattern);
  const options = target === "direct" ? { batch: $("opt-batch").checked } : { use_cache: !$("opt-bypass").checked };
  setBusy(true);
  progress(0, keys.length);
  setStatus("run-status", "running", `Sending ${keys.length} concurrent requests to the ${TARGET_LABELS[target]}…`);
  try {
    const before = await api("GET", "/api/metrics");
    const cache = before.active[target];
    let done = 0;
    const started = performance.now();
    const answers = await Promise.all(
      keys.map((key) =>
        api("POST", `/api/caches/${target}/call`, { key, ...options }).then((answer) => {
          done += 1;
          progress(done, keys.length);
          return answer;
        }),
      ),
    );
    const elapsed = performance.now() - started;
    const after = await api("GET", "/api/metrics");
    showRun(pattern, cache, before.caches[cache], after.caches[cache], elapsed, answers);
    setStatus("run-status", "done", `Done: ${keys.length} requests (${pattern} keys) through ${cache}.`);
  } catch (error) {
    showError(error.message);
    setStatus("run-status", "error", `The run failed: ${error.message}`);
  } finally {
    setBusy(false);
  }
}

function showRun(pattern, cache, before, after, elapsed, answers) {
  const delta = (field) => after[field] - before[field];
  const hits = delta("hits");
  const misses = delta("misses");
  const loads = delta("backend_calls");
  const evictions = delta("evictions");
  const peak = Math.max(...answers.map((answer) => answer.in_flight));
  $("stat-elapsed").textContent = `${Math.round(elapsed)} ms`;
  $("stat-loads").textContent = loads;
  $("stat-hits").textContent = hits;
  $("stat-misses").textContent = misses;
  $("stat-hit-rate").textContent = hits + misses > 0 ? `${Math.round((100 * hits) / (hits + misses))}%` : "–";
  $("stat-size").textContent = `${before.size} → ${after.size}`;
  $("stat-peak").textContent = peak;
  const parts = [`${answers.length} requests, ${loads} backend ${loads === 1 ? "load" : "loads"}.`];
  if (pattern === "same" && loads === 1 && misses > 1) {
    parts.push(`${misses} callers found no value and shared that one load; ${hits} were hits.`);
  }
  if (cache === "direct" && $("opt-batch").checked && loads > 0) {
    parts.push(`Those batch calls carried ${delta("backend_keys")} keys.`);
  }
  if (evictions > 0) parts.push(`${evictions} entries evicted to respect the size bound.`);
  parts.push(`The browser sends at most 6 requests at a time to one host over HTTP/1.1; up to ${peak} were in flight at the server at once.`);
  $("run-explain").textContent = parts.join(" ");
}

async function clearTarget() {
  clearError();
  try {
    const answer = await api("POST", `/api/caches/${state.target}/clear`);
    setStatus("run-status", "idle", `Cleared ${answer.cache}.`);
  } catch (error) {
    showError(error.message);
  }
}

// --- the direct cache: warmup, set, get, delete ----------------------------------------------

function entryPath() {
  return `/api/direct/entries/${encodeURIComponent(raw("entry-key"))}`;
}

async function entryAction(action) {
  clearError();
  const out = $("entry-result");
  try {
    if (action === "set") {
      const body = { value: $("entry-value").value };
      if (raw("entry-ttl") !== "") body.ttl = raw("entry-ttl");
      const answer = await api("PUT", entryPath(), body);
      const ttl = answer.ttl === "default" ? "the default TTL" : answer.ttl === null ? "no expiry" : `a ${answer.ttl} s TTL`;
      out.textContent = `set ${answer.key} with ${ttl}`;
    } else if (action === "get") {
      const answer = await api("GET", entryPath());
      out.textContent = answer.hit ? `hit: ${answer.key} = ${answer.value}` : `miss: ${answer.key} is not cached`;
    } else if (action === "delete") {
      const answer = await api("DELETE", entryPath());
      const fleet = state.fleet ? "; the other dashboards of the fleet drop theirs" : "";
      out.textContent = `deleted ${answer.key} (${answer.held ? "it held a value" : "it held nothing"}${fleet})`;
    } else {
      const keys = Array.from({ length: 20 }, (_, i) => `warmup-${state.keyPrefix}-${i}`);
      const started = performance.now();
      const answer = await api("POST", "/api/direct/warmup", { keys });
      const elapsed = Math.round(performance.now() - started);
      out.textContent = `warmed up in ${elapsed} ms: ${answer.loaded} loaded, ${answer.skipped} already cached, ${answer.failed} failed; direct cache size ${answer.metrics.size}`;
    }
  } catch (error) {
    showError(error.message);
    out.textContent = error.message;
  }
}

// --- the agent playground --------------------------------------------------------------------

function limits() {
  return {
    max_tool_repeats: raw("limit-repeats"),
    max_execution_depth: raw("limit-depth"),
    on_loop: $("limit-on-loop").value,
  };
}

async function runAgent(path, body, label) {
  clearError();
  setStatus("agent-status", "running", `Running ${label}…`);
  try {
    const report = await api("POST", path, body);
    renderReport(report);
    setStatus("agent-status", "done", `${report.title}: ${report.steps.length} tool calls, ${report.backend_calls} reached a backend.`);
  } catch (error) {
    showError(error.message);
    setStatus("agent-status", "error", error.message);
  }
}

function cell(text, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  td.textContent = text;
  return td;
}

function renderReport(report) {
  const outcome = $("agent-outcome");
  outcome.hidden = false;
  outcome.className = `outcome ${report.halted ? "halted" : "ok"}`;
  outcome.textContent = `${report.halted ? "Halted" : "Completed"}: ${report.outcome}`;

  const m = report.metrics;
  const chips = [
    ["hits", m.hits, "agent-hits"],
    ["misses", m.misses, "agent-misses"],
    ["invalidations", m.invalidations, "agent-invalidations"],
    ["loop detections", m.loop_detections, "agent-loop-detections"],
    ["hit rate", `${Math.round(100 * m.hit_rate)}%`, "agent-hit-rate"],
    ["backend calls", report.backend_calls, "agent-backend-calls"],
  ];
  const container = $("agent-metrics");
  container.replaceChildren(
    ...chips.map(([label, value, id]) => {
      const chip = document.createElement("span");
      chip.className = "chip";
      const number = document.createElement("b");
      number.id = id;
      number.textContent = value;
      chip.append(`${label} `, number);
      return chip;
    }),
  );

  $("timeline").replaceChildren(
    ...report.steps.map((step, index) => {
      const row = document.createElement("tr");
      row.dataset.marker = step.marker;
      const pill = document.createElement("span");
      pill.className = `pill ${step.marker}`;
      pill.textContent = MARKER_LABELS[step.marker] || step.marker;
      const markerCell = cell("");
      markerCell.append(pill);
      row.append(cell(index + 1), cell(step.call), markerCell, cell(step.detail));
      return row;
    }),
  );
}

// --- live metrics ----------------------------------------------------------------------------

function sample(metrics) {
  return {
    ttl: metrics.caches[metrics.active.ttl].hit_rate,
    lru: metrics.caches[metrics.active.lru].hit_rate,
    direct: metrics.caches.direct.hit_rate,
    agent: metrics.agent.hit_rate,
  };
}

function svg(tag, attributes, text) {
  const element = document.createElementNS("http://www.w3.org/2000/svg", tag);
  Object.entries(attributes).forEach(([name, value]) => element.setAttribute(name, value));
  if (text !== undefined) element.textContent = text;
  return element;
}

function drawChart() {
  const [width, height, left, right, top, bottom] = [640, 200, 38, 10, 10, 22];
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  const y = (rate) => top + plotHeight * (1 - rate);
  const x = (slot) => left + (plotWidth * slot) / (HISTORY - 1);
  const parts = [];
  [0, 0.25, 0.5, 0.75, 1].forEach((rate) => {
    parts.push(svg("line", { class: "gridline", x1: left, x2: width - right, y1: y(rate), y2: y(rate) }));
    parts.push(svg("text", { class: "axis", x: left - 6, y: y(rate) + 3, "text-anchor": "end" }, `${rate * 100}%`));
  });
  parts.push(svg("text", { class: "axis", x: left, y: height - 6 }, `${HISTORY} s ago`));
  parts.push(svg("text", { class: "axis", x: width - right, y: height - 6, "text-anchor": "end" }, "now"));
  const offset = HISTORY - state.history.length;
  SERIES.forEach((series) => {
    const points = state.history.map((point, i) => `${x(offset + i).toFixed(1)},${y(point[series.key]).toFixed(1)}`);
    if (points.length > 0) parts.push(svg("polyline", { points: points.join(" "), stroke: series.color }));
  });
  $("chart").replaceChildren(...parts);

  const latest = state.history[state.history.length - 1];
  $("chart-legend").replaceChildren(
    ...SERIES.map((series) => {
      const item = document.createElement("span");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = series.color;
      const value = latest ? ` ${Math.round(100 * latest[series.key])}%` : "";
      item.append(swatch, `${series.label}${value}`);
      return item;
    }),
  );
}

function renderMetricsTable(metrics) {
  const rows = CACHE_ORDER.filter((name) => metrics.caches[name]).map((name) => {
    const c = metrics.caches[name];
    const row = document.createElement("tr");
    if (!c.active) row.className = "inactive";
    row.title = c.declaration;
    const nameCell = cell(name);
    if (c.active) {
      const tag = document.createElement("span");
      tag.className = "tag";
      tag.textContent = "active";
      nameCell.append(tag);
    }
    const size = c.capacity === null ? `${c.size}` : `${c.size} / ${c.capacity}`;
    row.append(nameCell, cell(c.hits), cell(c.misses), cell(`${Math.round(100 * c.hit_rate)}%`), cell(size), cell(c.loads), cell(c.evictions), cell(c.backend_calls));
    return row;
  });
  const a = metrics.agent;
  const agent = document.createElement("tr");
  agent.title = `tool calls ${a.tool_calls}, invalidations ${a.invalidations}, loop detections ${a.loop_detections}`;
  agent.append(cell("agent layer"), cell(a.hits), cell(a.misses), cell(`${Math.round(100 * a.hit_rate)}%`), cell("–"), cell("–"), cell("–"), cell(`${a.loop_detections} ${a.loop_detections === 1 ? "loop" : "loops"} caught`));
  $("metrics-rows").replaceChildren(...rows, agent);
}

// --- the fleet ---------------------------------------------------------------------------------

function duration(ms) {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

// What a cache's `fleet.link` says, as a pill: its class, its text and a tooltip. A cache with
// no fleet, or one that named a fleet none was installed for, is process-local: not an error.
function cacheLink(c) {
  if (c.fleet) {
    if (c.fleet.link === "connected") return ["connected", "connected", "hears the other dashboards"];
    if (c.fleet.link === "degraded") return ["degraded", "degraded", `entries capped at max staleness; invalidations queued`];
    return ["local", "process-local", "not_installed: built before any fleet was installed (start with --redis URL)"];
  }
  if (c.target === "direct") return ["local", "process-local", "no fleet: start with --redis URL"];
  return ["local", "not called yet", "the cache is built on the fn's first call"];
}

function pill(kind, text, title) {
  const element = document.createElement("span");
  element.className = `pill ${kind}`;
  element.textContent = text;
  if (title) element.title = title;
  return element;
}

function renderFleet(metrics) {
  const fleet = metrics.fleet;
  state.fleet = fleet;
  const link = fleet ? fleet.link : "none";
  $("fleet-panel").dataset.state = link;
  const indicator = $("fleet-indicator");
  indicator.dataset.link = link;
  indicator.textContent = fleet ? `fleet ${link}` : "no fleet";
  const badge = $("fleet-link");
  badge.className = `pill ${fleet ? link : "local"}`;
  badge.textContent = fleet ? link : "no fleet";
  $("fleet-none").hidden = fleet !== null;
  $("fleet-live").hidden = fleet === null;
  $("fleet-try").hidden = fleet === null;
  if (fleet) {
    const since = fleet.since_unix_ms === null ? "" : ` (since ${new Date(fleet.since_unix_ms).toLocaleTimeString()})`;
    const where = `${fleet.server}, namespace ${fleet.namespace}, max staleness ${fleet.max_staleness_ms} ms`;
    $("fleet-state").textContent =
      link === "connected"
        ? `Connected for ${duration(fleet.age_ms)}${since} to ${where}.`
        : `Degraded for ${duration(fleet.age_ms)}${since}: ${where}.`;
    const reason = $("fleet-reason");
    reason.hidden = link !== "degraded";
    reason.textContent =
      link === "degraded"
        ? `Why: ${fleet.reason}. Every fleet cache was flushed, entries stored now live at most ${fleet.max_staleness_ms} ms, and invalidations wait in the queue (${fleet.queued}) until Redis answers again; reads go on.`
        : "";
    ["queued", "issued", "acknowledged", "received", "reconnects", "flushes", "overflows"].forEach((field) => {
      $(`fleet-${field}`).textContent = fleet[field];
    });
    $("fleet-try-url").textContent = fleet.server;
  }
  const rows = CACHE_ORDER.filter((name) => metrics.caches[name]).map((name) => {
    const c = metrics.caches[name];
    const row = document.createElement("tr");
    row.id = `fleet-row-${name}`;
    row.title = c.declaration;
    const [kind, text, title] = cacheLink(c);
    row.dataset.link = kind;
    const linkCell = cell("");
    linkCell.append(pill(kind, text, title));
    const remote = cell(c.remote_invalidations);
    remote.id = `fleet-remote-${name}`;
    const l2 = cell(c.l2_hits);
    l2.id = `fleet-l2-${name}`;
    row.append(cell(name), cell(c.fleet ? c.fleet.name : c.fleet_name), linkCell, remote, l2, cell(c.l2_misses), cell(c.lease_waits), cell(c.decode_errors), cell(c.fleet_flushes), cell(c.fleet_errors));
    return row;
  });
  const agent = document.createElement("tr");
  agent.className = "agent";
  const remote = cell(metrics.agent.remote_invalidations);
  remote.id = "fleet-remote-agent";
  const agentLink = cell("");
  agentLink.append(fleet ? pill(link, link, "global resource invalidations go through the fleet") : pill("local", "process-local"));
  agent.append(cell("agent layer"), cell("agent-cache:resources"), agentLink, remote, ...["–", "–", "–", "–", "–", "–"].map(cell));
  $("fleet-rows").replaceChildren(...rows, agent);
}

async function poll() {
  try {
    const metrics = await api("GET", "/api/metrics");
    $("live-status").classList.add("on");
    state.history.push(sample(metrics));
    if (state.history.length > HISTORY) state.history.shift();
    drawChart();
    renderMetricsTable(metrics);
    renderFleet(metrics);
  } catch (_) {
    $("live-status").classList.remove("on");
  }
  setTimeout(poll, 1000);
}

// --- wiring ----------------------------------------------------------------------------------

async function init() {
  $("config-form").addEventListener("submit", applyConfig);
  $("error-close").addEventListener("click", clearError);
  document.querySelectorAll(".tab").forEach((tab) => tab.addEventListener("click", () => selectTarget(tab.dataset.target)));
  $("fire-same").addEventListener("click", () => fire("same"));
  $("fire-unique").addEventListener("click", () => fire("unique"));
  $("fire-mixed").addEventListener("click", () => fire("mixed"));
  $("new-keys").addEventListener("click", () => {
    state.keyPrefix = freshPrefix();
    setStatus("run-status", "idle", `New keys (prefix ${state.keyPrefix}): the next run starts cold.`);
  });
  $("clear-target").addEventListener("click", clearTarget);
  ["set", "get", "delete"].forEach((action) => $(`entry-${action}`).addEventListener("click", () => entryAction(action)));
  $("warmup").addEventListener("click", () => entryAction("warmup"));
  document.querySelectorAll("[data-scenario]").forEach((button) =>
    button.addEventListener("click", () =>
      runAgent(`/api/agent/scenarios/${button.dataset.scenario}`, limits(), `the ${button.textContent} scenario`),
    ),
  );
  $("run-script").addEventListener("click", () => runAgent("/api/agent/script", { script: $("script").value, ...limits() }, "the sequence"));
  try {
    applyInfo(await api("GET", "/api/config"));
    const agent = await api("GET", "/api/agent");
    $("tool-list").textContent = `One call a line, as name args or name(args). Tools: ${agent.tools.map((tool) => `${tool.name}(${tool.params.join(", ")})`).join(", ")}.`;
  } catch (error) {
    showError(error.message);
  }
  poll();
}

init();
