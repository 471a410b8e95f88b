// kernelab explain: the page. Plain JavaScript, no libraries, no build step.
// Every number shown comes from the server (the engine); this file only draws.
"use strict";

const SESSION = newSessionId(); // one per tab: the server keeps this tab's kernel edits apart
const $ = (id) => document.getElementById(id);
const state = {
  model: null, // GET /api/model
  ink: null, // Float32Array H·W in 0..1: the drawing
  pixels: null, // Uint8Array C·H·W: what the model saw last
  centre: true, // centre the next input like MNIST (drawings only)
  maps: [], // per column (0 = input): decoded feature maps {shape, lo, hi, bytes}
  columns: [], // per column: {kind, wrappers, canvases, rows}
  selection: null, // {layer, channel, y, x}
  arithmetic: null, // the last arithmetic answer
  kernelLayer: null,
  kernel: null, // the kernel open in the editor: {layer, channel, slice, detail}
  presets: [],
  test: null, // GET /api/testset
  galleryFilter: null,
};

function newSessionId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// ---- small helpers

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

async function api(path, { method = "GET", json, body, type } = {}) {
  const headers = { "X-Kernelab-Session": SESSION };
  if (json !== undefined) {
    body = JSON.stringify(json);
    headers["Content-Type"] = "application/json";
  } else if (type) headers["Content-Type"] = type;
  const response = await fetch(path, { method, headers, body });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

function fromBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function toBase64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function decode(encoded) {
  return { shape: encoded.shape, lo: encoded.lo, hi: encoded.hi, bytes: fromBase64(encoded.data) };
}

// (C, H, W) of any output shape, as the server sees it: (F,) is F maps of 1x1.
function asMaps(shape) {
  if (shape.length === 3) return shape;
  if (shape.length === 2) return [shape[0], 1, shape[1]];
  return [shape.reduce((a, b) => a * b, 1), 1, 1];
}

function fmt(v, digits = 4) {
  if (v === null || v === undefined) return "−∞";
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(2);
  return v.toFixed(digits);
}

// ---- colours: blue for negative, black for 0, orange to yellow for positive

function signedRGB(t) {
  const a = Math.min(1, Math.abs(t));
  if (t >= 0) return [255 * Math.min(1, a * 1.6), 170 * a + 60 * a * a, 40 * a * a];
  return [60 * a, 120 * a, 255 * Math.min(1, a * 1.4)];
}

function css(rgb) {
  return `rgb(${rgb.map(Math.round).join(",")})`;
}

// A 256-entry colour table for bytes q that stand for lo + q·(hi − lo)/255 (a magnitude,
// never negative, comes out black to yellow).
function palette(lo, hi, kind) {
  const table = new Uint8ClampedArray(256 * 3);
  const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
  for (let q = 0; q < 256; q++) {
    table.set(kind === "grey" ? [q, q, q] : signedRGB((lo + (q * (hi - lo)) / 255) / m), q * 3);
  }
  return table;
}

function paint(canvas, bytes, offset, width, height, table) {
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== height) canvas.height = height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    const q = bytes[offset + i] * 3;
    image.data[4 * i] = table[q];
    image.data[4 * i + 1] = table[q + 1];
    image.data[4 * i + 2] = table[q + 2];
    image.data[4 * i + 3] = 255;
  }
  context.putImageData(image, 0, 0);
}

// Paint map c of a decoded array; grey for the input, signed colours for feature maps.
function paintMap(canvas, decoded, c, kind = "signed") {
  const [, h, w] = asMaps(decoded.shape);
  const perMap = decoded.lo.length > 1 || decoded.shape.length !== 1;
  const lo = perMap ? decoded.lo[c] : decoded.lo[0];
  const hi = perMap ? decoded.hi[c] : decoded.hi[0];
  paint(canvas, decoded.bytes, c * h * w, w, h, palette(lo, hi, kind));
}

function valueAt(decoded, c, y, x) {
  const [, h, w] = asMaps(decoded.shape);
  const index = decoded.shape.length === 1 ? 0 : c;
  const q = decoded.bytes[c * h * w + y * w + x];
  return decoded.lo[index] + (q * (decoded.hi[index] - decoded.lo[index])) / 255;
}

// Pixels (C, H, W) as a grey (or RGB) picture.
function paintPixels(canvas, pixels, shape, offset = 0) {
  const [c, h, w] = shape;
  canvas.width = w;
  canvas.height = h;
  const context = canvas.getContext("2d");
  const image = context.createImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    for (let k = 0; k < 3; k++) image.data[4 * i + k] = pixels[offset + (c === 3 ? k * h * w : 0) + i];
    image.data[4 * i + 3] = 255;
  }
  context.putImageData(image, 0, 0);
}

