"use strict";
/* Helpers shared by the three pages: fetching JSON, formatting, small DOM builders. */

async function getJSON(url) {
  const response = await fetch(url, { cache: "no-store" });
  let data = null;
  try { data = await response.json(); } catch (e) { /* not JSON */ }
  if (!response.ok) throw new Error((data && data.error) || (response.status + " " + response.statusText));
  return data;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function fmtTime(ms) {
  if (ms === null || ms === undefined) return "-";
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function fmtDuration(ms) {
  if (ms === null || ms === undefined) return "-";
  const s = ms / 1000;
  if (s < 60) return s.toFixed(1) + "s";
  if (s < 3600) return Math.floor(s / 60) + "m " + Math.round(s % 60) + "s";
  return Math.floor(s / 3600) + "h " + Math.round((s % 3600) / 60) + "m";
}

function runDuration(run) {
  if (run.duration !== undefined && run.duration !== null) return run.duration;
  if (run.start_time === null || run.start_time === undefined) return null;
  if (run.end_time === null || run.end_time === undefined) return run.status === "RUNNING" ? Date.now() - run.start_time : null;
  return run.end_time - run.start_time;
}

function fmtValue(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") {
    if (Number.isInteger(value)) return String(value);
    const abs = Math.abs(value);
    return abs !== 0 && (abs < 1e-3 || abs >= 1e6) ? value.toExponential(4) : String(Number(value.toPrecision(6)));
  }
  return String(value);
}

function statusBadge(status) {
  return el("span", { class: "status status-" + status, text: status });
}

function runLink(run) {
  return el("a", { href: "/run/" + encodeURIComponent(run.run_id), text: run.name || run.run_id.slice(0, 12) });
}

function showError(node, message) {
  node.textContent = message || "";
  node.hidden = !message;
}

/* x values of a series for the chosen axis: step, seconds since the run started, or dates. */
function xValues(series, axis, startMs) {
  if (axis === "relative") return series.timestamps.map((t) => (t - startMs) / 1000);
  if (axis === "wall") return series.timestamps.map((t) => new Date(t));
  return series.steps;
}

function axisTitle(axis) {
  return axis === "relative" ? "seconds since start" : axis === "wall" ? "time" : "step";
}

const PLOT_CONFIG = { displaylogo: false, responsive: true };
const PLOT_MARGIN = { l: 55, r: 15, t: 10, b: 40 };
