// Kernels: every kernel of a layer with its spectrum, class and symmetry, and the editor.
import { requestUpdate } from "./network.js";
import { $, api, decode, el, fmt, paint, paintMap, palette, state } from "./util.js";

// ---- kernels

export function buildKernelLayerButtons() {
  const convs = state.model.layers.filter((l) => l.kind === "conv");
  $("kernel-layers").replaceChildren(...convs.map((l) => el("button", {
    type: "button", "data-layer": l.index, onclick: () => showKernelLayer(l.index),
  }, `layer ${l.index}: ${l.input_shape[0]}→${l.shape[0]}`)));
}

// keepEditor: the editor was just drawn from an edit's answer (with its "done" status),
// so only the cards are redrawn, the edited one marked
export async function showKernelLayer(layer, keepEditor = false) {
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
  const open = state.kernel;
  if (open && open.layer === layer && keepEditor) markSelected(open.channel);
  else if (open && open.layer === layer) showKernel(layer, open.channel, open.slice);
  else $("kernel-editor").replaceChildren();
}

function markSelected(channel) {
  for (const card of $("kernel-grid").children) {
    card.classList.toggle("selected", Number(card.dataset.channel) === channel);
  }
}

async function showKernel(layer, channel, slice) {
  markSelected(channel);
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
      depth > 1 ? el("label", {}, all, ` all ${depth} input channels`) : null,
      el("label", {}, scale, " scale to the trained kernel's norm")),
    el("div", { class: "row" },
      el("button", { type: "button", onclick: () => reset({ layer: d.layer, channel: d.channel }) }, "Reset this kernel"),
      el("button", { type: "button", onclick: () => reset({}) }, "Reset all kernels")),
    status);
}

function afterEdit(detail, slice) {
  renderEditor(detail, slice);
  showKernelLayer(detail.layer, true);
  requestUpdate(0);
}

async function reset(payload) {
  await api("/api/kernel/reset", { method: "POST", json: payload });
  const k = state.kernel;
  showKernelLayer(state.kernelLayer);
  if (k) showKernel(k.layer, k.channel, k.slice);
  requestUpdate(0);
}
