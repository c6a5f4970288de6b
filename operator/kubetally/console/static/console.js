// kubetally web console. Every number on the page comes from the HTTP API, called with the caller's
// own token, so a tenant sees exactly what their API calls see; the page computes only sums of the
// API's numbers and the efficiency usage ÷ request. The URL holds the whole query (deep links):
// view, window, step, aggregate, idle, filter, sort, order.
//   cost over time   GET /v2/cost?window&step&aggregate&idle[&filter]   one map of rows per step,
//                    plus `steps` (start, end, coverage): a step with coverage 0 has no data and
//                    is drawn as a gap (null), never as 0
//   rows (table)     GET /v2/cost?window&aggregate&idle[&filter]        the same query as one set
//   lists            GET /apis/query.kubetally.io/v1alpha1/costreports|costweights|costbudgets
import { csvCell, isIdle, money, number, percent, quote, ratio, utc } from "./format.js";
import { LISTS } from "./lists.js";

// Every URL is relative to the page's folder (`/ui/` → `/`), so the console also works under a path
// prefix: the kube-apiserver's service proxy (`…/services/https:kubetally:service-proxy/proxy/ui/`), an
// ingress rule with a prefix.
const ROOT = new URL("..", location.href).pathname;
const COST = ROOT + "v2/cost";
const API = ROOT + "apis/query.kubetally.io/v1alpha1";
const TOKEN = "kubetally.token";
const GIB = 1024 ** 3;
const SERIES = 9; // rows drawn as their own series; the others are stacked as "other"
const NEXT = { namespace: "controller", project: "namespace", controller: "pod" };
const HOURLY = new Set(["today", "yesterday", "24h", "48h"]);
const FIELDS = ["view", "window", "step", "aggregate", "idle", "filter", "sort", "order"];
const $ = (id) => document.getElementById(id);
const page = { chart: null, idleChart: null, cost: null, rows: [], columns: [], signIn: false };
window.kubetally = page; // read by the browser tests: the data behind every chart and table

class NeedToken extends Error {}

function query() {
  const url = new URLSearchParams(location.search);
  const q = {
    view: url.get("view") || "cost", window: url.get("window") || "7d", aggregate: url.get("aggregate") || "namespace",
    idle: url.get("idle") || "true", filter: url.get("filter") || "", sort: url.get("sort") || "cost",
    order: url.get("order") || "desc",
  };
  q.step = url.get("step") || (HOURLY.has(q.window) ? "1h" : "1d");
  return q;
}

function go(changes, replace = false) {
  const next = { ...query(), ...changes };
  const url = new URLSearchParams();
  for (const key of FIELDS) if (next[key] !== "") url.set(key, next[key]);
  history[replace ? "replaceState" : "pushState"](null, "", "?" + url);
  return show();
}

async function api(path, params) {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN);
  if (token) headers.Authorization = "Bearer " + token;
  if (page.signIn && !token) throw new NeedToken("sign in first");
  const url = path + (params ? "?" + new URLSearchParams(params) : "");
  const response = await fetch(url, { headers, credentials: "omit", cache: "no-store" });
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  if (response.status === 401) throw new NeedToken(body && body.message);
  if (!response.ok) throw new Error((body && body.message) || `${response.status} ${response.statusText}`);
  return body;
}

const COLUMNS = [
  { key: "name", label: "Name", text: true, value: (r) => r.name },
  { key: "cost", label: "Cost", value: (r) => r.cost, format: money },
  { key: "costRatio", label: "Cost ratio", value: (r) => r.costRatio, format: percent },
  { key: "cpuRequest", label: "CPU request (cores)", value: (r) => r.cpuCoreRequestAverage, format: (v) => number(v, 3) },
  { key: "cpuUsage", label: "CPU usage (cores)", value: (r) => r.cpuCoreUsageAverage, format: (v) => number(v, 3) },
  { key: "cpuEfficiency", label: "CPU efficiency", value: (r) => ratio(r.cpuCoreUsageAverage, r.cpuCoreRequestAverage), format: percent },
  { key: "memoryRequest", label: "Memory request (GiB)", value: (r) => r.ramByteRequestAverage / GIB, format: (v) => number(v, 3) },
  { key: "memoryUsage", label: "Memory usage (GiB)", value: (r) => r.ramByteUsageAverage / GIB, format: (v) => number(v, 3) },
  { key: "memoryEfficiency", label: "Memory efficiency", value: (r) => ratio(r.ramByteUsageAverage, r.ramByteRequestAverage), format: percent },
];

function message(text) {
  $("message").textContent = text || "";
  $("message").hidden = !text;
}

