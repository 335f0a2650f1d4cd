// Weir dashboard: polls /api/v1/pipeline and /api/v1/plugins every second, draws the pipeline
// graph and the charts from them, and tails one component's events over Server-Sent Events.
// Charts: uPlot 1.6.32 (MIT), vendored in vendor/ from the npm package `uplot`.
//
// Plain script, no build step. No inline handlers, no eval and no style attributes, so a strict
// Content-Security-Policy holds (default-src 'self', plus img-src data: for the empty favicon
// that spares a request for /favicon.ico). Faults of the server or the network are shown in the
// page, never thrown, so polling goes on and the console stays clean.
'use strict';

/** How often the pipeline and plugins are polled; the rates are per second over this step. */
const POLL_MS = 1000;
/** A request that has not answered by then is abandoned, so a hung server cannot stall polling. */
const FETCH_TIMEOUT_MS = 5000;
/** How much history the charts show. */
const HISTORY_SECONDS = 120;
/** Rows kept in the live tail: enough to read, few enough that the DOM stays cheap. */
const TAIL_MAX_ROWS = 200;
/** Payload text longer than this is cut in a tail row (the row's tooltip holds more). */
const TAIL_PAYLOAD_CHARS = 600;
const TOKEN_KEY = 'weir-token';
const SVG_NS = 'http://www.w3.org/2000/svg';

/** Component colours in order of first sight (Tableau 10 less the two kept for failures). */
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const colors = new Map([['errors/s', '#d62728'], ['dead letters/s', '#8c564b']]);
let nextColor = 0;

/** The charts, each fed one map of series name to value per sample (see `sampleOf`). */
const CHART_DEFS = [
  { key: 'throughput', title: 'Throughput in (events/s)' },
  { key: 'latency', title: 'Latency p95 (ms)' },
  { key: 'fill', title: 'Channel fill' },
  { key: 'lag', title: 'Consumer lag per source (events)' },
  { key: 'errors', title: 'Errors and dead letters (per second)' },
];

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------
// Server access

