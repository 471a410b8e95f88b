// The network: every layer as a column of feature-map thumbnails, updated on each forward
// pass; the forward passes themselves, and the class probabilities.
import { drawMarks, requestArithmetic, select } from "./arithmetic.js";
import {
  $, api, asMaps, decode, el, fmt, fromBase64, paint, paintMap, palette, percent, signed, state,
  toBase64, valueAt,
} from "./util.js";

// ---- forward passes: debounced, one request in flight, stale answers dropped

// The drawing as the model input (C, H, W): grey, copied into every channel.
function drawingPixels() {
  const [c] = state.model.input_shape;
  const grey = Uint8Array.from(state.ink, (v) => Math.round(255 * v));
  const pixels = new Uint8Array(c * grey.length);
  for (let k = 0; k < c; k++) pixels.set(grey, k * grey.length);
  return pixels;
}


let updateTimer = null, inFlight = false, again = false, latest = 0;

export function requestUpdate(delay = 25) {
  clearTimeout(updateTimer);
  updateTimer = setTimeout(runUpdate, delay);
}

async function runUpdate() {
  if (inFlight) { again = true; return; }
  inFlight = true;
  const mine = ++latest;
  try {
    const view = await api("/api/forward", {
      method: "POST",
      json: { pixels: toBase64(drawingPixels()), centre: state.centre },
    });
    if (mine === latest) renderForward(view);
    document.dispatchEvent(new CustomEvent("kernelab:input", { detail: view.pixels })); // Train view
    $("forward-error").textContent = "";
  } catch (error) {
    $("forward-error").textContent = error.message;
  } finally {
    inFlight = false;
    if (again) { again = false; runUpdate(); }
  }
}

// One row per class: name, probability bar (a tick marks the trained model's), probability,
// logit, and the change of both from the trained model's answer once a kernel is edited.
export function buildProbabilities() {
  const list = $("probabilities");
  list.replaceChildren(...state.model.classes.map((name) => el("li", {},
    el("span", {}, name), el("div", { class: "bar" }, el("div"), el("i", { hidden: true })),
    el("span", { class: "probability" }), el("span", { class: "logit" }),
    el("span", { class: "change" }))));
}

function renderForward(view) {
  state.pixels = fromBase64(view.pixels);
  state.maps = [decode(view.input), ...view.layers.map(decode)];
  state.maps.forEach((decoded, column) => paintColumn(column, decoded));
  renderPrediction(view);
  $("edits").hidden = view.edits === 0;
  $("edits").textContent = `${view.edits} kernel${view.edits === 1 ? "" : "s"} edited`;
  $("edits").title = "in this tab only: the run's files are unchanged (save a copy as a new run)";
  if (state.selection) requestArithmetic();
}

// Nothing is predicted without ink: a blank input's answer is only the biases talking.
function renderPrediction(view) {
  // edited kernels, or a timeline step's: the change is from the trained model's answer
  const blank = !state.pixels.some((v) => v > 0);
  const edited = !blank && (view.edits > 0 || (view.step ?? null) !== null);
  const list = $("probabilities"), classes = state.model.classes;
  list.dataset.state = blank ? "blank" : edited ? "edited" : "trained";
  list.dataset.prediction = blank ? "" : classes[view.prediction];
  Array.from(list.children).forEach((row, i) => {
    const [, bar, probability, logit, change] = row.children;
    const p = view.probabilities[i], before = view.baseline_probabilities[i];
    row.className = !blank && i === view.prediction ? "best" : "";
    bar.firstChild.style.width = blank ? "0" : `${100 * p}%`;
    bar.lastChild.hidden = !edited;
    bar.lastChild.style.left = `calc(${100 * before}% - 1px)`;
    probability.textContent = blank ? "" : percent(p);
    logit.textContent = blank ? "" : fmt(view.logits[i], 2);
    const dz = view.logits[i] - view.baseline_logits[i];
    const dp = Math.abs(p - before) < 5e-4 ? 0 : 100 * (p - before); // under 0.05 pp: ±0
    change.className = `change${edited && dz !== 0 ? (dz > 0 ? " up" : " down") : ""}`;
    change.replaceChildren(...(edited ? [signed(dz), el("small", {}, `${signed(dp, 1)} pp`)] : []));
    change.title = edited ? `the trained model: logit ${fmt(view.baseline_logits[i], 4)}, ` +
      `probability ${percent(before)}` : "";
  });
  $("prediction-note").textContent = blank
    ? "No ink yet, so no prediction: draw a digit, upload an image or load a test image."
    : edited ? `Change: from the trained model's answer for this input (it predicts ` +
      `${classes[view.baseline_prediction]}); the tick on each bar is its probability.` : "";
}

// ---- the network: one column per layer, one thumbnail per feature map

function thumbSize(h) {
  return h * Math.max(1, Math.round(48 / h));
}

export function buildNetwork() {
  const m = state.model;
  const columns = [{ name: "input", type: "input", shape: m.input_shape, params: 0,
    text: "the normalised pixels", kind: "input" }, ...m.layers];
  state.columns = columns.map((layer, column) => buildColumn(layer, column - 1));
  $("network").replaceChildren(...state.columns.map((c) => c.node));
}

