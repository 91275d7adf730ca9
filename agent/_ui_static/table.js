"use strict";
/* The runs table: filter, sort by any column, choose columns, select runs to compare.
   It polls the store every 2 s, so running runs' rows move on without a reload. */

const state = {
  sort: "start_time", order: "desc", filter: "", experiment: "",
  selected: new Set(), lastBody: "", data: null,
  chosen: JSON.parse(localStorage.getItem("autolog.columns") || "null"),
};
const FIXED = [
  ["status", "Status"], ["name", "Name"], ["experiment", "Experiment"], ["start_time", "Started"],
  ["duration", "Duration"], ["source", "Source"], ["commit", "Commit"],
];
const POLL_MS = 2000;

function chosenColumns(data) {
  const known = new Set(data.param_keys.map((k) => "params." + k).concat(data.metric_keys.map((k) => "metrics." + k)));
  const chosen = state.chosen || data.columns || [];
  return chosen.filter((c) => known.has(c));
}

function query() {
  const params = new URLSearchParams({ sort: state.sort, order: state.order });
  // only the shown columns' values travel; "default" lets the server pick them at first
  params.set("columns", state.chosen ? state.chosen.join(",") || "none" : "default");
  if (state.filter) params.set("filter", state.filter);
  if (state.experiment) params.set("experiment", state.experiment);
  return "/api/runs?" + params.toString();
}

async function refresh() {
  let text;
  try {
    const response = await fetch(query(), { cache: "no-store" });
    text = await response.text();
    if (!response.ok) {
      let message = text;
      try { message = JSON.parse(text).error; } catch (e) { /* keep text */ }
      showError(document.getElementById("filter-error"), message);
      return;
    }
  } catch (e) {
    showError(document.getElementById("filter-error"), "cannot reach the UI server: " + e.message);
    return;
  }
  showError(document.getElementById("filter-error"), "");
  if (text === state.lastBody) return;
  state.lastBody = text;
  state.data = JSON.parse(text);
  render();
}

function headerCell(key, label, group) {
  const th = el("th", { "data-sort": key, title: "sort by " + key, onclick: () => sortBy(key) }, label);
  if (group) th.prepend(el("span", { class: "muted", text: group + " " }));
  if (state.sort === key) th.classList.add(state.order === "asc" ? "sorted-asc" : "sorted-desc");
  return th;
}

function sortBy(key) {
  if (state.sort === key) state.order = state.order === "asc" ? "desc" : "asc";
  else { state.sort = key; state.order = key === "name" || key === "source" ? "asc" : "desc"; }
  state.lastBody = "";
  refresh();
}

function render() {
  const data = state.data;
  document.getElementById("store").textContent = data.store || "";
  const columns = chosenColumns(data);
  const head = el("tr", {}, el("th", {}, ""));
  for (const [key, label] of FIXED) head.append(headerCell(key, label));
  for (const column of columns) {
    const [entity, ...rest] = column.split(".");
    head.append(headerCell(column, rest.join("."), entity === "params" ? "param" : "metric"));
  }
  const table = document.getElementById("runs");
  table.tHead.replaceChildren(head);
  const rows = data.runs.map((run) => {
    const box = el("input", { type: "checkbox", "data-run-id": run.run_id, onchange: (e) => select(run.run_id, e.target.checked) });
    box.checked = state.selected.has(run.run_id);
    const name = el("td", { class: "name" }, run.parent_run_id ? "↳ " : "", runLink(run));
    const tr = el("tr", { "data-run-id": run.run_id },
      el("td", {}, box), el("td", {}, statusBadge(run.status)), name,
      el("td", { text: run.experiment }), el("td", { text: fmtTime(run.start_time) }),
      el("td", { class: "num", text: fmtDuration(run.duration) }),
      el("td", { text: run.source ? run.source.split("/").pop() : "", title: run.source || "" }),
      el("td", { text: run.commit ? run.commit.slice(0, 8) : "", title: run.commit || "" }));
    for (const column of columns) {
      const [entity, ...rest] = column.split(".");
      const value = run[entity][rest.join(".")];
      tr.append(el("td", { class: entity === "metrics" ? "num" : "", "data-column": column, text: fmtValue(value) }));
    }
    return tr;
  });
  table.tBodies[0].replaceChildren(...rows);
  document.getElementById("empty").hidden = data.total > 0;
  document.getElementById("count").textContent = `${data.runs.length} of ${data.total} runs`;
  renderColumnPicker(data, columns);
  updateCompare();
}

function renderColumnPicker(data, columns) {
  const list = document.getElementById("column-list");
  if (list.dataset.keys === JSON.stringify([data.param_keys, data.metric_keys, columns])) return;
  list.dataset.keys = JSON.stringify([data.param_keys, data.metric_keys, columns]);
  const chosen = new Set(columns);
  const box = (column) => {
    const input = el("input", { type: "checkbox", value: column, onchange: () => toggleColumn(column) });
    input.checked = chosen.has(column);
    return el("label", {}, input, " " + column);
  };
  list.replaceChildren(
    el("strong", { text: "params" }), ...data.param_keys.map((k) => box("params." + k)),
    el("strong", { text: "metrics" }), ...data.metric_keys.map((k) => box("metrics." + k)));
}

function toggleColumn(column) {
  const columns = chosenColumns(state.data);
  const at = columns.indexOf(column);
  if (at >= 0) columns.splice(at, 1); else columns.push(column);
  state.chosen = columns;
  localStorage.setItem("autolog.columns", JSON.stringify(columns));
  state.lastBody = "";
  refresh();
}

function select(runId, on) {
  if (on) state.selected.add(runId); else state.selected.delete(runId);
  updateCompare();
}

function updateCompare() {
  const button = document.getElementById("compare");
  const n = state.selected.size;
  button.disabled = n < 2 || n > 10;
  button.textContent = n ? `Compare (${n})` : "Compare";
  button.title = "select 2 to 10 runs";
}

async function loadExperiments() {
  try {
    const data = await getJSON("/api/experiments");
    const select = document.getElementById("experiment");
    const current = select.value;
    select.replaceChildren(el("option", { value: "", text: "all" }),
      ...data.experiments.map((e) => el("option", { value: e.name, text: `${e.name} (${e.runs})` })));
    select.value = current;
  } catch (e) { /* the table shows the error */ }
}

function applyFilter() {
  state.filter = document.getElementById("filter").value.trim();
  const params = new URLSearchParams(location.search);
  if (state.filter) params.set("filter", state.filter); else params.delete("filter");
  history.replaceState(null, "", params.toString() ? "?" + params.toString() : location.pathname);
  state.lastBody = "";
  refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  const initial = new URLSearchParams(location.search).get("filter") || "";
  document.getElementById("filter").value = initial;
  state.filter = initial;
  document.getElementById("apply").addEventListener("click", applyFilter);
  document.getElementById("filter").addEventListener("keydown", (e) => { if (e.key === "Enter") applyFilter(); });
  document.getElementById("experiment").addEventListener("change", (e) => { state.experiment = e.target.value; state.lastBody = ""; refresh(); });
  document.getElementById("compare").addEventListener("click", () => {
    location.href = "/compare?runs=" + [...state.selected].map(encodeURIComponent).join(",");
  });
  loadExperiments();
  refresh();
  setInterval(() => { if (!document.hidden) { refresh(); } }, POLL_MS);
  setInterval(() => { if (!document.hidden) loadExperiments(); }, 15000);
});