// ---- start

async function start() {
  try {
    state.model = await api("/api/model");
  } catch (error) {
    $("model-info").textContent = `cannot load the model: ${error.message}`;
    return;
  }
  const m = state.model;
  const [, h, w] = m.input_shape;
  $("model-info").textContent =
    `${m.name} · ${m.layers.length} layers · ${m.params.toLocaleString()} parameters · ` +
    `input ${m.input_shape.join("×")}` + (m.notes.length ? ` · ${m.notes.join("; ")}` : "");
  $("model-info").title = m.path;
  $("save-form").hidden = !m.can_save;
  $("draw").width = w;
  $("draw").height = h;
  state.ink = new Float32Array(h * w);
  buildProbabilities();
  buildNetwork();
  setupDrawing();
  setupInputs();
  setupTabs();
  paintDrawing();
  requestUpdate();
  loadTestSet();
}

// ---- the drawing: a soft round brush on the model's own pixel grid

function setupDrawing() {
  const canvas = $("draw");
  let last = null;
  const point = (event) => {
    const r = canvas.getBoundingClientRect();
    return [((event.clientX - r.left) / r.width) * canvas.width,
      ((event.clientY - r.top) / r.height) * canvas.height];
  };
  canvas.addEventListener("pointerdown", (event) => {
    canvas.setPointerCapture(event.pointerId);
    state.centre = $("centre").checked;
    last = point(event);
    stroke(last, last);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (last === null) return;
    const next = point(event);
    stroke(last, next);
    last = next;
  });
  const stop = () => { last = null; };
  canvas.addEventListener("pointerup", stop);
  canvas.addEventListener("pointercancel", stop);
  $("clear").addEventListener("click", () => {
    state.ink.fill(0);
    state.centre = $("centre").checked;
    paintDrawing();
    requestUpdate();
  });
  $("centre").addEventListener("change", () => {
    state.centre = $("centre").checked;
    requestUpdate();
  });
}

function stroke([x0, y0], [x1, y1]) {
  const canvas = $("draw");
  const w = canvas.width, h = canvas.height;
  const radius = (1.15 * Math.min(w, h)) / 28; // MNIST strokes are 2 to 3 pixels wide
  const steps = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0) * 4));
  for (let s = 0; s <= steps; s++) {
    const cx = x0 + ((x1 - x0) * s) / steps, cy = y0 + ((y1 - y0) * s) / steps;
    for (let y = Math.floor(cy - radius - 1); y <= cy + radius + 1; y++) {
      for (let x = Math.floor(cx - radius - 1); x <= cx + radius + 1; x++) {
        if (x < 0 || y < 0 || x >= w || y >= h) continue;
        const d = Math.hypot(x + 0.5 - cx, y + 0.5 - cy);
        const v = Math.min(1, Math.max(0, radius + 0.5 - d));
        if (v > state.ink[y * w + x]) state.ink[y * w + x] = v;
      }
    }
  }
  paintDrawing();
  requestUpdate();
}

function paintDrawing() {
  const canvas = $("draw");
  const grey = Uint8Array.from(state.ink, (v) => Math.round(255 * v));
  paintPixels(canvas, grey, [1, canvas.height, canvas.width]);
}

function drawingPixels() {
  const [c] = state.model.input_shape;
  const grey = Uint8Array.from(state.ink, (v) => Math.round(255 * v));
  const pixels = new Uint8Array(c * grey.length);
  for (let k = 0; k < c; k++) pixels.set(grey, k * grey.length);
  return pixels;
}

// Show pixels (C, H, W) from an upload or the test set as the new input (not centred again).
function loadPixels(pixels) {
  const [c, h, w] = state.model.input_shape;
  for (let i = 0; i < h * w; i++) {
    let v = 0;
    for (let k = 0; k < c; k++) v += pixels[k * h * w + i];
    state.ink[i] = v / c / 255;
  }
  state.centre = false;
  paintDrawing();
  requestUpdate();
}

// ---- forward passes: debounced, one request in flight, stale answers dropped

let updateTimer = null, inFlight = false, again = false, latest = 0;

function requestUpdate(delay = 25) {
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
    $("forward-error").textContent = "";
  } catch (error) {
    $("forward-error").textContent = error.message;
  } finally {
    inFlight = false;
    if (again) { again = false; runUpdate(); }
  }
}

