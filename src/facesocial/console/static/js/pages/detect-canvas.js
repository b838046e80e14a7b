// Drawing faces on a canvas (shared by the Detect and Recognition views): the photo, each face's
// box, its landmarks (5 named points, the 68 points, the 468-point mesh as dots) and a numbered
// label. What was drawn is also written on the canvas as data attributes (image pixels), and the
// canvas is role="img" with a text description, so the picture is never the only way to read it.
import { el } from "../ui.js";

// Bright colours with a dark outline read on light and dark photos; every face also has a number.
const COLOURS = ["#00e5ff", "#ffea00", "#ff4fa3", "#76ff03", "#ff9100", "#e879f9", "#ffffff", "#40c4ff"];
// The longest side a canvas is drawn at (a 12 Mpx photo stays light); coordinates are scaled.
const MAX_SIDE = 1600;
// The 68-point scheme's contours (iBUG 300-W): jaw, brows, nose bridge, nostrils, eyes, lips.
const CONTOURS_68 = [
  [0, 16, false], [17, 21, false], [22, 26, false], [27, 30, false], [31, 35, false],
  [36, 41, true], [42, 47, true], [48, 59, true], [60, 67, true],
];

export function colourOf(index) {
  return COLOURS[index % COLOURS.length];
}

/** "1 face detected" / "3 faces detected". */
export function facesLabel(count, what = "detected") {
  return `${count} ${count === 1 ? "face" : "faces"} ${what}`;
}

/**
 * Draw `image` (a decoded HTMLImageElement) and `faces` (the API's face objects: bbox, landmarks,
 * landmarks_68, mesh.landmarks) on a new canvas inside a .stage wrapper and return the wrapper.
 * `size` = {width, height}: the image size the API measured its coordinates in (defaults to the
 * image's own). The canvas carries data-faces, data-boxes (JSON [[x, y, w, h], ...] in image
 * pixels, read back from what was drawn), data-landmarks5 / data-landmarks68 / data-mesh (JSON
 * point counts drawn per face).
 */
export function faceCanvas(image, faces, { size, label, caption } = {}) {
  const natural = { width: image.naturalWidth || image.width, height: image.naturalHeight || image.height };
  const scale = Math.min(1, MAX_SIDE / Math.max(natural.width, natural.height));
  const canvas = el("canvas", { role: "img", class: "face-canvas" });
  canvas.width = Math.max(1, Math.round(natural.width * scale));
  canvas.height = Math.max(1, Math.round(natural.height * scale));
  // API pixels -> canvas pixels (per axis, in case the API measured another size).
  const apiSize = size && size.width && size.height ? size : natural;
  const sx = canvas.width / apiSize.width;
  const sy = canvas.height / apiSize.height;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
  const line = Math.max(2, Math.round(Math.max(canvas.width, canvas.height) / 400));
  const dot = Math.max(1.5, line * 0.9);

  const drawn = { boxes: [], landmarks5: [], landmarks68: [], mesh: [] };
  faces.forEach((face, index) => {
    const colour = colourOf(index);
    const b = face.bbox;
    const box = [b.x * sx, b.y * sy, b.width * sx, b.height * sy];
    outlinedRect(ctx, box, colour, line);
    drawn.boxes.push([box[0] / sx, box[1] / sy, box[2] / sx, box[3] / sy]);

    let mesh = 0;
    for (const point of face.mesh?.landmarks || []) {
      dotAt(ctx, point[0] * sx, point[1] * sy, Math.max(1, dot * 0.45), colour, false);
      mesh += 1;
    }
    drawn.mesh.push(mesh);

    let count68 = 0;
    const points68 = face.landmarks_68 || [];
    if (points68.length === 68) {
      ctx.lineWidth = Math.max(1, line / 2);
      ctx.strokeStyle = colour;
      for (const [from, to, closed] of CONTOURS_68) {
        ctx.beginPath();
        for (let i = from; i <= to; i += 1) {
          const [x, y] = points68[i];
          if (i === from) ctx.moveTo(x * sx, y * sy);
          else ctx.lineTo(x * sx, y * sy);
        }
        if (closed) ctx.closePath();
        ctx.stroke();
      }
    }
    for (const [x, y] of points68) {
      dotAt(ctx, x * sx, y * sy, dot * 0.8, colour, true);
      count68 += 1;
    }
    drawn.landmarks68.push(count68);

    let count5 = 0;
    for (const point of face.landmarks || []) {
      dotAt(ctx, point.x * sx, point.y * sy, dot * 1.6, "#ff1744", true);
      count5 += 1;
    }
    drawn.landmarks5.push(count5);

    numberLabel(ctx, String(index + 1), box, colour, line);
  });

  canvas.setAttribute("aria-label", label || facesLabel(faces.length));
  canvas.dataset.faces = String(faces.length);
  canvas.dataset.boxes = JSON.stringify(drawn.boxes.map((box) => box.map((v) => Math.round(v * 100) / 100)));
  canvas.dataset.landmarks5 = JSON.stringify(drawn.landmarks5);
  canvas.dataset.landmarks68 = JSON.stringify(drawn.landmarks68);
  canvas.dataset.mesh = JSON.stringify(drawn.mesh);
  return el("figure", { class: "stage face-stage" }, canvas, caption ? el("figcaption", { class: "muted" }, caption) : null);
}

