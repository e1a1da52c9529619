// The workqueue dashboard: polls /api/status.json every second and redraws. No build step.
"use strict";

const POLL_MS = 1000;
const TOKEN = new URLSearchParams(location.search).get("token");  // when the dashboard is not on loopback
const STATUS_URL = "/api/status.json" + (TOKEN ? "?token=" + encodeURIComponent(TOKEN) : "");
const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"];

function $(id) { return document.getElementById(id); }

function text(value) {
  return value === null || value === undefined ? "–" : String(value);
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + units[i];
}

function seconds(s) {
  if (s === null || s === undefined) return "–";
  return s < 1 ? (s * 1000).toFixed(0) + " ms" : s < 120 ? s.toFixed(1) + " s" : (s / 60).toFixed(1) + " min";
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    if (cell instanceof Node) td.appendChild(cell); else td.textContent = text(cell);
    tr.appendChild(td);
  }
  return tr;
}

function fill(tableId, rows) {
  const body = $(tableId).querySelector("tbody");
  body.replaceChildren(...rows);
}

function progressBar(c) {
  const bar = document.createElement("div");
  bar.className = "bar";
  bar.title = c.percent_done + "% finished";
  for (const part of ["done", "failed", "running"]) {
    const piece = document.createElement("i");
    piece.className = part;
    piece.style.width = (c.total ? 100 * c[part] / c.total : 0) + "%";
    bar.appendChild(piece);
  }
  return bar;
}

function summary(s) {
  $("tasks-waiting").textContent = s.tasks_waiting;
  $("tasks-running").textContent = s.tasks_running;
  $("tasks-done").textContent = s.tasks_done;
  $("tasks-failed").textContent = s.tasks_failed;
  $("workers-connected").textContent = s.workers_connected;
  $("cores").textContent = (s.total_cores - s.free_cores) + " / " + s.total_cores;
  $("bytes").textContent = bytes(s.bytes_sent) + " / " + bytes(s.bytes_received);
  $("cache-hits").textContent = s.cache_hits;
}

function categories(rows) {
  fill("categories", rows.map(c => row([c.category, progressBar(c), c.waiting, c.running, c.done, c.failed])));
}

function workers(rows) {
  fill("workers", rows.map(w => row([
    w.worker_id, w.hostname, w.running, w.completed,
    text(w.cores_used) + " / " + text(w.cores), text(w.memory_used) + " / " + text(w.memory),
    w.last_measured_memory === null ? "–" :
      (w.last_measured_cores || 0).toFixed(2) + " cores, " + Math.round(w.last_measured_memory) + " MB",
    w.cached_files + " files, " + bytes(w.cached_bytes),
    w.sending ? "sending" : "–",
  ])));
}

function stream(rows, running) {
  fill("stream", rows.slice(0, 100).map(t => {
    const tr = row([t.task_id, t.category, t.worker, seconds(t.ago) + " ago", seconds(t.duration),
                    t.result === "SUCCESS" ? "exit " + t.exit_code : t.result, t.command]);
    if (t.result !== "SUCCESS" || t.exit_code !== 0) tr.className = "bad-result";
    return tr;
  }));
  drawStream(rows, running);
}

function canvasContext(id) {
  const canvas = $(id);
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.font = "11px sans-serif";
  return [canvas, ctx];
}

function drawStream(rows, running) {
  const [canvas, ctx] = canvasContext("stream-chart");
  if (!rows.length && !running.length) return;
  const workersSeen = [...new Set(rows.map(t => t.worker).concat(running.map(t => t.worker)))].sort();
  const span = Math.max(1, ...rows.map(t => t.ago + t.duration), ...running.map(t => t.since));
  const left = 110, width = canvas.width - left - 10;
  const lane = Math.max(4, Math.min(24, (canvas.height - 16) / workersSeen.length));
  workersSeen.forEach((w, i) => {
    ctx.fillStyle = "#444";
    ctx.fillText(String(w).slice(0, 16), 2, 12 + i * lane + lane / 2);
  });
  const bar = (t, ago, duration, color, alpha) => {
    const y = 4 + workersSeen.indexOf(t.worker) * lane;
    ctx.globalAlpha = alpha;
    ctx.fillStyle = color;
    ctx.fillRect(left + width * (1 - (ago + duration) / span), y, Math.max(1, width * duration / span), lane - 2);
    ctx.globalAlpha = 1;
  };
  for (const t of rows) {
    bar(t, t.ago, t.duration, t.result === "SUCCESS" ? categoryColor(t.category) : "#000", 1);
  }
  for (const t of running) bar(t, 0, t.since, categoryColor(t.category), 0.45);
  ctx.fillStyle = "#666";
  ctx.fillText("-" + seconds(span), left, canvas.height - 2);
  ctx.fillText("now", canvas.width - 30, canvas.height - 2);
}

const categoryColors = {};
function categoryColor(category) {
  if (!(category in categoryColors)) {
    categoryColors[category] = COLORS[Object.keys(categoryColors).length % COLORS.length];
  }
  return categoryColors[category];
}

function throughput(series) {
  const [canvas, ctx] = canvasContext("throughput");
  const n = series.done.length;
  const peak = Math.max(1, ...series.done.map((d, i) => d + series.failed[i]));
  const w = canvas.width / n, h = canvas.height - 14;
  for (let i = 0; i < n; i++) {
    const ok = h * series.done[i] / peak, bad = h * series.failed[i] / peak;
    ctx.fillStyle = "#2e7d32";
    ctx.fillRect(i * w, h - ok, Math.max(1, w - 1), ok);
    ctx.fillStyle = "#b00020";
    ctx.fillRect(i * w, h - ok - bad, Math.max(1, w - 1), bad);
  }
  ctx.fillStyle = "#666";
  ctx.fillText("peak " + peak + "/s", 4, canvas.height - 2);
}

function failures(rows) {
  const box = $("failures");
  if (!rows.length) { box.innerHTML = '<p class="none">none</p>'; return; }
  box.replaceChildren(...rows.map(f => {
    const div = document.createElement("div");
    div.className = "failure";
    const title = document.createElement("b");
    title.textContent = "task " + f.task_id + " (" + f.category + ") on " + text(f.worker) + ": " + f.result +
      ", exit " + f.exit_code + " — " + f.command;
    const out = document.createElement("pre");
    out.textContent = f.output || "(no output)";
    div.append(title, out);
    return div;
  }));
}

function show(data) {
  $("master").textContent = data.master;
  summary(data.summary);
  categories(data.categories);
  workers(data.workers);
  stream(data.stream, data.running);
  throughput(data.throughput);
  failures(data.failures);
  const state = $("state");
  state.className = "state";
  state.textContent = "updated " + new Date(data.time * 1000).toLocaleTimeString();
}

async function poll() {
  try {
    const response = await fetch(STATUS_URL, {cache: "no-store"});
    const text = await response.text();
    let data;
    try { data = JSON.parse(text); } catch (error) { throw new Error(text || response.statusText); }
    if (!response.ok) throw new Error(data.error || response.statusText);
    show(data);
  } catch (error) {
    const state = $("state");
    state.className = "state error";
    state.textContent = String(error.message || error);
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