function buildProbabilities() {
  const list = $("probabilities");
  list.replaceChildren(...state.model.classes.map((name) =>
    el("li", {}, el("span", {}, name), el("div", { class: "bar" }, el("div")), el("span"))));
}

function renderForward(view) {
  state.pixels = fromBase64(view.pixels);
  state.maps = [decode(view.input), ...view.layers.map(decode)];
  state.maps.forEach((decoded, column) => paintColumn(column, decoded));
  const rows = $("probabilities").children;
  view.probabilities.forEach((p, i) => {
    rows[i].className = i === view.prediction ? "best" : "";
    rows[i].children[1].firstChild.style.width = `${(100 * p).toFixed(1)}%`;
    rows[i].children[2].textContent = `${(100 * p).toFixed(1)}%`;
  });
  $("probabilities").dataset.prediction = state.model.classes[view.prediction];
  $("edits").hidden = view.edits === 0;
  $("edits").textContent = `${view.edits} kernel${view.edits === 1 ? "" : "s"} edited in this tab ` +
    "(the run's files are unchanged)";
  if (state.selection) requestArithmetic();
}

// ---- the network: one column per layer, one thumbnail per feature map

function thumbSize(h) {
  return h * Math.max(1, Math.round(48 / h));
}

function buildNetwork() {
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

function addMark(wrapper, shape, rows, cols, className) {
  const [, h, w] = shape;
  const mark = el("div", { class: className });
  mark.style.left = `${(100 * cols[0]) / w}%`;
  mark.style.top = `${(100 * rows[0]) / h}%`;
  mark.style.width = `${(100 * (cols[1] - cols[0] + 1)) / w}%`;
  mark.style.height = `${(100 * (rows[1] - rows[0] + 1)) / h}%`;
  wrapper.append(mark);
}

// The clicked pixel, and the window of the input it was computed from.
function drawMarks() {
  document.querySelectorAll("#network .mark, #network .selected")
    .forEach((n) => (n.classList.contains("mark") ? n.remove() : n.classList.remove("selected")));
  const s = state.selection;
  if (!s) return;
  const column = state.columns[s.layer + 1];
  const shape = asMaps(state.model.layers[s.layer].shape);
  if (column.kind === "maps") {
    column.wrappers[s.channel].classList.add("selected");
    addMark(column.wrappers[s.channel], shape, [s.y, s.y], [s.x, s.x], "mark");
  } else if (column.kind === "values") column.rows[s.channel].classList.add("selected");
  const a = state.arithmetic;
  if (!a || a.layer !== s.layer || !a.rows || a.source === null) return;
  const source = state.columns[a.source + 1];
  if (source.kind !== "maps") return;
  const inShape = asMaps(a.source < 0 ? state.model.input_shape : state.model.layers[a.source].shape);
  const clip = (v, n) => Math.max(0, Math.min(n - 1, v));
  const rows = [clip(Math.min(...a.rows), inShape[1]), clip(Math.max(...a.rows), inShape[1])];
  const cols = [clip(Math.min(...a.cols), inShape[2]), clip(Math.max(...a.cols), inShape[2])];
  const channels = a.terms ? a.terms.map((t) => t.in_channel) : [a.channel];
  for (const c of channels) addMark(source.wrappers[c], inShape, rows, cols, "mark window");
}

// ---- the arithmetic of one value

function select(layer, channel, y, x) {
  state.selection = { layer, channel, y, x };
  state.arithmetic = null;
  drawMarks();
  requestArithmetic();
}

let arithmeticBusy = false, arithmeticAgain = false;

async function requestArithmetic() {
  if (arithmeticBusy) { arithmeticAgain = true; return; }
  arithmeticBusy = true;
  const s = state.selection;
  try {
    const a = await api("/api/arithmetic", {
      method: "POST",
      json: { pixels: toBase64(state.pixels), layer: s.layer, channel: s.channel, y: s.y, x: s.x },
    });
    if (state.selection === s) {
      state.arithmetic = a;
      renderArithmetic(a);
      drawMarks();
    }
  } catch (error) {
    $("arithmetic").replaceChildren(el("div", { class: "error" }, error.message));
  } finally {
    arithmeticBusy = false;
    if (arithmeticAgain) { arithmeticAgain = false; requestArithmetic(); }
  }
}

function valueGrid(values, { inside = null, winner = null, digits = 3 } = {}) {
  const finite = values.flat().filter((v) => v !== null && Number.isFinite(v));
  const m = Math.max(...finite.map(Math.abs)) || 1;
  const table = el("table", { class: "grid" });
  values.forEach((row, p) => {
    const tr = el("tr");
    row.forEach((v, q) => {
      const td = el("td", { title: String(v) });
      if (inside && !inside[p][q]) {
        td.className = "pad";
        td.textContent = "pad";
      } else {
        const rgb = signedRGB(v / m);
        td.textContent = fmt(v, digits);
        td.style.background = css(rgb);
        if (0.3 * rgb[0] + 0.55 * rgb[1] + 0.15 * rgb[2] > 140) td.classList.add("light");
      }
      if (winner && winner[0] === p && winner[1] === q) td.classList.add("win");
      tr.append(td);
    });
    table.append(tr);
  });
  return table;
}

function span(coords) {
  return `${coords[0]}–${coords[coords.length - 1]}`;
}

function labelled(label, node) {
  return el("div", {}, node, el("div", { class: "grid-label" }, label));
}

function renderArithmetic(a) {
  const layer = state.model.layers[a.layer];
  const isMap = layer.shape.length === 3;
  const where = isMap ? ` · pixel (y ${a.y}, x ${a.x})` : "";
  const box = $("arithmetic");
  box.replaceChildren(el("h3", {}, `Layer ${a.layer} · ${layer.type} · ` +
    `${isMap ? "feature map" : "output"} ${a.channel}${where}`));
  const from = a.source === -1 ? "the input" : a.source === null ? "its input" : `layer ${a.source}`;
  const explain = { conv: convView, maxpool: maxPoolView, avgpool: avgPoolView,
    adaptivepool: avgPoolView, linear: linearView }[a.kind] || elementView;
  explain(box, a, from);
  const same = Math.abs(a.value - a.engine) <= 1e-5 * Math.max(1, Math.abs(a.engine));
  box.append(el("div", { class: "equation" },
    "the engine's output at this position: ", el("b", {}, String(a.engine)),
    el("span", { class: same ? "ok" : "error" }, same ? "  ✓ the same" : "  ✗ differs")));
  if (a.activation) {
    box.append(el("div", { class: "equation" },
      `then ${a.activation.type} (layer ${a.activation.layer}): `,
      el("b", {}, fmt(a.activation.value, 6))));
  }
}

function convView(box, a, from) {
  const terms = [...a.terms].sort((p, q) => Math.abs(q.sum) - Math.abs(p.sum));
  box.append(el("div", { class: "equation" },
    `Σ over ${a.terms.length} input channel${a.terms.length > 1 ? "s" : ""} of ${from} ` +
    `(window ⊙ kernel) = ${fmt(a.sum, 6)};  + bias ${fmt(a.bias, 6)} = `, el("b", {}, fmt(a.value, 6))));
  if (a.terms.length > 1) {
    box.append(el("div", { class: "hint" },
      "Input channels by the size of their contribution; open one to see its numbers."));
  }
  terms.forEach((t, i) => {
    const details = el("details", {}, el("summary", {},
      `input channel ${t.in_channel}: Σ window ⊙ kernel = ${fmt(t.sum, 6)}`));
    const fill = () => {
      if (details.childElementCount > 1) return;
      details.append(el("div", { class: "grids" },
        labelled(`window of ${from}: rows ${span(a.rows)}, columns ${span(a.cols)}`,
          valueGrid(t.window, { inside: a.inside })),
        el("span", {}, "⊙"), labelled("kernel slice", valueGrid(t.kernel)),
        el("span", {}, "="), labelled("products", valueGrid(t.products, { inside: a.inside })),
        el("span", {}, `Σ = ${fmt(t.sum, 6)}`)));
    };
    details.addEventListener("toggle", fill);
    if (i < 2) { details.open = true; fill(); }
    box.append(details);
  });
}

function maxPoolView(box, a, from) {
  const win = a.window[a.winner[0]][a.winner[1]];
  box.append(el("div", { class: "equation" },
    `max over the window of ${from} (channel ${a.channel}) = `, el("b", {}, fmt(win, 6)),
    ` — the winner is row ${a.rows[a.winner[0]]}, column ${a.cols[a.winner[1]]}`),
  el("div", { class: "grids" }, valueGrid(a.window, { inside: a.inside, winner: a.winner })));
}

function avgPoolView(box, a, from) {
  box.append(el("div", { class: "equation" },
    `mean of the window of ${from} (channel ${a.channel}): ${fmt(a.sum, 6)} / ${a.divisor} = `,
    el("b", {}, fmt(a.value, 6))),
  el("div", { class: "grids" }, valueGrid(a.window, { inside: a.inside })));
}

function linearView(box, a, from) {
  const table = el("table", { class: "terms" }, el("tr", {},
    ...["i", "x_i", "w_i", "w_i · x_i"].map((h) => el("th", {}, h))));
  for (const t of a.top) {
    table.append(el("tr", {}, el("td", {}, String(t.index)), el("td", {}, fmt(t.x, 5)),
      el("td", {}, fmt(t.w, 5)), el("td", {}, fmt(t.product, 6))));
  }
  table.append(el("tr", {}, el("td", {}, "…"), el("td", { colSpan: 2 },
    `the other ${a.count - a.top.length} terms`), el("td", {}, fmt(a.rest, 6))));
  const name = state.model.layers[a.layer].shape[0] === state.model.classes.length &&
    a.layer === state.model.layers.length - 1 ? ` (class ${state.model.classes[a.channel]})` : "";
  box.append(el("div", { class: "equation" },
    `output ${a.channel}${name} = Σ over ${a.count} inputs from ${from} of w_i · x_i ` +
    `= ${fmt(a.sum, 6)};  + bias ${fmt(a.bias, 6)} = `, el("b", {}, fmt(a.value, 6))),
  el("div", { class: "hint" }, `The ${a.top.length} largest terms (by size); positive terms add ` +
    `${fmt(a.positive, 4)}, negative ones ${fmt(a.negative, 4)}.`), table);
}

function elementView(box, a, from) {
  const source = a.from ? ` (value ${a.from.join(", ")} of ${from})` : ` from ${from}`;
  box.append(el("div", { class: "equation" },
    `x = ${fmt(a.input, 6)}${source};  ${a.formula || "x"} = `, el("b", {}, fmt(a.value, 6))));
}

// ---- uploads and the test set

function setupInputs() {
  $("upload").addEventListener("change", async () => {
    const file = $("upload").files[0];
    if (!file) return;
    $("upload-error").textContent = "";
    try {
      const answer = await api("/api/image", { method: "POST", body: file,
        type: file.type || "application/octet-stream" });
      const pixels = fromBase64(answer.pixels);
      $("upload-original").src = URL.createObjectURL(file);
      paintPixels($("upload-converted"), pixels, answer.shape);
      $("upload-preview").hidden = false;
      loadPixels(pixels);
    } catch (error) {
      $("upload-error").textContent = error.message;
      $("upload-preview").hidden = true;
    } finally {
      $("upload").value = "";
    }
  });
  $("test-load").addEventListener("click", () => loadTestImage(Number($("test-index").value)));
  $("test-random").addEventListener("click", () => {
    const i = Math.floor(Math.random() * state.test.count);
    $("test-index").value = i;
    loadTestImage(i);
  });
  $("save-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const answer = await api("/api/save", { method: "POST", json: { name: $("save-name").value } });
      $("save-status").textContent = `saved: ${answer.path}`;
      $("save-status").className = "ok";
    } catch (error) {
      $("save-status").textContent = error.message;
      $("save-status").className = "error";
    }
  });
}