function buildColumn(layer, index) {
  const [c, h, w] = asMaps(layer.shape);
  const title = index < 0 ? "input" : `${index} · ${layer.type}`;
  const meta = `${layer.shape.join("×")} · ${layer.params.toLocaleString()} params` +
    (layer.symmetry ? ` · symmetry ${layer.symmetry}` : "");
  const header = el("header", { title: layer.text }, el("div", { class: "title" }, title),
    el("div", { class: "meta" }, meta));
  const column = { kind: "maps", wrappers: [], canvases: [], rows: [], index };
  if (layer.shape.length === 1 && c <= 32) {
    column.kind = "values";
    const list = el("div", { class: "values" });
    for (let i = 0; i < c; i++) {
      const label = index === state.model.layers.length - 1 ? state.model.classes[i] : String(i);
      const row = el("div", { onclick: () => select(index, i, 0, 0) },
        el("span", {}, label), el("div", { class: "bar" }, el("div")), el("span"));
      column.rows.push(row);
      list.append(row);
    }
    column.node = el("div", { class: "column" }, header, list);
    return column;
  }
  let size = thumbSize(h), count = c, gridColumns = Math.min(4, Math.max(1, Math.ceil(c / 8)));
  if (layer.shape.length === 1) { // a long vector: one square strip, clickable per value
    column.kind = "strip";
    count = 1;
    gridColumns = 1;
    size = 96;
  }
  const grid = el("div", { class: "maps" });
  grid.style.gridTemplateColumns = `repeat(${gridColumns}, ${size}px)`;
  for (let k = 0; k < count; k++) {
    const canvas = el("canvas", { width: w, height: h });
    const wrapper = el("div", { class: "map" }, canvas);
    wrapper.style.width = wrapper.style.height = `${size}px`;
    attachMapEvents(wrapper, canvas, index, k, column);
    column.wrappers.push(wrapper);
    column.canvases.push(canvas);
    grid.append(wrapper);
  }
  column.node = el("div", { class: "column" }, header, grid);
  return column;
}

function paintColumn(columnIndex, decoded) {
  const column = state.columns[columnIndex];
  const kind = columnIndex === 0 ? "grey" : "signed";
  if (column.kind === "maps") {
    column.canvases.forEach((canvas, c) => paintMap(canvas, decoded, c, kind));
  } else if (column.kind === "values") {
    const [c] = asMaps(decoded.shape);
    const values = Array.from({ length: c }, (_, i) => valueAt(decoded, i, 0, 0));
    const m = Math.max(...values.map(Math.abs)) || 1;
    column.rows.forEach((row, i) => {
      const bar = row.children[1].firstChild;
      bar.style.width = `${(50 * Math.abs(values[i])) / m}%`;
      bar.style.marginLeft = values[i] < 0 ? `${50 - (50 * Math.abs(values[i])) / m}%` : "50%";
      bar.style.background = values[i] < 0 ? "var(--blue)" : "var(--accent)";
      row.children[2].textContent = fmt(values[i], 2);
    });
  } else { // strip: values laid out in a square, row by row
    const n = decoded.bytes.length, side = Math.ceil(Math.sqrt(n));
    const padded = new Uint8Array(side * side);
    padded.set(decoded.bytes);
    paint(column.canvases[0], padded, 0, side, side, palette(decoded.lo[0], decoded.hi[0], kind));
  }
  drawMarks();
}

// Where on a map the mouse is: (channel, y, x) of the value under it.
function mapPosition(event, canvas, column, k) {
  const r = canvas.getBoundingClientRect();
  const x = Math.min(canvas.width - 1, Math.floor(((event.clientX - r.left) / r.width) * canvas.width));
  const y = Math.min(canvas.height - 1, Math.floor(((event.clientY - r.top) / r.height) * canvas.height));
  if (column.kind === "strip") return { channel: y * canvas.width + x, y: 0, x: 0 };
  return { channel: k, y, x };
}

function attachMapEvents(wrapper, canvas, index, k, column) {
  wrapper.addEventListener("mousemove", (event) => showZoom(event, canvas, index, k, column));
  wrapper.addEventListener("mouseleave", () => { $("zoom").hidden = true; });
  wrapper.addEventListener("click", (event) => {
    if (index < 0) return; // the input has no arithmetic
    const p = mapPosition(event, canvas, column, k);
    const [count] = asMaps(state.model.layers[index].shape);
    if (p.channel < count) select(index, p.channel, p.y, p.x);
  });
}

function showZoom(event, canvas, index, k, column) {
  const zoom = $("zoom"), big = zoom.querySelector("canvas");
  big.width = canvas.width;
  big.height = canvas.height;
  big.getContext("2d").drawImage(canvas, 0, 0);
  const p = mapPosition(event, canvas, column, k);
  const decoded = state.maps[index + 1];
  const name = index < 0 ? "input" : `layer ${index} (${state.model.layers[index].type})`;
  const lines = [`${name} · map ${k}`];
  if (decoded && p.channel < asMaps(decoded.shape)[0]) {
    const where = column.kind === "strip" ? `value ${p.channel}` : `y ${p.y}, x ${p.x}`;
    lines.push(el("br"), `${where}: ≈ ${fmt(valueAt(decoded, p.channel, p.y, p.x), 3)}`);
  }
  zoom.lastChild.replaceChildren(...lines);
  zoom.hidden = false;
  const left = event.clientX + 18 + 210 > innerWidth ? event.clientX - 228 : event.clientX + 18;
  const top = Math.min(event.clientY + 12, innerHeight - 250);
  zoom.style.left = `${left}px`;
  zoom.style.top = `${top}px`;
}
