// The input: a drawing on the model's own pixel grid, or an uploaded image.
import { $, api, fromBase64, paintPixels, state } from "./util.js";
import { requestUpdate } from "./network.js";

// ---- the drawing: a soft round brush on the model's own pixel grid

// Pointer events serve mouse, pen and touch alike; the canvas has ``touch-action: none``.
export function setupDrawing() {
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
    $("test-label").textContent = "";
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

export function paintDrawing() {
  const canvas = $("draw");
  const grey = Uint8Array.from(state.ink, (v) => Math.round(255 * v));
  paintPixels(canvas, grey, [1, canvas.height, canvas.width]);
}

// Show pixels (C, H, W) from an upload or the test set as the new input (not centred again).
export function loadPixels(pixels) {
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

export function setupInputs() {
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
      $("test-label").textContent = ""; // the label of a test image shown before is not this one's
      loadPixels(pixels);
    } catch (error) {
      $("upload-error").textContent = error.message;
      $("upload-preview").hidden = true;
    } finally {
      $("upload").value = "";
    }
  });
}
