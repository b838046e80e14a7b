// A small line chart on a <canvas> (used by the Attention and Counting views): axes with ticks
// and labels, one line per series (each with its own colour AND dash pattern and point marker,
// so colour is never the only cue), a legend. The canvas gets role="img", an aria-label and
// data-points (how many points were drawn); chartTable() gives the same data as a table.
import { el, table } from "./ui.js";

const COLOURS = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#4b5563"];
const DASHES = [[], [8, 4], [2, 3], [10, 3, 2, 3], [4, 4], [1, 5], [12, 6], [6, 2, 2, 2]];
const MARKERS = ["circle", "square", "triangle", "diamond", "cross", "circle", "square", "triangle"];

function css(name, fallback) {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || fallback;
}

function niceStep(range, ticks) {
  const raw = range / Math.max(1, ticks);
  const power = 10 ** Math.floor(Math.log10(raw || 1));
  const unit = raw / power;
  return (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10) * power;
}

// Series i's colour and dash (the line and its legend sample are drawn alike).
function pen(ctx, i) {
  const colour = COLOURS[i % COLOURS.length];
  ctx.strokeStyle = colour;
  ctx.fillStyle = colour;
  ctx.lineWidth = 2;
  ctx.setLineDash(DASHES[i % DASHES.length]);
}

function marker(ctx, kind, x, y, r) {
  ctx.beginPath();
  if (kind === "square") ctx.rect(x - r, y - r, 2 * r, 2 * r);
  else if (kind === "triangle") {
    ctx.moveTo(x, y - r);
    ctx.lineTo(x + r, y + r);
    ctx.lineTo(x - r, y + r);
    ctx.closePath();
  } else if (kind === "diamond") {
    ctx.moveTo(x, y - r);
    ctx.lineTo(x + r, y);
    ctx.lineTo(x, y + r);
    ctx.lineTo(x - r, y);
    ctx.closePath();
  } else if (kind === "cross") {
    ctx.moveTo(x - r, y - r);
    ctx.lineTo(x + r, y + r);
    ctx.moveTo(x + r, y - r);
    ctx.lineTo(x - r, y + r);
    ctx.stroke();
    return;
  } else ctx.arc(x, y, r, 0, 2 * Math.PI);
  ctx.fill();
}

/**
 * Draw series on `canvas`.
 * @param {HTMLCanvasElement} canvas
 * @param {{series: {name: string, points: [number, number][]}[], title: string, xLabel: string,
 *          yLabel: string, yMin?: number, yMax?: number, xFormat?: (x:number)=>string,
 *          stepped?: boolean, xMinStep?: number}} spec
 * @returns {number} the number of points drawn
 */