function outlinedRect(ctx, [x, y, w, h], colour, line) {
  ctx.lineJoin = "round";
  ctx.strokeStyle = "rgba(0, 0, 0, 0.75)";
  ctx.lineWidth = line + 2;
  ctx.strokeRect(x, y, w, h);
  ctx.strokeStyle = colour;
  ctx.lineWidth = line;
  ctx.strokeRect(x, y, w, h);
}

function dotAt(ctx, x, y, radius, colour, outline) {
  ctx.beginPath();
  ctx.arc(x, y, radius, 0, 2 * Math.PI);
  ctx.fillStyle = colour;
  ctx.fill();
  if (outline) {
    ctx.lineWidth = 1;
    ctx.strokeStyle = "rgba(0, 0, 0, 0.8)";
    ctx.stroke();
  }
}

function numberLabel(ctx, text, [x, y, , h], colour, line) {
  const size = Math.max(14, Math.round(line * 7));
  ctx.font = `bold ${size}px system-ui, sans-serif`;
  const width = ctx.measureText(text).width + size * 0.6;
  const height = size * 1.3;
  // Above the box, or inside its top edge when the box touches the top of the image.
  const top = y - height >= 0 ? y - height : Math.min(y + h, ctx.canvas.height) - height;
  const left = Math.max(0, Math.min(x, ctx.canvas.width - width));
  ctx.fillStyle = colour;
  ctx.fillRect(left, Math.max(0, top), width, height);
  ctx.strokeStyle = "rgba(0, 0, 0, 0.75)";
  ctx.lineWidth = 1;
  ctx.strokeRect(left, Math.max(0, top), width, height);
  ctx.fillStyle = "#000000";
  ctx.textBaseline = "middle";
  ctx.fillText(text, left + size * 0.3, Math.max(0, top) + height / 2);
}

/** Decode a File/Blob into an image; `urls` collects the object URL so the view can revoke it. */
export function decodeImage(file, urls) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    const src = URL.createObjectURL(file);
    urls.push(src);
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("The browser could not decode this image to draw it."));
    image.src = src;
  });
}

/** A drop zone (a real button: Enter/Space opens the file picker) that feeds `input`. */
export function dropZone(input, text = "Drop an image here, or press to choose one") {
  const note = el("span", { class: "drop-file muted" }, "No image chosen.");
  const zone = el("button", { type: "button", class: "dropzone" }, el("span", {}, text), note);
  const show = () => {
    const file = input.files?.[0];
    note.textContent = file ? `Chosen: ${file.name} (${Math.round(file.size / 1024)} KiB)` : "No image chosen.";
  };
  zone.addEventListener("click", () => input.click());
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    const files = event.dataTransfer?.files;
    if (files && files.length) {
      const transfer = new DataTransfer();
      transfer.items.add(files[0]);
      input.files = transfer.files;
      input.dispatchEvent(new Event("change", { bubbles: true }));
    }
  });
  input.addEventListener("change", show);
  return zone;
}

/** A version-4 UUID (crypto.randomUUID needs a secure context; getRandomValues does not). */
export function uuid4() {
  if (globalThis.crypto?.randomUUID && globalThis.isSecureContext) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The models of an answer's `model` map as "part: name version" facts. */
export function modelPairs(models) {
  return Object.entries(models || {}).map(([part, ref]) => [
    part.replace(/_/g, " "),
    ref && typeof ref === "object" ? `${ref.name} ${ref.version}${ref.runtime ? ` (${ref.runtime})` : ""}` : String(ref),
  ]);
}

export const fixed = (value, digits = 2) => (value === null || value === undefined ? "—" : Number(value).toFixed(digits));
