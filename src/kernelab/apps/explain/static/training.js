// Training: learning curves, the test set with the trained model's confusion matrix and
// mistakes, and test images as inputs.
import { loadPixels } from "./input.js";
import { $, api, chartFrame, el, fromBase64, paintPixels, state, svg } from "./util.js";

async function loadTestImage(index) {
  try {
    const t = await api(`/api/testset/${index}`);
    const classes = state.test.classes;
    $("test-label").textContent = `test image ${t.index}: label ${classes[t.label]}` +
      (t.predicted === null ? "" : `, the trained model says ${classes[t.predicted]}`);
    loadPixels(fromBase64(t.pixels));
  } catch (error) {
    $("test-label").textContent = error.message;
  }
}

// The test set: its images come at once, the trained model's verdicts when it has classified
// them all (the server does that once, in the background): ask again until they are there.
export async function loadTestSet() {
  if (!state.test) $("test-status").textContent = "loading the test set…";
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
  if (t.available && !t.ready) setTimeout(loadTestSet, 1500);
}

export function setupTestSet() {
  $("test-load").addEventListener("click", () => loadTestImage(Number($("test-index").value)));
  $("test-random").addEventListener("click", () => {
    const i = Math.floor(Math.random() * state.test.count);
    $("test-index").value = i;
    loadTestImage(i);
  });
}

// ---- training: learning curves, confusion matrix, misclassified images

let curvesLoaded = false;

export async function loadCurves() {
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

function chart(title, lines) {
  const size = { W: 320, H: 180, L: 40, R: 10, T: 20, B: 24 };
  const { W, L, R } = size;
  const values = lines.flatMap(([, v]) => v);
  const n = Math.max(...lines.map(([, v]) => v.length));
  let lo = Math.min(...values), hi = Math.max(...values);
  if (hi === lo) { hi += 0.5; lo -= 0.5; }
  const X = (i) => L + (n > 1 ? (i * (W - L - R)) / (n - 1) : (W - L - R) / 2);
  const { root, Y } = chartFrame(title, size, lo, hi, `epoch ${n}`);
  lines.forEach(([name, v, colour], k) => {
    if (!v.length) return;
    const points = v.map((value, i) => `${X(i)},${Y(value)}`).join(" ");
    root.append(svg("polyline", { points, fill: "none", stroke: colour, "stroke-width": 2 }));
    v.forEach((value, i) => root.append(svg("circle", { cx: X(i), cy: Y(value), r: 2.5, fill: colour })));
    const label = svg("text", { x: W - R - 90 + 45 * k, y: 13 }, name);
    label.style.fill = colour;
    root.append(label);
  });
  return root;
}

function renderTestSummary() {
  const t = state.test;
  if (!t.available || !t.ready) {
    $("test-summary").textContent = t.available
      ? `${t.source} · the trained model is classifying the ${t.count.toLocaleString()} ` +
        "test images…" : t.reason;
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