// ---- the cost view ----
function drillFilter(q, row) {
  if (!NEXT[q.aggregate] || isIdle(row.name) || row.name === "__unallocated__") return null;
  const p = row.properties || {};
  const conditions = [];
  if (q.aggregate === "namespace") conditions.push("namespace:" + quote(p.namespace || row.name));
  if (q.aggregate === "project") conditions.push("project:" + quote(p.project || row.name));
  if (q.aggregate === "controller") {
    if (!p.controller) return null;
    if (p.namespace) conditions.push("namespace:" + quote(p.namespace));
    if (p.controllerKind) conditions.push("controllerKind:" + quote(p.controllerKind));
    conditions.push("controllerName:" + quote(p.controller));
  }
  const base = q.filter.includes("|") ? `(${q.filter})` : q.filter;
  return [base, ...conditions].filter(Boolean).join("+");
}

function drillHref(q, row) {
  const filter = drillFilter(q, row);
  if (filter === null) return null;
  const url = new URLSearchParams({ ...q, aggregate: NEXT[q.aggregate], filter });
  return "?" + url;
}

function sortedRows(q) {
  const column = COLUMNS.find((c) => c.key === q.sort) || COLUMNS[1];
  const sign = q.order === "asc" ? 1 : -1;
  return [...page.rows].sort((a, b) => {
    const x = column.value(a), y = column.value(b);
    if (column.text) return sign * String(x).localeCompare(String(y));
    return sign * ((x ?? -Infinity) - (y ?? -Infinity)) || a.name.localeCompare(b.name);
  });
}

function drawTable(q) {
  const head = $("rows").tHead, body = $("rows").tBodies[0];
  head.replaceChildren(document.createElement("tr"));
  for (const column of COLUMNS) {
    const th = document.createElement("th");
    th.scope = "col";
    th.dataset.key = column.key;
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = column.label;
    if (column.key === q.sort) th.setAttribute("aria-sort", q.order === "asc" ? "ascending" : "descending");
    button.addEventListener("click", () => go({ sort: column.key, order: column.key === q.sort && q.order === "desc" ? "asc" : "desc" }, true));
    th.append(button);
    head.rows[0].append(th);
  }
  const rows = sortedRows(q);
  page.shown = rows;
  body.replaceChildren(...rows.map((row) => {
    const tr = document.createElement("tr");
    for (const column of COLUMNS) {
      const td = document.createElement("td");
      const value = column.value(row);
      td.dataset.key = column.key;
      if (column.text) {
        const href = drillHref(q, row);
        if (href) {
          const link = document.createElement("a");
          link.href = href;
          link.textContent = value;
          link.addEventListener("click", (event) => { event.preventDefault(); go({ aggregate: NEXT[q.aggregate], filter: drillFilter(q, row) }); });
          td.append(link);
        } else td.textContent = value;
      } else {
        td.dataset.value = value === null ? "" : String(value);
        td.textContent = column.format(value);
      }
      tr.append(td);
    }
    return tr;
  }));
}

// Consecutive indices as [first, last] runs: one "no data" area per outage, not one per step.
function runs(indices) {
  const out = [];
  for (const i of indices) {
    if (out.length && out[out.length - 1][1] === i - 1) out[out.length - 1][1] = i; else out.push([i, i]);
  }
  return out;
}