export function lineChart(canvas, spec) {
  const series = spec.series.filter((s) => s.points.length > 0);
  const total = series.reduce((n, s) => n + s.points.length, 0);
  const width = canvas.width;
  const height = canvas.height;
  const ctx = canvas.getContext("2d");
  const fg = css("--fg", "#111827");
  const muted = css("--muted", "#6b7280");
  const bg = css("--card", "#ffffff");
  ctx.save();
  ctx.fillStyle = bg;
  ctx.fillRect(0, 0, width, height);
  ctx.font = "13px system-ui, sans-serif";
  const legendRows = Math.ceil(series.length / 3);
  const left = 56;
  const right = 16;
  const top = 28 + legendRows * 20;
  const bottom = 44;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  ctx.fillStyle = fg;
  ctx.textBaseline = "top";
  ctx.fillText(spec.title || "", left, 6);

  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  let xMin = xs.length ? Math.min(...xs) : 0;
  let xMax = xs.length ? Math.max(...xs) : 1;
  if (xMax === xMin) xMax = xMin + 1;
  let yMin = spec.yMin ?? (ys.length ? Math.min(0, ...ys) : 0);
  let yMax = spec.yMax ?? (ys.length ? Math.max(...ys) : 1);
  if (yMax <= yMin) yMax = yMin + 1;
  const X = (x) => left + ((x - xMin) / (xMax - xMin)) * plotW;
  const Y = (y) => top + plotH - ((y - yMin) / (yMax - yMin)) * plotH;

  // Grid, ticks and axis labels.
  ctx.strokeStyle = muted;
  ctx.lineWidth = 1;
  ctx.globalAlpha = 0.35;
  const yStep = niceStep(yMax - yMin, 5);
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let v = Math.ceil(yMin / yStep) * yStep; v <= yMax + 1e-9; v += yStep) {
    ctx.globalAlpha = 0.35;
    ctx.beginPath();
    ctx.moveTo(left, Y(v));
    ctx.lineTo(left + plotW, Y(v));
    ctx.stroke();
    ctx.globalAlpha = 1;
    ctx.fillStyle = muted;
    ctx.fillText(String(Math.round(v * 100) / 100), left - 6, Y(v));
  }
  const xStep = Math.max(spec.xMinStep || 0, niceStep(xMax - xMin, 6));
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  const format = spec.xFormat || ((x) => String(Math.round(x * 100) / 100));
  for (let v = Math.ceil(xMin / xStep) * xStep; v <= xMax + 1e-9; v += xStep) {
    ctx.globalAlpha = 0.35;
    ctx.beginPath();
    ctx.moveTo(X(v), top);
    ctx.lineTo(X(v), top + plotH);
    ctx.stroke();
    ctx.globalAlpha = 1;
    ctx.fillStyle = muted;
    ctx.fillText(format(v), X(v), top + plotH + 4);
  }
  ctx.globalAlpha = 1;
  ctx.strokeStyle = fg;
  ctx.beginPath();
  ctx.moveTo(left, top);
  ctx.lineTo(left, top + plotH);
  ctx.lineTo(left + plotW, top + plotH);
  ctx.stroke();
  ctx.fillStyle = fg;
  ctx.fillText(spec.xLabel || "", left + plotW / 2, height - 18);
  ctx.save();
  ctx.translate(14, top + plotH / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = "middle";
  ctx.fillText(spec.yLabel || "", 0, 0);
  ctx.restore();

  // Lines and markers.
  series.forEach((s, i) => {
    pen(ctx, i);
    ctx.beginPath();
    s.points.forEach(([x, y], k) => {
      if (k === 0) ctx.moveTo(X(x), Y(y));
      else if (spec.stepped) {
        ctx.lineTo(X(x), Y(s.points[k - 1][1]));
        ctx.lineTo(X(x), Y(y));
      } else ctx.lineTo(X(x), Y(y));
    });
    ctx.stroke();
    ctx.setLineDash([]);
    const every = Math.max(1, Math.ceil(s.points.length / 40));
    s.points.forEach(([x, y], k) => {
      if (k % every === 0 || k === s.points.length - 1) marker(ctx, MARKERS[i % MARKERS.length], X(x), Y(y), 3);
    });
  });

  // Legend: sample line with its dash and marker, then the name.
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  const column = Math.max(120, plotW / 3);
  series.forEach((s, i) => {
    const lx = left + (i % 3) * column;
    const ly = 30 + Math.floor(i / 3) * 20;
    pen(ctx, i);
    ctx.beginPath();
    ctx.moveTo(lx, ly);
    ctx.lineTo(lx + 28, ly);
    ctx.stroke();
    ctx.setLineDash([]);
    marker(ctx, MARKERS[i % MARKERS.length], lx + 14, ly, 3);
    ctx.fillStyle = fg;
    const name = s.name.length > 24 ? `${s.name.slice(0, 23)}…` : s.name;
    ctx.fillText(name, lx + 34, ly);
  });
  if (total === 0) {
    ctx.fillStyle = muted;
    ctx.textAlign = "center";
    ctx.fillText("No data yet", left + plotW / 2, top + plotH / 2);
  }
  ctx.restore();

  canvas.setAttribute("role", "img");
  canvas.dataset.points = String(total);
  canvas.dataset.series = String(series.length);
  canvas.setAttribute(
    "aria-label",
    `${spec.title || "Chart"}: ${series.length} line${series.length === 1 ? "" : "s"} (${series
      .map((s) => s.name)
      .join(", ")}), ${total} points; the table below has the values.`,
  );
  return total;
}

/** A chart canvas with a sensible size (drawn at its pixel size, shown at most 100 % wide). */
export function chartCanvas(label, { width = 900, height = 360 } = {}) {
  return el("canvas", { class: "chart", width, height, role: "img", "aria-label": label, dataset: { points: "0" } });
}

/**
 * The chart's data as a table inside a <details> (the screen-reader and keyboard alternative):
 * one row per x, one column per series.
 */
export function chartTable(spec, { xHeader = "x", format = (v) => String(v), limit = 2000 } = {}) {
  const xs = [...new Set(spec.series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  const maps = spec.series.map((s) => new Map(s.points.map(([x, y]) => [x, y])));
  const rows = xs.slice(0, limit).map((x) => ({ x, values: maps.map((m) => m.get(x)) }));
  const xFormat = spec.xFormat || ((x) => String(x));
  const columns = [
    [xHeader, (row) => xFormat(row.x)],
    ...spec.series.map((s, i) => [s.name, (row) => (row.values[i] === undefined ? "—" : format(row.values[i]))]),
  ];
  return el(
    "details",
    { class: "chart-table" },
    el("summary", {}, `${spec.title || "Chart"} as a table (${rows.length} rows)`),
    table(columns, rows, { caption: spec.title, empty: "No data." }),
  );
}