async function loadTestImage(index) {
  try {
    const t = await api(`/api/testset/${index}`);
    const classes = state.test.classes;
    $("test-label").textContent = `test image ${t.index}: label ${classes[t.label]}, ` +
      `the trained model says ${classes[t.predicted]}`;
    loadPixels(fromBase64(t.pixels));
  } catch (error) {
    $("test-label").textContent = error.message;
  }
}

async function loadTestSet() {
  $("test-status").textContent = "loading the test set…";
  try {
    state.test = await api("/api/testset");
  } catch (error) {
    state.test = { available: false, reason: error.message };
  }
  const t = state.test;
  $("test-status").textContent = t.available ? "" : t.reason;
  $("test-picker").hidden = !t.available;
  if (t.available) $("test-index").max = t.count - 1;
  renderTestSummary();
}

// ---- tabs

function setupTabs() {
  for (const button of document.querySelectorAll("#tabs button")) {
    button.addEventListener("click", () => showTab(button.dataset.tab));
  }
}

function showTab(name) {
  for (const button of document.querySelectorAll("#tabs button")) {
    button.classList.toggle("active", button.dataset.tab === name);
  }
  for (const tab of document.querySelectorAll(".tab")) tab.hidden = tab.id !== `tab-${name}`;
  if (name === "kernels" && state.kernelLayer === null) {
    const first = state.model.layers.find((l) => l.kind === "conv");
    buildKernelLayerButtons();
    if (first) showKernelLayer(first.index);
    else $("kernel-summary").textContent = "This model has no convolution layers.";
  }
  if (name === "training") loadCurves();
}

