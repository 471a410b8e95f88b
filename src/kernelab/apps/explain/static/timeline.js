// The kernel timeline: a slider over the steps the run recorded while it trained (dense at
// the start, where kernels change fastest). Moving it takes this tab's convolutions to that
// step on the server; the kernels, their spectra and the feature maps then redraw.
import { showKernelLayer } from "./kernels.js";
import { requestUpdate } from "./network.js";
import { $, api, fmt, onSessionExpired, state } from "./util.js";

const timeline = {
  steps: [], epochs: [], losses: [],
  shown: null, // the index of the step this tab's model is at; null: the trained model
  wanted: null, // where the slider is: sent when the request before it has come back
  busy: false,
};

async function setupTimeline() {
  let answer;
  try {
    answer = await api("/api/timeline");
  } catch (error) {
    return; // e.g. a model whose timeline is unreadable: the page works without it
  }
  if (!answer.available) return; // an ONNX file, or a run trained before timelines
  Object.assign(timeline, { steps: answer.steps, epochs: answer.epochs, losses: answer.losses });
  const slider = $("timeline-slider");
  slider.max = String(answer.steps.length - 1);
  slider.value = slider.max;
  slider.addEventListener("input", () => {
    timeline.wanted = Number(slider.value);
    send();
  });
  $("timeline-trained").addEventListener("click", () => {
    timeline.wanted = null;
    send();
  });
  onSessionExpired(() => { // a fresh session shows the trained model
    timeline.shown = timeline.wanted = null;
    render();
  });
  $("timeline").hidden = false;
  render();
}

// One request at a time; while one is out, the slider may move on, and only where it ends
// up is sent next (dragging does not queue a request per position).
async function send() {
  if (timeline.busy) return;
  timeline.busy = true;
  try {
    while (timeline.wanted !== timeline.shown) {
      const index = timeline.wanted;
      const step = index === null ? null : timeline.steps[index];
      await api("/api/timeline", { method: "POST", json: { step } });
      timeline.shown = index;
      render();
      redraw();
    }
    $("timeline-error").textContent = "";
  } catch (error) {
    $("timeline-error").textContent = error.message;
  } finally {
    timeline.busy = false;
  }
}

function redraw() {
  if (!state.model) return;
  requestUpdate(0);
  if (state.kernelLayer !== null) showKernelLayer(state.kernelLayer);
}

function render() {
  const index = timeline.shown, last = timeline.steps.length - 1;
  const box = $("timeline");
  box.dataset.step = index === null ? "trained" : String(timeline.steps[index]);
  if (index === null) $("timeline-slider").value = String(last);
  $("timeline-trained").disabled = index === null;
  const loss = index === null ? null : timeline.losses[index];
  $("timeline-label").textContent = index === null
    ? `the trained model · ${timeline.steps.length} recorded steps, 0 to ${timeline.steps[last]}`
    : `step ${timeline.steps[index]} of ${timeline.steps[last]}` +
      (timeline.epochs[index] === null ? " · initial kernels" : ` · epoch ${timeline.epochs[index]}`) +
      (loss === null ? "" : ` · batch loss ${fmt(loss, 3)}`);
  $("timeline-note").textContent = index === null ? "" :
    "Layers after the last convolution keep their trained weights; the prediction compares " +
    "with the trained model's.";
  drawLosses(index);
}

// The recorded batch losses, one point per slider position, the shown one marked.
function drawLosses(index) {
  const canvas = $("timeline-losses");
  const context = canvas.getContext("2d");
  const { width, height } = canvas;
  context.clearRect(0, 0, width, height);
  const known = timeline.losses.filter((v) => v !== null);
  if (!known.length) return;
  const top = Math.max(...known), n = Math.max(1, timeline.losses.length - 1);
  const x = (i) => (i / n) * (width - 4) + 2;
  const y = (v) => height - 2 - (v / (top || 1)) * (height - 4);
  context.strokeStyle = "#9aa0ab";
  context.beginPath();
  timeline.losses.forEach((v, i) => {
    if (v === null) return;
    if (i === 0 || timeline.losses[i - 1] === null) context.moveTo(x(i), y(v));
    else context.lineTo(x(i), y(v));
  });
  context.stroke();
  if (index !== null) {
    context.fillStyle = "#ffb454";
    context.fillRect(x(index) - 1, 0, 2, height);
  }
}

setupTimeline();
