// The arithmetic of one value: the clicked pixel, the window of the input it came from,
// and every number the layer combined to compute it.
import { $, api, asMaps, css, el, fmt, signedRGB, state, toBase64 } from "./util.js";

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
export function drawMarks() {
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

export function select(layer, channel, y, x) {
  state.selection = { layer, channel, y, x };
  state.arithmetic = null;
  drawMarks();
  requestArithmetic();
}

let arithmeticBusy = false, arithmeticAgain = false;

export async function requestArithmetic() {
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

// Where input i of a dense layer came from, when a Flatten made it from feature maps.
function flattenedFrom(a, i) {
  const flatten = a.source >= 0 ? state.model.layers[a.source] : null;
  if (!flatten || flatten.kind !== "flatten" || flatten.input_shape.length !== 3) return "";
  const [, h, w] = flatten.input_shape;
  return `map ${Math.floor(i / (h * w))} (y ${Math.floor((i % (h * w)) / w)}, x ${i % w})`;
}

function linearView(box, a, from) {
  const table = el("table", { class: "terms" }, el("tr", {},
    ...["i", "from", "x_i", "w_i", "w_i · x_i"].map((h) => el("th", {}, h))));
  for (const t of a.top) {
    table.append(el("tr", {}, el("td", {}, String(t.index)), el("td", {}, flattenedFrom(a, t.index)),
      el("td", {}, fmt(t.x, 5)), el("td", {}, fmt(t.w, 5)), el("td", {}, fmt(t.product, 6))));
  }
  table.append(el("tr", {}, el("td", {}, "…"), el("td", { colSpan: 3 },
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
