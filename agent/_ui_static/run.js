"use strict";
/* One run: facts, params, metrics with a chart each, system metrics grouped, child runs,
   datasets, artifacts with previews, tags. While the run is RUNNING the page polls the
   store every 2 s and redraws its curves in place (Plotly.react), without a reload. */

const RUN_ID = decodeURIComponent(location.pathname.split("/").pop());
const POLL_MS = 2000;
const page = { run: null, axis: "step", charts: new Map(), timer: null, artifactsShown: "", loading: false };

function apiRun(suffix) { return "/api/runs/" + encodeURIComponent(RUN_ID) + (suffix || ""); }

function artifactUrl(path, extra) {
  return apiRun("/artifact") + "?path=" + encodeURIComponent(path) + (extra || "");
}

function kvRows(tbody, mapping, render) {
  tbody.replaceChildren(...Object.entries(mapping).map(([key, value]) =>
    el("tr", { "data-key": key }, el("td", { text: key }), el("td", { title: String(value) }, render ? render(value) : String(value)))));
}

function renderFacts(run) {
  document.title = (run.name || run.run_id) + " · autologagent";
  document.getElementById("crumb-run").textContent = run.name || run.run_id;
  document.getElementById("run-name").textContent = run.name || run.run_id;
  const status = document.getElementById("run-status");
  status.textContent = run.status;
  status.className = "status status-" + run.status;
  const facts = [["run id", run.run_id], ["experiment", run.experiment], ["started", fmtTime(run.start_time)],
    ["ended", fmtTime(run.end_time)], ["duration", fmtDuration(runDuration(run))]];
  if (run.source) facts.push(["source", run.source]);
  if (run.commit) facts.push(["git commit", run.commit]);
  const dl = document.getElementById("run-facts");
  dl.replaceChildren();
  for (const [key, value] of facts) dl.append(el("dt", { text: key }), el("dd", { text: value }));
  if (run.parent_run_id) {
    dl.append(el("dt", { text: "parent run" }),
      el("dd", {}, el("a", { href: "/run/" + encodeURIComponent(run.parent_run_id), text: run.parent_name || run.parent_run_id })));
  }
}

function renderTables(run) {
  kvRows(document.querySelector("#params tbody"), run.params);
  document.getElementById("params-count").textContent = `(${Object.keys(run.params).length})`;
  kvRows(document.querySelector("#tags tbody"), run.tags);
  const metrics = document.querySelector("#metrics tbody");
  metrics.replaceChildren(...Object.entries(run.metrics).map(([key, m]) =>
    el("tr", { "data-key": key }, el("td", { text: key }), el("td", { class: "num", text: fmtValue(m.value) }), el("td", { class: "num", text: m.step }))));
  const children = document.querySelector("#children tbody");
  children.replaceChildren(...run.children.map((c) => el("tr", { "data-run-id": c.run_id },
    el("td", {}, runLink(c)), el("td", {}, statusBadge(c.status)), el("td", { text: fmtTime(c.start_time) }),
    el("td", { class: "num", text: fmtDuration(runDuration(c)) }))));
  document.getElementById("children-section").hidden = run.children.length === 0;
  const inputs = document.querySelector("#inputs tbody");
  inputs.replaceChildren(...run.inputs.map((d) => el("tr", {}, el("td", { text: d.name }), el("td", { text: d.context }),
    el("td", { text: d.digest }), el("td", { text: d.source }), el("td", { text: d.profile, title: d.profile }))));
  document.getElementById("inputs-section").hidden = run.inputs.length === 0;
  document.getElementById("system-section").hidden = Object.keys(run.system_metrics).length === 0;
}

function chartBox(parent, key) {
  let box = page.charts.get(key);
  if (box) return box;
  const plot = el("div", { class: "plot", "data-key": key });
  const note = el("div", { class: "chart-note" });
  const wrapper = el("div", { class: "chart", "data-key": key }, el("div", { class: "chart-title", text: key }), note, plot);
  parent.append(wrapper);
  box = { key, plot, note, wrapper, drawn: false };
  page.charts.set(key, box);
  return box;
}

async function drawChart(box) {
  const width = Math.max(200, box.plot.clientWidth || 600);
  let series;
  try {
    series = await getJSON(apiRun("/metric") + "?key=" + encodeURIComponent(box.key) + "&buckets=" + Math.ceil(width));
  } catch (e) {
    box.note.textContent = e.message;
    return;
  }
  const x = xValues(series, page.axis, page.run.start_time);
  const few = series.values.length <= 60;
  const trace = { x, y: series.values, type: "scatter", mode: few ? "lines+markers" : "lines", name: box.key, line: { width: 1.5 } };
  const layout = { margin: PLOT_MARGIN, height: 260, xaxis: { title: { text: axisTitle(page.axis) } }, yaxis: { automargin: true }, showlegend: false };
  await Plotly.react(box.plot, [trace], layout, PLOT_CONFIG);
  box.drawn = true;
  box.wrapper.dataset.points = String(series.values.length);
  box.wrapper.dataset.total = String(series.total_points);
  box.note.textContent = series.downsampled
    ? `${series.total_points.toLocaleString()} points, drawn as ${series.values.length.toLocaleString()} (each bucket's min and max)`
    : `${series.total_points.toLocaleString()} points`;
}

