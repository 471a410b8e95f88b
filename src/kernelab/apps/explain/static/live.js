// The Train view (kernelab explain --train): train a CNN in this tab and watch it learn.
// The controls post to /api/live/*; the server streams the run's state (Server-Sent Events,
// a few times a second, the latest state only): curves, every first- and second-layer kernel,
// the feature maps and prediction for the current input, the confusion matrix.
// This tab's runs have their own id: closing the tab closes the stream, which stops its run.
import {
  $, chartFrame, css, decode, el, fromBase64, paintMap, percent, signedRGB, svg,
} from "./util.js";

const id = Array.from(crypto.getRandomValues(new Uint8Array(12)),
  (b) => b.toString(16).padStart(2, "0")).join("");
const FIELDS = ["data", "arch", "kernel_size", "kernels", "kernels2", "symmetry", "init",
  "optimizer", "lr", "batch_size", "epochs"];
const NUMBERS = new Set(["kernel_size", "kernels", "kernels2", "lr", "batch_size", "epochs"]);
// What a test (or a curious reader) can look at: the last state drawn, and the states received.
const live = { id, state: null, received: 0, drawn: 0, kernels: [] };
window.kernelabLive = live;

async function post(action, json = {}) {
  const response = await fetch(`/api/live/${action}`, {
    method: "POST",
    headers: { "X-Kernelab-Session": id, "Content-Type": "application/json" },
    body: JSON.stringify(json),
  });
  const data = await response.json().catch(() => ({}));
  $("live-error").textContent = response.ok ? "" : data.error || `HTTP ${response.status}`;
  return response.ok ? data : null;
}

// ---- the controls

export async function setupLive() {
  const response = await fetch("/api/live", { headers: { "X-Kernelab-Session": id } });
  const { options } = await response.json();
  fillSelect("live-data", options.data);
  fillSelect("live-optimizer", options.optimizer);
  fillSelect("live-symmetry", options.symmetry, (s) => s || "none");
  fillSelect("live-init", options.init,
    (n) => (options.hand_designed.includes(n) ? `${n} (hand-designed)` : n));
  for (const name of FIELDS) $(`live-${name.replace("_", "-")}`).value = options.defaults[name];
  $("live-start").addEventListener("click", () => post("start", choices()));
  for (const action of ["pause", "step", "stop", "reset"]) {
    $(`live-${action}`).addEventListener("click", () => post(action));
  }
  $("live-resume").addEventListener("click", () => post("resume"));
  $("live-lr").addEventListener("change", () => post("lr", { lr: Number($("live-lr").value) }));
  document.addEventListener("kernelab:input", (event) => post("input", { pixels: event.detail }));
  setupTimeline();
  $("tab-button-train").hidden = false;
  const stream = new EventSource(`/api/live/stream?session=${id}`);
  stream.onmessage = (event) => {
    live.received++;
    live.state = JSON.parse(event.data);
    requestAnimationFrame(render);
  };
}

function fillSelect(name, values, label = (v) => v) {
  $(name).replaceChildren(...values.map((v) => el("option", { value: v }, label(v))));
}

function choices() {
  const picked = {};
  for (const name of FIELDS) {
    const value = $(`live-${name.replace("_", "-")}`).value;
    picked[name] = NUMBERS.has(name) ? Number(value) : value;
  }
  return picked;
}

// ---- the run's kernel timeline, while it is paused or over: the kernels and feature maps
// at a recorded step, computed on the server from the snapshot the run wrote at that step

const history = { steps: [], shown: null, status: null, busy: false, wanted: null };

function setupTimeline() {
  $("live-timeline-slider").addEventListener("input", () => {
    history.wanted = history.steps[Number($("live-timeline-slider").value)];
    scrub();
  });
  $("live-timeline-now").addEventListener("click", () => {
    history.wanted = history.shown = null;
    renderedVersion = null;
    render();
  });
}

async function scrub() {
  if (history.busy) return;
  history.busy = true;
  try {
    while (history.wanted !== null && history.wanted !== history.shown) {
      const step = history.wanted;
      const answer = await post("timeline", { step });
      if (!answer) break;
      history.shown = step;
      live.scrubbed = answer;
      $("live-timeline-label").textContent = `step ${step} as recorded ` +
        `(${history.steps.length} steps recorded, 0 to ${history.steps[history.steps.length - 1]})`;
      renderKernels(answer.kernels, step);
      renderInput(answer.input, live.state.classes);
    }
  } finally {
    history.busy = false;
  }
}