// ---- kernels

function buildKernelLayerButtons() {
  const convs = state.model.layers.filter((l) => l.kind === "conv");
  $("kernel-layers").replaceChildren(...convs.map((l) => el("button", {
    type: "button", "data-layer": l.index, onclick: () => showKernelLayer(l.index),
  }, `layer ${l.index}: ${l.input_shape[0]}→${l.shape[0]}`)));
}

async function showKernelLayer(layer) {
  state.kernelLayer = layer;
  for (const b of $("kernel-layers").children) b.classList.toggle("active", Number(b.dataset.layer) === layer);
  let k;
  try {
    k = await api(`/api/kernels?layer=${layer}`);
  } catch (error) {
    $("kernel-summary").textContent = error.message;
    return;
  }
  state.presets = k.presets;
  const [count, depth, kh, kw] = k.shape;
  const tally = k.classes.map((c) => `${k.kernels.filter((x) => x.class === c).length} ${c}`);
  $("kernel-summary").textContent = `${count} kernels of ${depth}×${kh}×${kw}` +
    (k.symmetry ? `, constrained to symmetry “${k.symmetry}”` : "") + ` · ${tally.join(", ")}. ` +
    "Each card: the kernel averaged over its depth, and its frequency response (DC in the " +
    "centre). Click one to see and edit it.";
  const means = decode(k.means), spectra = decode(k.spectra);
  $("kernel-grid").replaceChildren(...k.kernels.map((info, o) => {
    const mean = el("canvas", { title: "kernel averaged over its depth" });
    const spectrum = el("canvas", { title: "frequency response |H|, DC at the centre" });
    paintMap(mean, means, o);
    paintMap(spectrum, spectra, o, "magnitude");
    const card = el("div", {
      class: `kernel${info.edited ? " edited" : ""}`, "data-channel": o,
      onclick: () => showKernel(layer, o, 0),
    }, el("div", {}, `#${o}${info.edited ? " (edited)" : ""}`), mean, spectrum,
    el("div", {}, el("span", { class: `tag ${info.class}` }, info.class)),
    el("div", {}, el("span", { class: "tag" }, info.symmetry.length ? `symmetry ${info.symmetry.join(", ")}` : "no symmetry")));
    return card;
  }));
  if (state.kernel && state.kernel.layer === layer) showKernel(layer, state.kernel.channel, state.kernel.slice);
  else $("kernel-editor").replaceChildren();
}