function drawChart(q, answer) {
  const steps = answer.steps || [];
  const totals = new Map();
  for (const row of page.rows) if (!isIdle(row.name)) totals.set(row.name, (totals.get(row.name) || 0) + row.cost);
  const named = [...totals.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map((e) => e[0]);
  const own = named.slice(0, named.length > SERIES + 1 ? SERIES : SERIES + 1);
  const series = own.map((name) => ({ name, data: [] }));
  const other = { name: "other", data: [] }, idle = { name: "idle", data: [] };
  const gaps = [];
  answer.data.forEach((sets, i) => {
    const noData = !steps[i] || !steps[i].coverage;
    if (noData) gaps.push(i);
    const values = new Map();
    let rest = 0, idleCost = 0;
    for (const row of Object.values(sets)) {
      if (isIdle(row.name)) idleCost += row.cost;
      else if (own.includes(row.name)) values.set(row.name, (values.get(row.name) || 0) + row.cost);
      else rest += row.cost;
    }
    for (const s of series) s.data.push(noData ? null : values.get(s.name) || 0);
    other.data.push(noData ? null : rest);
    idle.data.push(noData ? null : idleCost);
  });
  if (named.length > own.length) series.push(other);
  if (q.idle === "true") series.push(idle);
  const labels = steps.map((s) => utc(s.start));
  page.chart.setOption({
    animation: false,
    aria: { enabled: true },
    tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
    legend: { type: "scroll", top: 4 },
    grid: { left: 64, right: 16, top: 64, bottom: 32 },
    xAxis: { type: "category", data: labels },
    yAxis: { type: "value", name: answer.currency },
    series: series.map((s, index) => ({
      name: s.name, type: "bar", stack: "cost", data: s.data, emphasis: { focus: "series" },
      itemStyle: s.name === "idle" ? { color: "#b8c2cc" } : s.name === "other" ? { color: "#7b8794" } : undefined,
      markArea: index === 0 && gaps.length ? {
        silent: true, itemStyle: { color: "rgba(179, 38, 30, 0.08)" }, label: { show: true, position: "insideTop", formatter: "no data" },
        data: runs(gaps).map(([a, b]) => [{ xAxis: labels[a] }, { xAxis: labels[b] }]),
      } : undefined,
    })),
  }, { notMerge: true });
  page.gaps = gaps;
}

function drawSummary(q, whole, series) {
  const idleCost = page.rows.filter((r) => isIdle(r.name)).reduce((a, r) => a + r.cost, 0);
  const total = page.rows.reduce((a, r) => a + r.cost, 0);
  page.idleShare = { idle: idleCost, workloads: total - idleCost };
  const figures = [
    ["Cost", `${money(total)} ${whole.currency}`],
    ["Idle", q.idle === "true" ? `${money(idleCost)} (${percent(ratio(idleCost, total))})` : "not asked"],
    ["Data coverage", percent(whole.coverage)],
    ["Window", `${utc(whole.window.start)} → ${utc(whole.window.end)} UTC`],
  ];
  $("summary").replaceChildren(...figures.map(([label, value]) => {
    const div = document.createElement("div");
    div.className = "figure";
    div.dataset.figure = label;
    div.append(label, Object.assign(document.createElement("b"), { textContent: value }));
    return div;
  }), ...[...new Set([...whole.warnings, ...series.warnings])].map((text) => Object.assign(document.createElement("p"), { className: "warning", textContent: text })));
  page.idleChart.setOption({
    animation: false, aria: { enabled: true }, tooltip: { trigger: "item" },
    title: { text: "Idle share", left: "center", top: 6, textStyle: { fontSize: 13 } },
    legend: { bottom: 6 },
    series: [{
      type: "pie", radius: ["30%", "52%"], center: ["50%", "55%"], label: { position: "inside", formatter: "{d} %" },
      data: [{ name: "workloads", value: total - idleCost }, { name: "idle", value: idleCost, itemStyle: { color: "#b8c2cc" } }],
    }],
  }, { notMerge: true });
}

function drawCrumbs(q) {
  const nav = $("crumbs");
  if (!q.filter) { nav.replaceChildren(); return; }
  const top = Object.assign(document.createElement("a"), { href: "?" + new URLSearchParams({ ...q, aggregate: "namespace", filter: "" }), textContent: "All namespaces" });
  top.addEventListener("click", (event) => { event.preventDefault(); go({ aggregate: "namespace", filter: "" }); });
  nav.replaceChildren(top, ` › ${q.filter} (by ${q.aggregate})`);
}

async function showCost(q) {
  for (const [id, value] of [["window", q.window], ["step", q.step], ["idle", q.idle]]) {
    if (id === "idle") $(id).checked = value === "true";
    else if ([...$(id).options].some((o) => o.value === value)) $(id).value = value;
  }
  const custom = ![...$("window").options].some((o) => o.value === q.window);
  if (custom) { $("window").value = "custom"; $("custom").value = q.window; }
  $("custom-label").hidden = !custom;
  const label = q.aggregate.startsWith("label:");
  $("aggregate").value = label ? "label" : q.aggregate;
  $("label-label").hidden = !label;
  if (label) $("label").value = q.aggregate.slice(6);
  const common = { window: q.window, aggregate: q.aggregate, idle: q.idle };
  if (q.filter) common.filter = q.filter;
  const [series, whole] = await Promise.all([api(COST, { ...common, step: q.step }), api(COST, common)]);
  page.cost = { series, whole, query: common };
  page.chart.resize(); // sized now that the view is shown (it may have been hidden at start)
  page.idleChart.resize();
  page.rows = Object.values(whole.data[0] || {});
  drawCrumbs(q);
  drawTable(q);
  drawChart(q, series);
  drawSummary(q, whole, series);
}

// ---- the lists (lists.js) ----
async function showList(view) {
  const list = LISTS[view];
  $("objects-title").textContent = list.title;
  const table = $("object-rows");
  table.tHead.replaceChildren(document.createElement("tr"));
  table.tBodies[0].replaceChildren();
  for (const [label] of list.columns) table.tHead.rows[0].append(Object.assign(document.createElement("th"), { scope: "col", textContent: label }));
  const body = await api(`${API}/${list.path}`);
  page.objects = body.items;
  table.tBodies[0].replaceChildren(...body.items.map((item) => {
    const tr = document.createElement("tr");
    for (const [, cell] of list.columns) tr.append(Object.assign(document.createElement("td"), { className: "text", textContent: cell(item) }));
    return tr;
  }));
  if (!body.items.length) message(`no ${list.title} visible to you`);
}

// ---- CSV of the table as shown: its rows in its order, its columns, numbers in full precision ----
function csv() {
  const lines = [COLUMNS.map((c) => csvCell(c.label)).join(",")];
  for (const row of page.shown || []) lines.push(COLUMNS.map((c) => csvCell(c.value(row))).join(","));
  const q = query();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([lines.join("\r\n") + "\r\n"], { type: "text/csv" }));
  link.download = `kubetally-${q.aggregate.replace(/[^A-Za-z0-9_.-]/g, "_")}-${q.window.replace(/[^A-Za-z0-9_.-]/g, "_")}.csv`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

// ---- the page ----
async function show() {
  const q = query();
  message("");
  for (const a of document.querySelectorAll("header nav a")) {
    if (a.dataset.view === q.view) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  $("signout").hidden = !sessionStorage.getItem(TOKEN);
  $("cost").hidden = q.view !== "cost";
  $("objects").hidden = q.view === "cost";
  $("signin").hidden = true;
  document.body.dataset.state = "loading";
  try {
    if (q.view === "cost") await showCost(q);
    else if (LISTS[q.view]) await showList(q.view);
    else throw new Error(`no view ${q.view}; views: cost, reports, weights, budgets`);
  } catch (error) {
    if (error instanceof NeedToken) {
      sessionStorage.removeItem(TOKEN);
      $("cost").hidden = $("objects").hidden = true;
      $("signin").hidden = false;
      $("token").focus();
      if (error.message !== "sign in first") message(error.message);
    } else message(error.message);
  }
  // "ready" once the charts are painted: ECharts paints on the next animation frame
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  document.body.dataset.state = "ready";
}

function fromForm(event) {
  event.preventDefault();
  const custom = $("window").value === "custom";
  $("custom-label").hidden = !custom;
  $("label-label").hidden = $("aggregate").value !== "label";
  const windowText = custom ? $("custom").value.trim() : $("window").value;
  if (!windowText) { $("custom").focus(); return; }
  let aggregate = $("aggregate").value;
  if (aggregate === "label") {
    if (!$("label").value.trim()) { $("label").focus(); return; }
    aggregate = "label:" + $("label").value.trim();
  }
  const q = query();
  const changes = { window: windowText, step: $("step").value, aggregate, idle: $("idle").checked ? "true" : "false" };
  if (windowText !== q.window && event.target.id === "window") changes.step = HOURLY.has(windowText) ? "1h" : "1d";
  go(changes);
}

async function start() {
  page.chart = echarts.init($("chart"));
  page.idleChart = echarts.init($("idle-chart"));
  window.addEventListener("resize", () => { page.chart.resize(); page.idleChart.resize(); });
  const settings = await (await fetch("settings.json", { cache: "no-store" })).json();
  page.signIn = settings.signIn;
  for (const a of document.querySelectorAll("header nav a")) {
    const list = LISTS[a.dataset.view];
    a.hidden = Boolean(list) && !settings.lists.includes(list.path);
  }
  $("query").addEventListener("submit", fromForm);
  for (const id of ["window", "step", "aggregate", "idle"]) $(id).addEventListener("change", fromForm);
  $("csv").addEventListener("click", csv);
  $("signin").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN, $("token").value.trim());
    $("token").value = "";
    show();
  });
  $("signout").addEventListener("click", () => { sessionStorage.removeItem(TOKEN); show(); });
  for (const a of document.querySelectorAll("header nav a")) {
    a.addEventListener("click", (event) => { event.preventDefault(); go({ view: a.dataset.view }); });
  }
  page.chart.on("click", (event) => {
    const q = query(), row = page.rows.find((r) => r.name === event.seriesName);
    if (row && drillFilter(q, row) !== null) go({ aggregate: NEXT[q.aggregate], filter: drillFilter(q, row) });
  });
  window.addEventListener("popstate", show);
  await show();
}

start();