// On pausing or ending, the steps recorded so far; on resuming, the slider goes away.
async function followTimeline(status) {
  if (status === history.status) return;
  history.status = status;
  const still = ["paused", "stopped", "finished"].includes(status);
  history.shown = history.wanted = null;
  $("live-timeline").hidden = true;
  if (!still) return;
  const answer = await post("timeline");
  if (!answer || !answer.steps.length || history.status !== status) return;
  history.steps = answer.steps;
  const slider = $("live-timeline-slider");
  slider.max = String(answer.steps.length - 1);
  slider.value = slider.max;
  $("live-timeline-label").textContent = `${answer.steps.length} steps recorded, 0 to ` +
    `${answer.steps[answer.steps.length - 1]}: move the slider to see the kernels then`;
  $("live-timeline").hidden = false;
}

// ---- drawing a state (at most once a frame)

let renderedVersion = null;

function render() {
  const s = live.state;
  if (!s || s === renderedVersion) return;
  renderedVersion = s;
  live.drawn++;
  const running = s.status === "running" || s.status === "starting";
  $("live-status").textContent = `${s.status}` + (s.step ? ` · step ${s.step}` : "") +
    (s.epoch ? ` · epoch ${s.epoch} of ${s.epochs}` : "") + (s.lr ? ` · lr ${s.lr}` : "") +
    (s.message ? ` · ${s.message}` : "");
  $("live-status").dataset.status = s.status;
  $("live-status").dataset.step = s.step;
  const data = (s.data || "").split(";").pop().trim(); // the data used, past why (a fallback)
  $("live-run").textContent = s.run_dir ? `run folder: ${s.run_dir}` +
    (data ? ` · data: ${data.slice(0, 90)}` : "") : "";
  $("live-run").title = s.data || "";
  $("live-pause").disabled = !running;
  $("live-step").disabled = s.status !== "paused";
  $("live-resume").disabled = s.status !== "paused";
  followTimeline(s.status);
  if (!s.curves) return;
  renderCurves(s.curves);
  renderConfusion(s.confusion, s.classes);
  if (history.shown !== null) return; // the timeline's step is shown
  renderKernels(s.kernels, s.step);
  renderInput(s.input, s.classes);
}

// ---- curves: the batch loss and accuracy by step, the held-out ones at each validation

function chart(title, steps, values, held, perEpoch) {
  const size = { W: 360, H: 170, L: 42, R: 10, T: 18, B: 22 };
  const { W, L, R } = size;
  const all = values.concat(held.filter((v) => v !== undefined));
  let lo = all.length ? Math.min(...all) : 0, hi = all.length ? Math.max(...all) : 1;
  if (!(hi > lo)) hi = lo + 1;
  const last = Math.max(1, steps[steps.length - 1] || 1);
  const X = (step) => L + (step * (W - L - R)) / last;
  const { root, Y } = chartFrame(title, size, lo, hi, `step ${last}`);
  const points = values.map((v, i) => `${X(steps[i]).toFixed(1)},${Y(v).toFixed(1)}`).join(" ");
  root.append(svg("polyline", { points, fill: "none", stroke: "#5ea2ff", "stroke-width": 1.5 }));
  held.forEach((v, i) => {
    if (v !== undefined) root.append(svg("circle", { cx: X(perEpoch * (i + 1)), cy: Y(v), r: 3, fill: "#ffb454" }));
  });
  return root;
}

function renderCurves(c) {
  const perEpoch = live.state.steps_per_epoch;
  $("live-curves").replaceChildren(
    chart("loss (batch; ● held-out)", c.step, c.loss, c.epochs.map((e) => e.val_loss), perEpoch),
    chart("accuracy (batch; ● held-out)", c.step, c.acc, c.epochs.map((e) => e.val_acc), perEpoch));
  $("live-curves").dataset.points = c.step.length;
}

// ---- kernels: one picture per layer, a cell per (kernel, input channel), one colour scale

export function kernelValues(layer) {
  const bytes = fromBase64(layer.data);
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
}