function storedToken() {
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

/**
 * Sends one request to the same origin. Network faults and timeouts throw; an HTTP error comes
 * back as its status, with the body when it is JSON.
 */
async function api(path, method = 'GET') {
  const headers = {};
  const token = storedToken();
  if (token) {
    headers.Authorization = `Bearer ${token}`;
  }
  const response = await fetch(path, { method, headers, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  const body = await response.json().catch(() => null);
  return { status: response.status, body };
}

function describeFault(error) {
  return error?.name === 'TimeoutError' ? `no answer within ${FETCH_TIMEOUT_MS / 1000} s` : String(error?.message ?? error);
}

/**
 * Runs `task` every POLL_MS, never two at once. Tasks show server faults themselves; anything
 * else they throw is a dashboard bug, shown in the status line so polling goes on.
 */
async function pollForever(task) {
  for (;;) {
    const started = performance.now();
    try {
      await task();
    } catch (error) {
      $('status').textContent = `dashboard fault in ${task.name}: ${error}`;
      $('status').classList.add('error');
    }
    const rest = POLL_MS - (performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, rest)));
  }
}

// ---------------------------------------------------------------------------------------------
// Formatting

/** Short human numbers: 0.25, 12, 3.4k, 1.2M. */
function formatNumber(value) {
  if (value == null || !Number.isFinite(value)) {
    return '–';
  }
  const abs = Math.abs(value);
  for (const [scale, suffix] of [[1e9, 'G'], [1e6, 'M'], [1e3, 'k']]) {
    if (abs >= scale) {
      return `${Number((value / scale).toFixed(1))}${suffix}`;
    }
  }
  return String(Number(value.toFixed(abs >= 10 ? 0 : 2)));
}

function formatRate(value) {
  return `${formatNumber(value)}/s`;
}

/** Local wall-clock time with milliseconds, e.g. 14:03:07.250. */
function formatClock(ms) {
  const d = new Date(ms);
  const pad = (n, width = 2) => String(n).padStart(width, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function colorOf(name) {
  if (!colors.has(name)) {
    colors.set(name, PALETTE[nextColor++ % PALETTE.length]);
  }
  return colors.get(name);
}

/** Creates an element with attributes and text (text through textContent: payloads are untrusted). */
function element(tag, attributes = {}, text = '') {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    el.setAttribute(name, value);
  }
  el.textContent = text;
  return el;
}

function svgElement(tag, attributes = {}, text = '') {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) {
    el.setAttribute(name, String(value));
  }
  if (text) {
    el.textContent = text;
  }
  return el;
}

// ---------------------------------------------------------------------------------------------
// Pipeline: header, rates, samples

/** Per component, the cumulative counts of the previous poll and when they were read. */
let previousCounts = new Map();
/** One sample per successful poll over the last HISTORY_SECONDS: `{ t, series: { chart key: Map } }`. */
const history = [];

async function refreshPipeline() {
  let reply;
  try {
    reply = await api('/api/v1/pipeline');
  } catch (error) {
    showPollFailure('unreachable', `cannot reach the server: ${describeFault(error)}`);
    return;
  }
  if (reply.status !== 200) {
    showPollFailure('unknown', `/api/v1/pipeline answered HTTP ${reply.status}`);
    return;
  }
  const pipeline = reply.body;
  if (pipeline === null || typeof pipeline !== 'object') {
    showPollFailure('unknown', '/api/v1/pipeline answered something other than a JSON object');
    return;
  }
  const components = (Array.isArray(pipeline.components) ? pipeline.components : []).filter((c) => typeof c?.name === 'string');
  components.forEach((c) => colorOf(c.name));
  const now = Date.now();
  const rates = measureRates(components, now);
  showServerState(pipeline, `updated ${formatClock(now).slice(0, 8)}`);
  renderGraph(components, rates, problemsOf(pipeline));
  recordSample(sampleOf(components, rates), now);
  renderCharts();
  fillTailChoices(components);
}

/** `[component, reason]` pairs; an object of component to reason is taken too (health's own shape). */
function problemsOf(pipeline) {
  const raw = pipeline?.problems;
  const problems = Array.isArray(raw) ? raw : raw !== null && typeof raw === 'object' ? Object.entries(raw) : [];
  return problems.filter((p) => p != null).map((p) => (Array.isArray(p) ? { component: String(p[0] ?? ''), reason: String(p[1] ?? '') } : { component: '', reason: String(p) }));
}

/** Header after a failed poll; the last problems shown stay, as the best still known. */
function showPollFailure(badgeText, status) {
  $('ready').textContent = badgeText;
  $('ready').className = 'badge bad';
  $('status').textContent = status;
  $('status').classList.add('error');
}

/** Header: ready badge, problem list and a status line. */
function showServerState(pipeline, status) {
  const badge = $('ready');
  if (typeof pipeline.ready === 'boolean') {
    badge.textContent = pipeline.ready ? 'ready' : 'not ready';
  } else {
    badge.textContent = 'readiness unknown';
  }
  badge.className = `badge ${pipeline.ready === true ? 'ok' : 'bad'}`;
  $('status').textContent = status;
  $('status').classList.remove('error');
  const list = $('problems');
  list.replaceChildren(...problemsOf(pipeline).map(({ component, reason }) => {
    const item = element('li');
    item.append(element('strong', {}, component), document.createTextNode(component ? `: ${reason}` : reason));
    return item;
  }));
  list.hidden = list.childElementCount === 0;
}

/** The change of a cumulative counter per second; null when unknown or reset (a restart). */
function perSecond(before, after, seconds) {
  if (!Number.isFinite(before) || !Number.isFinite(after) || seconds <= 0 || after < before) {
    return null;
  }
  return (after - before) / seconds;
}

/** Rates of each component since the previous poll: `Map name -> { in, out, failed, deadLetters }`. */
function measureRates(components, now) {
  const counts = new Map();
  const rates = new Map();
  for (const c of components) {
    const current = {
      in: c.counters?.events_in,
      out: c.counters?.events_out,
      failed: c.counters?.failed,
      deadLetters: c.dead_letters,
    };
    counts.set(c.name, { at: now, values: current });
    const before = previousCounts.get(c.name);
    const seconds = before ? (now - before.at) / 1000 : 0;
    const rate = {};
    for (const key of Object.keys(current)) {
      rate[key] = perSecond(before?.values[key], current[key], seconds);
    }
    rates.set(c.name, rate);
  }
  previousCounts = counts; // components that left the pipeline drop out here
  return rates;
}

function sumOrNull(values) {
  const known = values.filter((v) => v != null);
  return known.length ? known.reduce((a, b) => a + b, 0) : null;
}

/** One point of every chart: per chart key, a Map of series name to value (null: unknown). */
function sampleOf(components, rates) {
  const series = {};
  const perComponent = (pick) => new Map(components.map((c) => [c.name, pick(c) ?? null]));
  series.throughput = perComponent((c) => rates.get(c.name).in ?? rates.get(c.name).out);
  series.latency = perComponent((c) => (Number.isFinite(c.latency_seconds?.p95) ? c.latency_seconds.p95 * 1000 : null));
  series.fill = perComponent((c) => c.counters?.channel_fill);
  series.lag = new Map(components.filter((c) => c.role === 'source').map((c) => [c.name, c.lag ?? null]));
  const all = [...rates.values()];
  series.errors = new Map([
    ['errors/s', sumOrNull(all.map((r) => r.failed))],
    ['dead letters/s', sumOrNull(all.map((r) => r.deadLetters))],
  ]);
  return series;
}

function recordSample(series, now) {
  history.push({ t: now / 1000, series });
  while (history.length && history[0].t < now / 1000 - HISTORY_SECONDS) {
    history.shift();
  }
}

// ---------------------------------------------------------------------------------------------
// Graph

const NODE_W = 170;
const NODE_H = 52;
const COLUMN_GAP = 140;
const ROW_GAP = 28;
const MARGIN = 20;

/** What was drawn, so a poll with the same topology only updates the labels. */
let graph = { signature: '', edgeLabels: [], nodes: new Map() };

/**
 * The upstream component an input names: the name itself, or "stage.port" for a side output
 * (the longest known prefix, in case a name holds a dot itself).
 */
function resolveInput(input, names) {
  if (names.has(input)) {
    return { from: input, port: null };
  }
  for (let dot = input.lastIndexOf('.'); dot > 0; dot = input.lastIndexOf('.', dot - 1)) {
    if (names.has(input.slice(0, dot))) {
      return { from: input.slice(0, dot), port: input.slice(dot + 1) };
    }
  }
  return null;
}

/**
 * One edge per upstream and downstream pair, with the outputs it carries: a sink may read both
 * "win" and "win.late", and two lines with the same rate on them would only hide each other.
 */
function edgesOf(components) {
  const names = new Set(components.map((c) => c.name));
  const edges = new Map();
  for (const c of components) {
    for (const input of Array.isArray(c.inputs) ? c.inputs : []) {
      const upstream = resolveInput(String(input), names);
      if (upstream) {
        const key = JSON.stringify([upstream.from, c.name]);
        if (!edges.has(key)) {
          edges.set(key, { from: upstream.from, to: c.name, ports: [] });
        }
        edges.get(key).ports.push(upstream.port ?? 'main');
      }
    }
  }
  return [...edges.values()];
}

/** Column per component: sources first, then by longest path from a source, sinks last. */
function columnsOf(components, edges) {
  const upstreams = new Map(components.map((c) => [c.name, []]));
  edges.forEach((e) => upstreams.get(e.to).push(e.from));
  const depth = new Map();
  const visiting = new Set();
  const depthOf = (name) => {
    if (depth.has(name)) {
      return depth.get(name);
    }
    if (visiting.has(name)) {
      return 0; // a cycle: validation refuses those, but do not recurse forever
    }
    visiting.add(name);
    const ups = upstreams.get(name);
    const d = ups.length ? 1 + Math.max(...ups.map(depthOf)) : 0;
    visiting.delete(name);
    depth.set(name, d);
    return d;
  };
  const column = new Map();
  for (const c of components) {
    column.set(c.name, c.role === 'source' ? 0 : Math.max(1, depthOf(c.name)));
  }
  const lastColumn = 1 + Math.max(0, ...components.filter((c) => c.role !== 'sink').map((c) => column.get(c.name)));
  components.filter((c) => c.role === 'sink').forEach((c) => column.set(c.name, lastColumn));
  return column;
}

/** Position of each node: columns left to right, rows ordered by where their inputs sit. */
function layoutGraph(components, edges) {
  const column = columnsOf(components, edges);
  const byColumn = [];
  components.forEach((c) => (byColumn[column.get(c.name)] ??= []).push(c.name));
  const columns = byColumn.filter(Boolean); // no gap where, say, no component is a source
  const tallest = Math.max(1, ...columns.map((names) => names.length));
  const height = 2 * MARGIN + tallest * NODE_H + (tallest - 1) * ROW_GAP;
  const position = new Map();
  columns.forEach((names, index) => {
    // Barycentre ordering: a node goes near the mean height of its inputs, which keeps
    // most edges short and uncrossed; nodes without placed inputs keep pipeline order.
    const meanY = (name) => {
      const ys = edges.filter((e) => e.to === name && position.has(e.from)).map((e) => position.get(e.from).y);
      return ys.length ? ys.reduce((a, b) => a + b, 0) / ys.length : Infinity;
    };
    const ordered = names.map((name) => ({ name, key: meanY(name) })).sort((a, b) => a.key - b.key);
    const used = ordered.length * NODE_H + (ordered.length - 1) * ROW_GAP;
    ordered.forEach(({ name }, row) => {
      position.set(name, {
        x: MARGIN + index * (NODE_W + COLUMN_GAP),
        y: (height - used) / 2 + row * (NODE_H + ROW_GAP),
      });
    });
  });
  const width = 2 * MARGIN + columns.length * NODE_W + Math.max(0, columns.length - 1) * COLUMN_GAP;
  return { position, width, height };
}

function drawGraph(components, edges) {
  const { position, width, height } = layoutGraph(components, edges);
  const svg = svgElement('svg', { class: 'graph-svg', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'pipeline graph' });
  const marker = svgElement('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto' });
  marker.append(svgElement('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow-head' }));
  svg.appendChild(svgElement('defs')).append(marker);

  const edgeLabels = [];
  for (const edge of edges) {
    const from = position.get(edge.from);
    const to = position.get(edge.to);
    const [x1, y1, x2, y2] = [from.x + NODE_W, from.y + NODE_H / 2, to.x, to.y + NODE_H / 2];
    const bend = (x2 - x1) / 2;
    svg.append(svgElement('path', {
      class: edge.ports.includes('main') ? 'edge' : 'edge port',
      d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`,
      'marker-end': 'url(#arrow)',
    }));
    const label = svgElement('text', { class: 'edge-label', x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 4, 'text-anchor': 'middle' });
    svg.append(label);
    edgeLabels.push({ ...edge, label });
  }

  const nodes = new Map();
  for (const c of components) {
    const { x, y } = position.get(c.name);
    const node = svgElement('g', { class: `node role-${c.role ?? 'unknown'}`, 'data-name': c.name, transform: `translate(${x},${y})` });
    const tooltip = svgElement('title');
    const parallel = c.parallelism > 1 ? ` ×${c.parallelism}` : '';
    node.append(
      tooltip,
      svgElement('rect', { width: NODE_W, height: NODE_H, rx: 6 }),
      svgElement('rect', { class: 'swatch', width: 5, height: NODE_H, rx: 2, fill: colorOf(c.name) }),
      svgElement('text', { class: 'node-name', x: 14, y: 21 }, c.name),
      svgElement('text', { class: 'node-kind', x: 14, y: 40 }, [c.kind ?? c.role, c.plugin].filter(Boolean).join(' · ') + parallel),
    );
    svg.append(node);
    nodes.set(c.name, { node, tooltip });
  }
  $('graph').replaceChildren(svg);
  return { edgeLabels, nodes };
}

function describeComponent(c, rate) {
  const lines = [`${c.name} (${c.role ?? '?'}, ${c.kind ?? '?'})`];
  if (c.counters) {
    lines.push(...Object.entries(c.counters).map(([key, value]) => `${key}: ${value}`));
  }
  lines.push(`in ${formatRate(rate?.in)}, out ${formatRate(rate?.out)}`);
  if (c.latency_seconds) {
    const ms = (key) => formatNumber(c.latency_seconds[key] * 1000);
    lines.push(`latency p50 ${ms('p50')} ms, p95 ${ms('p95')} ms, p99 ${ms('p99')} ms`);
  }
  if (c.lag != null) {
    lines.push(`lag: ${c.lag}`);
  }
  if (c.dead_letters != null) {
    lines.push(`dead letters: ${c.dead_letters}`);
  }
  return lines.join('\n');
}

function renderGraph(components, rates, problems) {
  const signature = JSON.stringify(components.map((c) => [c.name, c.role, c.kind, c.plugin, c.parallelism, c.inputs]));
  if (signature !== graph.signature) {
    graph = { signature, ...drawGraph(components, edgesOf(components)) };
  }
  for (const { from, ports, label } of graph.edgeLabels) {
    const rate = formatRate(rates.get(from)?.out);
    // The API counts a stage's output as one total, so a side-output edge shows that total.
    label.textContent = ports.length === 1 && ports[0] === 'main' ? rate : `${rate} · ${ports.join('+')}`;
  }
  const troubled = new Set(problems.map((p) => p.component));
  for (const c of components) {
    const { node, tooltip } = graph.nodes.get(c.name);
    node.classList.toggle('problem', troubled.has(c.name));
    tooltip.textContent = describeComponent(c, rates.get(c.name));
  }
}

// ---------------------------------------------------------------------------------------------
// Charts

const CHART_HEIGHT = 180;
/** Per chart: its container, the uPlot instance and the series names it was built with. */
const charts = [];

function createCharts() {
  for (const def of CHART_DEFS) {
    const container = element('div', { class: 'chart', 'data-chart': def.key, 'data-updates': '0' });
    const body = element('div', { class: 'chart-body' });
    container.append(element('h3', {}, def.title), body);
    $('charts').append(container);
    charts.push({ def, container, body, names: null, plot: null });
  }
  window.addEventListener('resize', () => {
    charts.forEach((chart) => chart.plot?.setSize({ width: chart.body.clientWidth, height: CHART_HEIGHT }));
  });
}

/** Series a chart shows: every name with a value somewhere in the history, first seen first. */
function seriesNames(key) {
  const names = new Set();
  for (const sample of history) {
    for (const [name, value] of sample.series[key]) {
      if (value != null) {
        names.add(name);
      }
    }
  }
  return [...names];
}

function latestOf(values) {
  return values?.findLast((value) => value != null) ?? null;
}

/** (Re)builds a chart's plot: uPlot fixes its series when it is made. */
function buildPlot(chart, names) {
  chart.plot?.destroy();
  chart.names = names;
  chart.container.classList.toggle('empty', names.length === 0);
  // Away from the cursor the legend shows each series' latest value, so it reads as a table.
  const format = (u, value, series, index) => formatNumber(index == null ? latestOf(u.data[series]) : value);
  // uPlot draws axes on a canvas, out of CSS's reach: hand it the page's colours (light or dark).
  const style = getComputedStyle(document.documentElement);
  const axis = {
    stroke: style.getPropertyValue('--muted'),
    grid: { stroke: style.getPropertyValue('--line') },
    ticks: { stroke: style.getPropertyValue('--line') },
  };
  const options = {
    width: chart.body.clientWidth,
    height: CHART_HEIGHT,
    // Always the last HISTORY_SECONDS, so the time axis keeps its scale while history fills up.
    scales: { x: { time: true, range: (u, min, max) => [max - HISTORY_SECONDS, max] } },
    axes: [
      // HH:MM:SS labels are about 60 px wide; 80 px apart they never touch.
      { ...axis, space: 80, values: (u, ticks) => ticks.map((t) => formatClock(t * 1000).slice(0, 8)) },
      { ...axis, size: 56, values: (u, ticks) => ticks.map(formatNumber) },
    ],
    series: [{}, ...names.map((name) => ({ label: name, stroke: colorOf(name), width: 1.5, value: format }))],
  };
  chart.plot = new uPlot(options, [[], ...names.map(() => [])], chart.body);
}

function renderCharts() {
  const times = history.map((sample) => sample.t);
  for (const chart of charts) {
    const names = seriesNames(chart.def.key);
    if (chart.names === null || names.join('\n') !== chart.names.join('\n')) {
      buildPlot(chart, names);
    }
    const columns = names.map((name) => history.map((sample) => sample.series[chart.def.key].get(name) ?? null));
    chart.plot.setData([times, ...columns]);
    chart.container.dataset.updates = String(Number(chart.container.dataset.updates) + 1);
  }
}

// ---------------------------------------------------------------------------------------------
// Plugins

const TOKEN_NEEDED = 'The server wants an access token: enter it under "Access token" at the top of the page.';
const TOKEN_REFUSED = 'The server refused the access token: check it under "Access token" at the top of the page.';
/** Table rows by plugin name, updated in place so a click on Reload is never lost to a redraw. */
const pluginRows = new Map();

function showPluginsNotice(text) {
  const notice = $('plugins-status');
  notice.textContent = text;
  notice.hidden = !text;
}

/**
 * The token the server last refused: polling stops until it changes, as each refusal would
 * also log an error in the browser console.
 */
let refusedToken = null;

async function refreshPlugins() {
  if (storedToken() === refusedToken) {
    return;
  }
  let reply;
  try {
    reply = await api('/api/v1/plugins');
  } catch (error) {
    showPluginsNotice(`Cannot load the plugins: ${describeFault(error)}`);
    return;
  }
  if (reply.status === 401) {
    refusedToken = storedToken();
    showPluginsNotice(refusedToken ? TOKEN_REFUSED : TOKEN_NEEDED);
    $('token').classList.add('wanted');
    return;
  }
  refusedToken = null;
  $('token').classList.remove('wanted');
  if (reply.status !== 200 || !Array.isArray(reply.body?.plugins)) {
    showPluginsNotice(`/api/v1/plugins answered HTTP ${reply.status}`);
    return;
  }
  const plugins = reply.body.plugins.filter((p) => typeof p?.name === 'string');
  showPluginsNotice(plugins.length ? '' : 'No plugins loaded.');
  renderPlugins(plugins);
}

function pluginRow(name) {
  const cells = {};
  const row = element('tr');
  for (const key of ['name', 'kind', 'version', 'state', 'reloads', 'error']) {
    cells[key] = row.appendChild(element('td', { class: `col-${key}` }));
  }
  const action = row.appendChild(element('td', { class: 'col-action' }));
  const button = action.appendChild(element('button', { type: 'button' }, 'Reload'));
  const result = action.appendChild(element('span', { class: 'reload-result' }));
  const entry = { row, cells, button, result };
  button.addEventListener('click', () => reloadPlugin(name, entry));
  return entry;
}

function renderPlugins(plugins) {
  const body = $('plugins');
  const seen = new Set();
  for (const p of plugins) {
    seen.add(p.name);
    if (!pluginRows.has(p.name)) {
      pluginRows.set(p.name, pluginRow(p.name));
    }
    const { row, cells } = pluginRows.get(p.name);
    body.append(row); // appending an attached row moves it: rows follow the server's order
    const quarantined = Array.isArray(p.quarantined_in) && p.quarantined_in.length ? ` (quarantined in ${p.quarantined_in.join(', ')})` : '';
    cells.name.textContent = p.name;
    cells.kind.textContent = p.kind ?? '';
    cells.version.textContent = p.version ?? '';
    cells.version.title = [p.sha256 && `sha256 ${p.sha256}`, p.loaded_at_ms && `loaded ${new Date(p.loaded_at_ms).toLocaleString()}`].filter(Boolean).join('\n');
    cells.state.textContent = `${p.state ?? 'unknown'}${quarantined}`;
    cells.state.className = `col-state state-${String(p.state ?? 'unknown').replace(/[^a-z0-9_-]/gi, '')}`;
    cells.reloads.textContent = p.failed_reloads ? `${p.reloads ?? 0} (${p.failed_reloads} failed)` : String(p.reloads ?? 0);
    cells.error.textContent = p.last_error ?? '';
  }
  for (const [name, { row }] of pluginRows) {
    if (!seen.has(name)) {
      row.remove();
      pluginRows.delete(name);
    }
  }
}

function describeReload({ status, body }) {
  if (status === 401) {
    return { ok: false, text: storedToken() ? 'token refused' : 'needs the access token' };
  }
  switch (body?.result) {
    case 'swapped':
      return { ok: true, text: `swapped to version ${body.version ?? '?'}` };
    case 'unchanged':
      return { ok: true, text: 'unchanged' };
    case 'rejected':
      return { ok: false, text: `rejected: ${body.error ?? 'no reason given'}` };
    default:
      return { ok: false, text: `HTTP ${status}${body?.error ? `: ${body.error}` : ''}` };
  }
}

async function reloadPlugin(name, entry) {
  entry.button.disabled = true;
  entry.result.className = 'reload-result';
  entry.result.textContent = 'reloading…';
  let outcome;
  try {
    outcome = describeReload(await api(`/api/v1/plugins/${encodeURIComponent(name)}/reload`, 'POST'));
  } catch (error) {
    outcome = { ok: false, text: `failed: ${describeFault(error)}` };
  }
  entry.button.disabled = false;
  entry.result.className = `reload-result ${outcome.ok ? 'ok' : 'bad'}`;
  entry.result.textContent = outcome.text;
  await refreshPlugins(); // show the new version now, not at the next poll
}

// ---------------------------------------------------------------------------------------------
// Live tail

const tail = {
  /** Bumped by every start and stop, so late answers of an older run are ignored. */
  run: 0,
  running: false,
  source: null,
  /** Events not yet drawn, oldest first; drawn once per frame so a fast stage cannot flood the DOM. */
  pending: [],
  flushQueued: false,
  state: '',
  failed: false,
  skipped: 0,
  missing: 0,
};

function fillTailChoices(components) {
  const select = $('tail-stage');
  const wanted = components.map((c) => `${c.name}\n${c.role}`).join('\n');
  if (select.dataset.choices === wanted) {
    return;
  }
  const chosen = select.value;
  select.replaceChildren(...components.map((c) => element('option', { value: c.name }, c.role ? `${c.name} (${c.role})` : c.name)));
  select.dataset.choices = wanted;
  if (components.some((c) => c.name === chosen)) {
    select.value = chosen;
  }
}

function showTailNotice() {
  const parts = [tail.state];
  if (tail.skipped) {
    parts.push(`${tail.skipped} events skipped (the tail fell behind)`);
  }
  if (tail.missing) {
    parts.push(`${tail.missing} events missed while reconnecting (no longer in the server's history)`);
  }
  const notice = $('tail-notice');
  notice.textContent = parts.filter(Boolean).join(' · ');
  notice.classList.toggle('error', tail.failed);
  notice.hidden = !notice.textContent;
}

/** Sets the tail's state line; `failed` marks it as trouble the user has to act on. */
function setTailState(text, failed = false) {
  tail.state = text;
  tail.failed = failed;
  showTailNotice();
}

function startTail() {
  const stage = $('tail-stage').value;
  if (!stage) {
    setTailState('no component to tail yet', true);
    return;
  }
  stopTail();
  const filter = $('tail-filter').value.trim();
  Object.assign(tail, { running: true, pending: [], skipped: 0, missing: 0 });
  $('tail').replaceChildren();
  $('tail-toggle').textContent = 'Stop';
  setTailState(`connecting to ${stage}…`);
  const query = new URLSearchParams({ stage });
  if (filter) {
    query.set('filter', filter);
  }
  // EventSource cannot send an Authorization header: a feed that asks for the token
  // (server.feed.require_token) takes it in the query.
  const token = storedToken();
  if (token) {
    query.set('token', token);
  }
  openStream(`/api/v1/events/stream?${query}`, stage, filter, tail.run);
}

function openStream(url, stage, filter, run) {
  const source = new EventSource(url);
  tail.source = source;
  source.addEventListener('open', () => {
    setTailState(filter ? `tailing ${stage} where ${filter}` : `tailing ${stage}`);
  });
  source.addEventListener('message', (message) => receiveEvent(parseJson(message.data)));
  source.addEventListener('skipped', (message) => {
    tail.skipped += Number(parseJson(message.data)?.skipped) || 0;
    showTailNotice();
  });
  source.addEventListener('gap', (message) => {
    tail.missing += Number(parseJson(message.data)?.missing) || 0;
    showTailNotice();
  });
  source.addEventListener('error', (event) => onStreamError(event, url, filter, run));
}

/**
 * EventSource uses "error" both for the server's `event: error` (a MessageEvent with data) and
 * for its own connection trouble (a plain Event), so tell them apart here.
 */
async function onStreamError(event, url, filter, run) {
  if (run !== tail.run) {
    return;
  }
  if (typeof event.data === 'string') {
    stopTail();
    setTailState(`stopped: ${parseJson(event.data)?.error ?? event.data}`, true);
    return;
  }
  if (event.target.readyState !== EventSource.CLOSED) {
    setTailState('connection lost; reconnecting…', true); // EventSource retries by itself
    return;
  }
  stopTail();
  const stopped = tail.run;
  setTailState('stream refused…');
  const reason = await explainRefusal(url, filter);
  if (stopped === tail.run) {
    setTailState(reason, true); // unless a new tail started meanwhile
  }
}

/** EventSource hides the HTTP status of a refusal, so ask once more with fetch to learn why. */
async function explainRefusal(url, filter) {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    if (response.ok) {
      await response.body?.cancel();
      return 'the stream closed; press Start to open it again';
    }
    const body = await response.json().catch(() => null);
    const why = body?.error ? `: ${body.error}` : ` (HTTP ${response.status})`;
    return response.status === 400 && filter ? `filter rejected${why}` : `stream refused${why}`;
  } catch (error) {
    return `cannot reach the server: ${describeFault(error)}`;
  }
}

function stopTail() {
  tail.run += 1;
  tail.source?.close();
  Object.assign(tail, { source: null, running: false });
  $('tail-toggle').textContent = 'Start';
  setTailState('stopped');
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function receiveEvent(event) {
  if (event === null || typeof event !== 'object') {
    return;
  }
  tail.pending.push(event);
  // Rows past the cap would be dropped on drawing anyway; dropping them now bounds memory
  // while the tab is hidden and frames do not run.
  if (tail.pending.length > TAIL_MAX_ROWS) {
    tail.pending.splice(0, tail.pending.length - TAIL_MAX_ROWS);
  }
  if (!tail.flushQueued) {
    tail.flushQueued = true;
    requestAnimationFrame(flushTail);
  }
}

function tailRow(event) {
  const payload = JSON.stringify(event.payload ?? null) ?? 'null';
  const row = element('li', { class: 'tail-row' });
  row.append(
    element('span', { class: 'tail-time' }, Number.isFinite(event.time) ? formatClock(event.time) : ''),
    element('span', { class: 'tail-id' }, event.id != null ? `#${event.id}` : ''),
    element('code', { class: 'tail-payload', title: payload.slice(0, 4 * TAIL_PAYLOAD_CHARS) },
      payload.length > TAIL_PAYLOAD_CHARS ? `${payload.slice(0, TAIL_PAYLOAD_CHARS)}…` : payload),
  );
  return row;
}

/** Draws the pending events, newest on top, and trims the list to TAIL_MAX_ROWS. */
function flushTail() {
  tail.flushQueued = false;
  const list = $('tail');
  const rows = document.createDocumentFragment();
  for (const event of tail.pending.reverse()) {
    rows.append(tailRow(event));
  }
  tail.pending = [];
  list.prepend(rows);
  while (list.childElementCount > TAIL_MAX_ROWS) {
    list.lastElementChild.remove();
  }
}

// ---------------------------------------------------------------------------------------------
// Start

function wireControls() {
  const token = $('token');
  token.value = storedToken();
  token.addEventListener('input', () => sessionStorage.setItem(TOKEN_KEY, token.value.trim()));
  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault(); // Enter applies the token at once instead of reloading the page
    refreshPlugins();
  });
  $('tail-toggle').addEventListener('click', () => (tail.running ? stopTail() : startTail()));
  // A new component or filter while running restarts the tail with it.
  $('tail-stage').addEventListener('change', () => {
    if (tail.running) {
      startTail();
    }
  });
  $('tail-filter').addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      startTail();
    }
  });
}

createCharts();
wireControls();
pollForever(refreshPipeline);
pollForever(refreshPlugins);