function renderCharts(run) {
  const charts = document.getElementById("charts");
  const keys = Object.keys(run.metrics);
  for (const key of keys) chartBox(charts, key);
  const system = document.getElementById("system");
  for (const [group, groupKeys] of Object.entries(run.system_groups)) {
    let section = system.querySelector(`[data-group="${CSS.escape(group)}"]`);
    if (!section) {
      section = el("div", { "data-group": group }, el("h3", { text: group }), el("div", { class: "charts" }));
      system.append(section);
    }
    for (const key of groupKeys) chartBox(section.querySelector(".charts"), key);
  }
  return Promise.all([...page.charts.values()].map(drawChart));
}

function renderArtifacts(run) {
  const signature = JSON.stringify(run.artifacts);
  if (signature === page.artifactsShown) return;
  page.artifactsShown = signature;
  const list = document.getElementById("artifact-list");
  list.replaceChildren(...run.artifacts.map((a) => {
    const open = el("a", { href: "#", class: "open", "data-path": a.path, text: a.path,
      onclick: (e) => { e.preventDefault(); showArtifact(a); } });
    const download = el("a", { href: artifactUrl(a.path, "&download=1"), class: "download", title: "download", text: "⤓" });
    return el("li", { "data-path": a.path }, open, el("span", { class: "size" }, fmtSize(a.size), " ", download));
  }));
  if (!run.artifacts.length) list.append(el("li", { class: "muted", text: "no artifacts" }));
}

function fmtSize(bytes) {
  if (bytes < 1024) return bytes + " B";
  if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KiB";
  return (bytes / 1024 / 1024).toFixed(1) + " MiB";
}

function csvTable(text, separator) {
  const lines = text.split(/\r?\n/).filter((l) => l.length).slice(0, 201);
  const rows = lines.map((l) => l.split(separator));
  const table = el("table", { class: "grid" });
  if (rows.length) table.append(el("thead", {}, el("tr", {}, ...rows[0].map((c) => el("th", { text: c })))));
  table.append(el("tbody", {}, ...rows.slice(1).map((r) => el("tr", {}, ...r.map((c) => el("td", { text: c }))))));
  return el("div", { class: "table-wrap" }, table);
}

async function showArtifact(artifact) {
  for (const li of document.querySelectorAll("#artifact-list li")) li.classList.toggle("active", li.dataset.path === artifact.path);
  const view = document.getElementById("artifact-view");
  view.className = "";
  const header = el("p", {}, el("strong", { text: artifact.path }), " ", el("span", { class: "muted", text: fmtSize(artifact.size) }), " ",
    el("a", { href: artifactUrl(artifact.path, "&download=1"), text: "download" }));
  let body;
  if (artifact.kind === "image") {
    body = el("img", { src: artifactUrl(artifact.path), alt: artifact.path, "data-path": artifact.path });
  } else if (artifact.kind === "html") {
    body = el("iframe", { sandbox: "allow-scripts", src: artifactUrl(artifact.path), title: artifact.path });
  } else if (["text", "json", "csv"].includes(artifact.kind)) {
    const response = await fetch(artifactUrl(artifact.path, "&preview=1"));
    let text = await response.text();
    const truncated = response.headers.get("X-Preview-Truncated");
    if (artifact.kind === "json" && !truncated) {
      try { text = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* shown as it is */ }
    }
    body = artifact.kind === "csv" ? csvTable(text, artifact.path.toLowerCase().endsWith(".tsv") ? "\t" : ",") : el("pre", { text });
    if (truncated) header.append(el("span", { class: "muted", text: " (first 256 KiB shown)" }));
  } else {
    body = el("p", { class: "muted", text: "No preview for this kind of file; download it instead." });
  }
  view.replaceChildren(header, body);
}

async function load(first) {
  if (page.loading) return;  // a slow answer: the next tick comes after it
  page.loading = true;
  try {
    await refresh(first);
  } finally {
    page.loading = false;
  }
}

async function refresh(first) {
  let run;
  try {
    run = await getJSON(apiRun());
  } catch (e) {
    showError(document.getElementById("error"), e.message);
    return;
  }
  showError(document.getElementById("error"), "");
  const wasRunning = page.run && page.run.status === "RUNNING";
  page.run = run;
  renderFacts(run);
  renderTables(run);
  renderArtifacts(run);
  await renderCharts(run);
  document.body.dataset.status = run.status;
  document.body.dataset.loaded = "1";
  if (first && run.status === "RUNNING" && !page.timer) page.timer = setInterval(() => load(false), POLL_MS);
  if (!first && wasRunning && run.status !== "RUNNING" && page.timer) { clearInterval(page.timer); page.timer = null; }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const radio of document.querySelectorAll("input[name=xaxis]")) {
    radio.addEventListener("change", (e) => { page.axis = e.target.value; Promise.all([...page.charts.values()].map(drawChart)); });
  }
  load(true);
});