function renderKernels(layers, step) {
  const box = $("live-kernel-view");
  box.dataset.step = step;
  live.kernels = layers.map(kernelValues);
  while (box.children.length > layers.length) box.lastChild.remove();
  layers.forEach((layer, n) => {
    let figure = box.children[n];
    if (!figure) {
      figure = el("figure", {}, el("canvas"), el("figcaption"));
      box.append(figure);
    }
    const [out, depth, kh, kw] = layer.shape;
    const values = live.kernels[n];
    const single = depth === 1;
    // one input channel: the kernels in rows of 16; else a column per kernel, a row per input
    const cols = single ? Math.min(out, 16) : layer.shown;
    const rows = single ? Math.ceil(layer.shown / cols) : depth;
    const canvas = figure.firstChild;
    canvas.width = cols * (kw + 1) + 1;
    canvas.height = rows * (kh + 1) + 1;
    let max = 0;
    for (const v of values) max = Math.max(max, Math.abs(v));
    const context = canvas.getContext("2d");
    const image = context.createImageData(canvas.width, canvas.height);
    image.data.fill(40);
    for (let o = 0; o < layer.shown; o++) {
      for (let i = 0; i < depth; i++) {
        const r = single ? Math.floor(o / cols) : i, c = single ? o % cols : o;
        for (let y = 0; y < kh; y++) {
          for (let x = 0; x < kw; x++) {
            const rgb = signedRGB(values[((o * depth + i) * kh + y) * kw + x] / (max || 1));
            const p = 4 * ((1 + r * (kh + 1) + y) * canvas.width + 1 + c * (kw + 1) + x);
            image.data[p] = rgb[0]; image.data[p + 1] = rgb[1]; image.data[p + 2] = rgb[2];
            image.data[p + 3] = 255;
          }
        }
      }
    }
    context.putImageData(image, 0, 0);
    const fit = Math.min(Math.floor(800 / canvas.width), Math.floor(420 / canvas.height));
    const zoom = Math.max(1, Math.min(4, fit));
    canvas.style.width = `${canvas.width * zoom}px`;
    figure.lastChild.textContent = `layer ${layer.name}: ${out} kernels of ${depth}×${kh}×${kw}` +
      (layer.shown < out ? ` (first ${layer.shown} shown)` : "") +
      (single ? "" : " (a column per kernel, a row per input channel)") +
      ` · colours ±${max.toPrecision(3)}`;
  });
}

// ---- the current input: its feature maps by layer, and the prediction

// The layers' pictures are made once per architecture and repainted in place afterwards.
function renderInput(view, classes) {
  const box = $("live-maps");
  const layers = view.structure.map((l, i) => [l, view.layers[i]])
    .filter(([l, m]) => m.shape.length === 3 && l.kind !== "activation");
  const layout = layers.map(([l, m]) => `${l.name}:${m.shape.join("x")}`).join(",");
  if (box.dataset.layout !== layout) {
    box.dataset.layout = layout;
    box.replaceChildren(...layers.map(([l, maps]) => el("div", { class: "live-layer" },
      el("div", { class: "hint" }, `${l.name} ${l.type} ${maps.shape.join("×")}`),
      el("div", { class: "live-grid" },
        ...Array.from({ length: Math.min(maps.shape[0], 64) }, () => el("canvas"))))));
  }
  layers.forEach(([, maps], n) => {
    const decoded = decode(maps);
    box.children[n].lastChild.childNodes.forEach((canvas, c) => paintMap(canvas, decoded, c));
  });
  const best = view.prediction;
  $("live-prediction").replaceChildren(...view.probabilities.map((p, k) => el("li",
    { class: k === best ? "best" : "" }, el("span", {}, classes[k]),
    el("div", { class: "bar" }, bar(p)),
    el("span", {}, percent(p)))));
}

function bar(p) {
  const fill = el("div");
  fill.style.width = `${100 * p}%`;
  return fill;
}

function renderConfusion(matrix, classes) {
  if (!matrix) {
    $("live-confusion").textContent = "after the first validation (the end of an epoch)";
    return;
  }
  const max = Math.max(...matrix.flat());
  const right = matrix.reduce((sum, row, i) => sum + row[i], 0);
  const total = matrix.flat().reduce((a, b) => a + b, 0);
  const table = el("table", { class: "confusion" },
    el("tr", {}, el("th"), ...classes.map((c) => el("th", {}, c))));
  matrix.forEach((row, i) => table.append(el("tr", {}, el("th", {}, classes[i]),
    ...row.map((count, j) => {
      const td = el("td", {}, String(count));
      const a = count ? 0.15 + 0.85 * Math.log1p(count) / Math.log1p(max) : 0;
      td.style.background = css(i === j ? [94 * a, 162 * a, 255 * a] : [255 * a, 154 * a, 31 * a]);
      return td;
    }))));
  $("live-confusion").replaceChildren(
    el("div", { class: "hint" }, `held-out accuracy ${(100 * right / total).toFixed(2)}% ` +
      `of ${total} images; rows: true class, columns: predicted`), table);
}
