"use strict";
/* 2 to 10 runs side by side: params (differing ones highlighted), latest metrics, one
   metric's curves overlaid, and a param against a metric as a scatter plot and as
   parallel coordinates of every differing param. */

const RUN_IDS = (new URLSearchParams(location.search).get("runs") || "").split(",").filter(Boolean);
let DATA = null;

function label(run) { return run.name ? `${run.name} (${run.run_id.slice(0, 6)})` : run.run_id.slice(0, 12); }

function headRow() {
  return el("tr", {}, el("th", {}, ""), ...DATA.runs.map((r) => el("th", { "data-run-id": r.run_id }, runLink(r), " ", statusBadge(r.status))));
}

function renderTable(id, entity, keys, differing) {
  const different = new Set(differing);
  const onlyDiff = entity === "params" && document.getElementById("only-diff").checked;
  const table = document.getElementById(id);
  table.tHead.replaceChildren(headRow());
  table.tBodies[0].replaceChildren(...keys.filter((k) => !onlyDiff || different.has(k)).map((key) =>
    el("tr", { "data-key": key, class: different.has(key) ? "diff" : null }, el("td", { text: key }),
      ...DATA.runs.map((r) => el("td", { class: entity === "metrics" ? "num" : "", text: fmtValue(r[entity][key]) })))));
}

function fillSelect(id, keys, preferred) {
  const select = document.getElementById(id);
  select.replaceChildren(...keys.map((k) => el("option", { value: k, text: k })));
  const pick = preferred.find((k) => keys.includes(k));
  if (pick) select.value = pick;
}

function asNumber(value) {
  if (value === null || value === undefined || value === "") return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

async function drawCurves() {
  const key = document.getElementById("curve-metric").value;
  const axis = document.getElementById("curve-x").value;
  const node = document.getElementById("curves");
  if (!key) { node.textContent = "no metrics"; return; }
  const traces = await Promise.all(DATA.runs.map(async (run) => {
    try {
      const series = await getJSON(`/api/runs/${encodeURIComponent(run.run_id)}/metric?key=${encodeURIComponent(key)}&buckets=800`);
      return { x: xValues(series, axis, run.start_time), y: series.values, name: label(run), type: "scatter",
        mode: series.values.length <= 60 ? "lines+markers" : "lines" };
    } catch (e) { return null; }
  }));
  await Plotly.react(node, traces.filter(Boolean), { margin: PLOT_MARGIN, height: 380, xaxis: { title: { text: axisTitle(axis) } },
    yaxis: { title: { text: key } }, legend: { orientation: "h" } }, PLOT_CONFIG);
  node.dataset.traces = String(traces.filter(Boolean).length);
}

async function drawParamViews() {
  const param = document.getElementById("scatter-param").value;
  const metric = document.getElementById("scatter-metric").value;
  const runs = DATA.runs;
  const xs = runs.map((r) => r.params[param]);
  const numeric = xs.every((v) => v === undefined || asNumber(v) !== null);
  const scatter = { x: xs.map((v) => (numeric ? asNumber(v) : v)), y: runs.map((r) => r.metrics[metric]), text: runs.map(label),
    mode: "markers+text", textposition: "top center", type: "scatter", marker: { size: 11 } };
  await Plotly.react("scatter", [scatter], { margin: PLOT_MARGIN, height: 340,
    xaxis: { title: { text: "params." + param }, type: numeric ? "linear" : "category" }, yaxis: { title: { text: metric } } }, PLOT_CONFIG);
  const keys = DATA.differing_params.length ? DATA.differing_params : DATA.param_keys.slice(0, 6);
  const dimensions = keys.slice(0, 12).map((key) => {
    const values = runs.map((r) => r.params[key]);
    if (values.every((v) => asNumber(v) !== null)) return { label: key, values: values.map(asNumber) };
    const categories = [...new Set(values.map(String))].sort();
    return { label: key, values: values.map((v) => categories.indexOf(String(v))), tickvals: categories.map((_, i) => i), ticktext: categories };
  });
  const scores = runs.map((r) => (typeof r.metrics[metric] === "number" ? r.metrics[metric] : null));
  dimensions.push({ label: metric, values: scores });
  await Plotly.react("parallel", [{ type: "parcoords", dimensions, line: { color: scores, colorscale: "Viridis", showscale: true } }],
    { margin: { l: 60, r: 60, t: 50, b: 20 }, height: 340 }, PLOT_CONFIG);
}

async function main() {
  try {
    DATA = await getJSON("/api/compare?runs=" + RUN_IDS.map(encodeURIComponent).join(","));
  } catch (e) {
    showError(document.getElementById("error"), e.message);
    return;
  }
  document.title = `Compare ${DATA.runs.length} runs · autologagent`;
  const systemLast = (a, b) => (a.startsWith("system/") - b.startsWith("system/")) || a.localeCompare(b);
  DATA.metric_keys.sort(systemLast);
  const render = () => {
    renderTable("params", "params", DATA.param_keys, DATA.differing_params);
    renderTable("metrics", "metrics", DATA.metric_keys, DATA.differing_metrics);
  };
  render();
  document.getElementById("only-diff").addEventListener("change", render);
  const own = DATA.metric_keys.filter((k) => !k.startsWith("system/"));
  const shared = own.filter((k) => DATA.runs.every((r) => k in r.metrics));
  fillSelect("curve-metric", DATA.metric_keys, shared.concat(own));
  fillSelect("scatter-param", DATA.param_keys, DATA.differing_params);
  fillSelect("scatter-metric", DATA.metric_keys, shared.concat(own));
  for (const id of ["curve-metric", "curve-x"]) document.getElementById(id).addEventListener("change", drawCurves);
  for (const id of ["scatter-param", "scatter-metric"]) document.getElementById(id).addEventListener("change", drawParamViews);
  await Promise.all([drawCurves(), drawParamViews()]);
  document.body.dataset.loaded = "1";
}

document.addEventListener("DOMContentLoaded", main);
