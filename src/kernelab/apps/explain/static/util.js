// Shared by every part of the page: the state, talking to the server, and drawing numbers
// as colours (blue for negative, black for 0, orange to yellow for positive).
// One id per tab: the server keeps this tab's kernel edits apart. A new one when the server
// says the session expired (it keeps a limited number, the least recently used go first).
let session = newSessionId();
const expiredHandlers = [];
const BUSY_TRIES = 5; // a GET answered "busy" is asked again this many times
export const $ = (id) => document.getElementById(id);
export const state = {
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

export function el(tag, props = {}, ...children) {
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

// Called after this tab's session expired and a fresh one took its place.
export function onSessionExpired(callback) {
  expiredHandlers.push(callback);
}

// A request to the server; an answer that this tab's session expired (410, "expired") starts
// a fresh session, says so once, and sends the request again in the fresh one. An answer that
// the server is busy (503) is shown in the notice too.
export async function api(path, options = {}, again = true, tries = 0) {
  let { method = "GET", json, body, type } = options;
  const sent = session;
  const headers = { "X-Kernelab-Session": sent };
  if (json !== undefined) {
    body = JSON.stringify(json);
    headers["Content-Type"] = "application/json";
  } else if (type) headers["Content-Type"] = type;
  const response = await fetch(path, { method, headers, body });
  const data = await response.json().catch(() => ({}));
  if (response.status === 410 && data.expired && again) {
    if (sent === session) { // the first answer to say so: later ones came from the old id too
      session = newSessionId();
      showNotice(data.error);
      expiredHandlers.forEach((callback) => callback());
    }
    return api(path, options, false, tries);
  }
  // Busy (503): every slot and its queue full. Said in the notice; a GET (the model, kernels,
  // the test set) is asked again after Retry-After, a few times; a POST is retried by the next
  // stroke or click.
  if (response.status === 503 && data.error) {
    showNotice(data.error);
    if (method === "GET" && tries < BUSY_TRIES) {
      const seconds = Number(response.headers.get("Retry-After")) || 1;
      await new Promise((done) => setTimeout(done, seconds * 1000));
      return api(path, options, again, tries + 1);
    }
  }
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

function showNotice(text) {
  $("notice-text").textContent = text;
  $("notice").hidden = false;
}

export function fromBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export function toBase64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

export function decode(encoded) {
  return { shape: encoded.shape, lo: encoded.lo, hi: encoded.hi, bytes: fromBase64(encoded.data) };
}

// (C, H, W) of any output shape, as the server sees it: (F,) is F maps of 1x1.
export function asMaps(shape) {
  if (shape.length === 3) return shape;
  if (shape.length === 2) return [shape[0], 1, shape[1]];
  return [shape.reduce((a, b) => a * b, 1), 1, 1];
}

// A probability as a percentage; near 0 and 100 % with the digits that still differ.
export function percent(p) {
  const v = 100 * p;
  if (v > 0 && v < 0.05) return v < 1e-3 ? "<0.001%" : `${v.toFixed(3)}%`;
  if (v < 100 && v >= 99.95) return v > 99.999 ? ">99.999%" : `${v.toFixed(3)}%`;
  return `${v.toFixed(1)}%`;
}

// A change with its sign always shown: +1.25, −0.5, ±0.
export function signed(v, digits = 2) {
  if (v === 0) return "±0";
  return (v > 0 ? "+" : "−") + fmt(Math.abs(v), digits);
}

export function fmt(v, digits = 4) {
  if (v === null || v === undefined) return "−∞";
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(2);
  return v.toFixed(digits);
}

// ---- colours: blue for negative, black for 0, orange to yellow for positive

export function signedRGB(t) {
  const a = Math.min(1, Math.abs(t));
  if (t >= 0) return [255 * Math.min(1, a * 1.6), 170 * a + 60 * a * a, 40 * a * a];
  return [60 * a, 120 * a, 255 * Math.min(1, a * 1.4)];
}

export function css(rgb) {
  return `rgb(${rgb.map(Math.round).join(",")})`;
}

// A 256-entry colour table for bytes q that stand for lo + q·(hi − lo)/255 (a magnitude,
// never negative, comes out black to yellow).
export function palette(lo, hi, kind) {
  const table = new Uint8ClampedArray(256 * 3);
  const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
  for (let q = 0; q < 256; q++) {
    table.set(kind === "grey" ? [q, q, q] : signedRGB((lo + (q * (hi - lo)) / 255) / m), q * 3);
  }
  return table;
}

export function paint(canvas, bytes, offset, width, height, table) {
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
export function paintMap(canvas, decoded, c, kind = "signed") {
  const [, h, w] = asMaps(decoded.shape);
  const perMap = decoded.lo.length > 1 || decoded.shape.length !== 1;
  const lo = perMap ? decoded.lo[c] : decoded.lo[0];
  const hi = perMap ? decoded.hi[c] : decoded.hi[0];
  paint(canvas, decoded.bytes, c * h * w, w, h, palette(lo, hi, kind));
}

export function valueAt(decoded, c, y, x) {
  const [, h, w] = asMaps(decoded.shape);
  const index = decoded.shape.length === 1 ? 0 : c;
  const q = decoded.bytes[c * h * w + y * w + x];
  return decoded.lo[index] + (q * (decoded.hi[index] - decoded.lo[index])) / 255;
}

// Pixels (C, H, W) as a grey (or RGB) picture.
export function paintPixels(canvas, pixels, shape, offset = 0) {
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

export function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== null) node.textContent = text;
  return node;
}

// A chart's frame: its title, axes, the values lo..hi on the left and the x axis's last
// label; returns the SVG root and Y, a value's height. size: width W, height H, margins L R T B.
export function chartFrame(title, size, lo, hi, xLabel) {
  const { W, H, L, R, T, B } = size;
  const Y = (v) => T + ((hi - v) * (H - T - B)) / (hi - lo);
  const root = svg("svg", { class: "chart", width: W, height: H, viewBox: `0 0 ${W} ${H}` });
  root.append(svg("text", { x: L, y: T - 6 }, title),
    svg("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }),
    svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }),
    svg("text", { x: 2, y: Y(hi) + 4 }, hi.toPrecision(3)),
    svg("text", { x: 2, y: Y(lo) + 4 }, lo.toPrecision(3)),
    svg("text", { x: W - R, y: H - 6, "text-anchor": "end" }, xLabel));
  return { root, Y };
}