async function showKernel(layer, channel, slice) {
  for (const card of $("kernel-grid").children) {
    card.classList.toggle("selected", Number(card.dataset.channel) === channel);
  }
  try {
    const detail = await api(`/api/kernel?layer=${layer}&channel=${channel}`);
    renderEditor(detail, slice);
  } catch (error) {
    $("kernel-editor").replaceChildren(el("div", { class: "error" }, error.message));
  }
}

function symmetryText(s) {
  if (s.exact.length) return `symmetric: ${s.exact.join(", ")}`;
  return `no exact symmetry (closest: ${s.closest}, residual ${s.residual[s.closest].toFixed(2)})`;
}

function kernelCanvas(values) {
  const h = values.length, w = values[0].length;
  const flat = values.flat();
  const m = Math.max(...flat.map(Math.abs)) || 1;
  const bytes = Uint8Array.from(flat, (v) => Math.round(((v / m) + 1) * 127.5));
  const canvas = el("canvas");
  paint(canvas, bytes, 0, w, h, palette(-m, m, "signed"));
  return canvas;
}

function renderEditor(d, slice) {
  slice = Math.min(slice, d.values.length - 1);
  state.kernel = { layer: d.layer, channel: d.channel, slice, detail: d };
  const depth = d.values.length, kh = d.values[0].length, kw = d.values[0][0].length;
  const status = el("div", { class: "hint", role: "status" }, d.done ? `done: ${d.done}` : "");
  const figures = [el("figure", { title: "averaged over the depth" }, kernelCanvas(d.mean),
    el("figcaption", {}, "mean"))];
  d.values.forEach((v, c) => figures.push(el("figure", {
    class: c === slice ? "selected" : "", title: `${d.slices[c].class}`,
    onclick: () => renderEditor(d, c),
  }, kernelCanvas(v), el("figcaption", {}, `ch ${c}`))));
  const cells = el("div", { class: "cells" });
  cells.style.gridTemplateColumns = `repeat(${kw}, auto)`;
  const inputs = [];
  d.values[slice].forEach((row, p) => row.forEach((v, q) => {
    const input = el("input", { type: "number", step: "any", value: String(v),
      title: `trained: ${d.trained[slice][p][q]}`, "aria-label": `kernel value ${p},${q}` });
    inputs.push(input);
    cells.append(input);
  }));
  const spectra = decode(d.slice_spectra);
  const spectrum = el("canvas");
  paintMap(spectrum, spectra, slice, "magnitude");
  const preset = el("select", { "aria-label": "hand-designed kernel" },
    ...state.presets.map((p) => el("option", { value: p }, p)));
  const all = el("input", { type: "checkbox", checked: depth === 1 });
  const scale = el("input", { type: "checkbox" });
  const send = async (payload) => {
    try {
      const answer = await api("/api/kernel", { method: "POST", json: {
        layer: d.layer, channel: d.channel, match_scale: scale.checked,
        in_channel: all.checked ? null : slice, ...payload } });
      afterEdit(answer, slice);
    } catch (error) {
      status.textContent = error.message;
      status.className = "error";
    }
  };
  const typed = () => {
    const values = [];
    for (let p = 0; p < kh; p++) values.push(inputs.slice(p * kw, (p + 1) * kw).map((i) => Number(i.value)));
    return values;
  };
  $("kernel-editor").replaceChildren(
    el("h3", {}, `Layer ${d.layer} · kernel ${d.channel} · ${depth}×${kh}×${kw}` +
      (d.bias === null ? "" : ` · bias ${fmt(d.bias, 5)}`) + (d.edited ? ` · edited: ${d.edited}` : "")),
    el("div", {}, el("span", { class: `tag ${d.class}` }, d.class),
      ` DC gain ${d.dc_gain.toFixed(2)}, spectral centroid ${d.centroid.toFixed(2)} · ` +
      symmetryText(d.symmetry) + (d.layer_symmetry ? ` · the layer keeps symmetry “${d.layer_symmetry}”` : "")),
    el("div", { class: "slices" }, ...figures),
    el("div", { class: "row top" },
      el("div", {}, el("div", { class: "hint" }, `input channel ${slice}: values (hover for the trained ones)`), cells,
        el("div", { class: "row" }, el("button", { type: "button", onclick: () => send({ values: typed() }) }, "Apply values"))),
      el("div", { class: "spectrum" }, el("div", { class: "hint" }, `frequency response of channel ${slice}`),
        spectrum, el("div", {}, el("span", { class: `tag ${d.slices[slice].class}` }, d.slices[slice].class),
          ` ${d.slices[slice].symmetry.length ? d.slices[slice].symmetry.join(", ") : "no symmetry"}`))),
    el("div", { class: "row" }, "Replace by", preset,
      el("button", { type: "button", id: "apply-preset", onclick: () => send({ spec: preset.value }) }, "Apply"),
      el("label", {}, all, ` all ${depth} input channel${depth > 1 ? "s" : ""}`),
      el("label", {}, scale, " scale to the trained kernel's norm")),
    el("div", { class: "row" },
      el("button", { type: "button", onclick: () => reset({ layer: d.layer, channel: d.channel }) }, "Reset this kernel"),
      el("button", { type: "button", onclick: () => reset({}) }, "Reset all kernels")),
    status);
}

