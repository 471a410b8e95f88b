// kernelab explain: the page. Plain JavaScript modules, no libraries, no build step.
// Every number shown comes from the server (the engine); these files only draw.
//   util.js: state, requests, colours · input.js: drawing and uploads
//   network.js: forward passes and feature maps · arithmetic.js: one value's arithmetic
//   kernels.js: kernels and their editor · training.js: curves, test set, mistakes
//   live.js: the Train view (kernelab explain --train)
import { paintDrawing, setupDrawing, setupInputs } from "./input.js";
import { buildKernelLayerButtons, showKernelLayer } from "./kernels.js";
import { setupLive } from "./live.js";
import { buildNetwork, buildProbabilities, requestUpdate } from "./network.js";
import { loadCurves, loadTestSet, setupTestSet } from "./training.js";
import { $, api, onSessionExpired, state } from "./util.js";

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
  setupTestSet();
  setupSave();
  setupTabs();
  setupExpiry();
  paintDrawing();
  requestUpdate();
  loadTestSet();
  if (m.train) setupLive().then(() => showTab("train")); // kernelab explain --train
}

// ---- a fresh session after the server dropped this tab's: show the trained model again

function setupExpiry() {
  $("notice-close").addEventListener("click", () => { $("notice").hidden = true; });
  onSessionExpired(() => {
    requestUpdate(0);
    if (state.kernelLayer !== null) showKernelLayer(state.kernelLayer);
  });
}

// ---- saving the edited model as a new run (never over the one being explained)

function setupSave() {
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
  // the Train view shows its own run's prediction; the side one is the opened model's
  $("side-prediction").hidden = name === "train";
  if (name === "kernels" && state.kernelLayer === null) {
    const first = state.model.layers.find((l) => l.kind === "conv");
    buildKernelLayerButtons();
    if (first) showKernelLayer(first.index);
    else $("kernel-summary").textContent = "This model has no convolution layers.";
  }
  if (name === "training") loadCurves();
}

start();