function afterEdit(detail, slice) {
  renderEditor(detail, slice);
  showKernelLayer(detail.layer);
  requestUpdate(0);
}

async function reset(payload) {
  await api("/api/kernel/reset", { method: "POST", json: payload });
  const k = state.kernel;
  showKernelLayer(state.kernelLayer);
  if (k) showKernel(k.layer, k.channel, k.slice);
  requestUpdate(0);
}

// ---- training: learning curves, confusion matrix, misclassified images

let curvesLoaded = false;

async function loadCurves() {
  if (curvesLoaded) return;
  curvesLoaded = true;
  const { curves } = await api("/api/training");
  if (!curves || !curves.length) {
    $("curves").textContent = "No metrics.json in this run.";
    return;
  }
  const series = (key) => curves.map((row) => row[key]).filter((v) => v !== undefined);
  $("curves").replaceChildren(
    chart("loss", [["train", series("train_loss"), "#5ea2ff"], ["test", series("val_loss"), "#ffb454"]]),
    chart("accuracy", [["train", series("train_acc"), "#5ea2ff"], ["test", series("val_acc"), "#ffb454"]]));
}

function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== null) node.textContent = text;
  return node;
}

function chart(title, lines) {
  const W = 320, H = 180, L = 40, R = 10, T = 20, B = 24;
  const values = lines.flatMap(([, v]) => v);
  const n = Math.max(...lines.map(([, v]) => v.length));
  let lo = Math.min(...values), hi = Math.max(...values);
  if (hi === lo) { hi += 0.5; lo -= 0.5; }
  const X = (i) => L + (n > 1 ? (i * (W - L - R)) / (n - 1) : (W - L - R) / 2);
  const Y = (v) => T + ((hi - v) * (H - T - B)) / (hi - lo);
  const root = svg("svg", { class: "chart", width: W, height: H, viewBox: `0 0 ${W} ${H}` });
  root.append(svg("text", { x: L, y: 13 }, title),
    svg("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }),
    svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }),
    svg("text", { x: 2, y: Y(hi) + 4 }, hi.toPrecision(3)),
    svg("text", { x: 2, y: Y(lo) + 4 }, lo.toPrecision(3)),
    svg("text", { x: W - R - 40, y: H - 6 }, `epoch ${n}`));
  lines.forEach(([name, v, colour], k) => {
    if (!v.length) return;
    const points = v.map((value, i) => `${X(i)},${Y(value)}`).join(" ");
    root.append(svg("polyline", { points, fill: "none", stroke: colour, "stroke-width": 2 }));
    v.forEach((value, i) => root.append(svg("circle", { cx: X(i), cy: Y(value), r: 2.5, fill: colour })));
    root.append(svg("text", { x: W - R - 90 + 45 * k, y: 13, fill: colour }, name));
  });
  return root;
}

function renderTestSummary() {
  const t = state.test;
  if (!t.available) {
    $("test-summary").textContent = t.reason;
    return;
  }
  $("test-summary").textContent = `${t.source} · the trained model gets ` +
    `${(100 * t.accuracy).toFixed(2)}% of ${t.count.toLocaleString()} test images right. ` +
    "Rows: true class, columns: predicted. Click a cell to see those mistakes.";
  const max = Math.max(...t.confusion.flat());
  const table = el("table", { class: "confusion" },
    el("tr", {}, el("th"), ...t.classes.map((c) => el("th", {}, c))));
  t.confusion.forEach((row, i) => {
    table.append(el("tr", {}, el("th", {}, t.classes[i]), ...row.map((count, j) => {
      const td = el("td", { title: `true ${t.classes[i]}, predicted ${t.classes[j]}: ${count}`,
        onclick: () => {
          state.galleryFilter = state.galleryFilter && state.galleryFilter[0] === i &&
            state.galleryFilter[1] === j ? null : [i, j];
          renderTestSummary();
        } }, String(count));
      const a = count ? 0.15 + 0.85 * Math.log1p(count) / Math.log1p(max) : 0;
      td.style.background = i === j ? `rgba(94,162,255,${a})` : `rgba(255,154,31,${a})`;
      if (state.galleryFilter && state.galleryFilter[0] === i && state.galleryFilter[1] === j) td.classList.add("selected");
      return td;
    })));
  });
  $("confusion").replaceChildren(table);
  renderGallery();
}

function renderGallery() {
  const t = state.test, f = state.galleryFilter;
  const pixels = fromBase64(t.pixels);
  const shape = state.model.input_shape, size = shape[0] * shape[1] * shape[2];
  const shown = t.misclassified.map((m, k) => [m, k])
    .filter(([m]) => !f || (m.label === f[0] && m.predicted === f[1]));
  $("gallery-title").textContent = `${shown.length} misclassified test images` +
    (f ? ` (true ${t.classes[f[0]]}, predicted ${t.classes[f[1]]}, among the most confident mistakes)`
      : ", most confident mistakes first") + ". Click one to load it as the input.";
  $("gallery").replaceChildren(...shown.map(([m, k]) => {
    const canvas = el("canvas");
    paintPixels(canvas, pixels, shape, k * size);
    return el("figure", {
      title: `test image ${m.index}`,
      onclick: () => {
        $("test-index").value = m.index;
        loadPixels(pixels.slice(k * size, (k + 1) * size));
        $("test-label").textContent = `test image ${m.index}: label ${t.classes[m.label]}, ` +
          `the trained model says ${t.classes[m.predicted]}`;
      },
    }, canvas, el("figcaption", {}, `${t.classes[m.label]}→${t.classes[m.predicted]} ` +
      `${Math.round(100 * m.confidence)}%`));
  }));
}

start();
