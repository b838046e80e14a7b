// People counting: upload a video, draw counting lines (and zones) on its first frame, run the
// job, follow its progress, then the counts per line and zone, the events, a per-second chart
// and the annotated preview. Past videos can be opened again or erased.
//
// The first frame: the browser decodes the file in a <video> when it can; otherwise (e.g. an AVI
// that Chromium does not play) POST /api/v1/counting/first-frame answers it as a JPEG. The canvas
// is sized in the video's own pixels, so a pointer position only needs the CSS scaling undone to
// be in the pixels POST /api/v1/counting/videos expects.
import { el, replace, field, section, table, progress, facts, busy, showError, clear, toast, when, rawJson, poll } from "../ui.js";
import { chartCanvas, chartTable, lineChart } from "../attention-chart.js";

const VIDEOS = "/api/v1/counting/videos";
const FIRST_FRAME = "/api/v1/counting/first-frame";
const DECODE_TIMEOUT_MS = 4000;
const LINE_COLOURS = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#db2777"];
const TERMINAL = new Set(["completed", "failed", "cancelled"]);

function round1(v) {
  return Math.round(v * 10) / 10;
}

/** The first frame through the browser's own decoder: {source (canvas), width, height} or null. */
function firstFrameInBrowser(file, signal) {
  return new Promise((resolve) => {
    const video = document.createElement("video");
    const src = URL.createObjectURL(file);
    let settled = false;
    const finish = (value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      video.removeAttribute("src");
      video.load();
      URL.revokeObjectURL(src);
      resolve(value);
    };
    const timer = setTimeout(() => finish(null), DECODE_TIMEOUT_MS);
    signal.addEventListener("abort", () => finish(null));
    video.muted = true;
    video.preload = "auto";
    video.playsInline = true;
    video.addEventListener("error", () => finish(null));
    video.addEventListener("loadeddata", () => {
      if (!video.videoWidth || !video.videoHeight) return finish(null);
      const draw = () => {
        const canvas = document.createElement("canvas");
        canvas.width = video.videoWidth;
        canvas.height = video.videoHeight;
        canvas.getContext("2d").drawImage(video, 0, 0);
        finish({ source: canvas, width: canvas.width, height: canvas.height, how: "decoded by this browser" });
      };
      if (video.currentTime === 0) draw();
      else {
        video.addEventListener("seeked", draw, { once: true });
        video.currentTime = 0;
      }
    });
    video.src = src;
  });
}

/** The first frame from the server (POST /api/v1/counting/first-frame): an ImageBitmap-like source. */
async function firstFrameFromServer(api, file, signal) {
  const response = await api.request("POST", FIRST_FRAME, { form: { video: file }, as: "response", signal });
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  try {
    const image = await new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = () => reject(new Error("The server's frame could not be shown."));
      img.src = url;
    });
    return { source: image, width: image.naturalWidth, height: image.naturalHeight, how: "decoded by the server" };
  } finally {
    URL.revokeObjectURL(url);
  }
}

export default {
  path: "counting",
  title: "Counting",
  render(root, { api, signal }) {
    const urls = new Set();
    const pollers = new Set();
    const state = { frame: null, lines: [], zones: [], draft: null, zoneDraft: [], mode: "line", file: null };

    // --- upload and drawing ---------------------------------------------------------------------
    const fileField = field("Video file", "file", { accept: "video/*,.avi,.mkv,.mov,.mp4,.webm", name: "video", required: true });
    const fpsField = field("Frames analysed per second", "number", {
      name: "sample_fps", min: "0.5", max: "30", step: "0.5", value: "2",
      "data-hint": "0.5–30; fewer frames run faster (the server lowers it for long videos).",
    });
    const confField = field("Minimum confidence (optional)", "number", { name: "min_confidence", min: "0.05", max: "0.95", step: "0.05" });
    const frameStatus = el("div", { class: "status", role: "status", "aria-live": "polite" });
    const canvas = el("canvas", {
      class: "count-canvas",
      width: 640,
      height: 360,
      role: "img",
      "aria-label": "The video's first frame: choose a video first.",
      "aria-describedby": "count-canvas-help",
    });
    canvas.hidden = true;
    const help = el(
      "p",
      { id: "count-canvas-help", class: "hint" },
      "Drag on the frame to draw a line from its start to its end (people crossing from its left to its right, as seen along the arrow, count as in). ",
      "In zone mode, click the corners of a polygon, then Finish zone. Without a pointer, use Add line and type the coordinates (video pixels).",
    );
    const modeLine = el("input", { type: "radio", name: "count-mode", id: "count-mode-line", value: "line", checked: true });
    const modeZone = el("input", { type: "radio", name: "count-mode", id: "count-mode-zone", value: "zone" });
    const modes = el(
      "fieldset",
      { class: "count-modes" },
      el("legend", {}, "Drawing mode"),
      el("span", { class: "field checkbox" }, modeLine, el("label", { for: "count-mode-line" }, "Lines")),
      el("span", { class: "field checkbox" }, modeZone, el("label", { for: "count-mode-zone" }, "Zones")),
    );
    const finishZone = el("button", { type: "button", class: "secondary", disabled: true }, "Finish zone");
    const cancelZone = el("button", { type: "button", class: "secondary", disabled: true }, "Cancel zone");
    const addLine = el("button", { type: "button", class: "secondary", disabled: true }, "Add line");
    const linesBox = el("div", { class: "count-lines" });
    const zonesBox = el("div", { class: "count-zones" });
    const runButton = el("button", { type: "submit" }, "Count people");
    const runStatus = el("div", { class: "status", "aria-live": "polite" });
    const form = el(
      "form",
      { class: "stack", "aria-label": "New people count" },
      el("div", { class: "grid three" }, fileField, fpsField, confField),
      frameStatus,
      el("div", { class: "stage wide count-stage" }, canvas),
      help,
      el("div", { class: "row" }, modes, addLine, finishZone, cancelZone),
      el("h3", {}, "Lines"),
      linesBox,
      el("h3", {}, "Zones"),
      zonesBox,
      el("div", { class: "row" }, runButton),
      runStatus,
    );
    const resultBox = el("div", { class: "count-result", "aria-live": "polite" });
    const listBox = el("div", {});
    const listStatus = el("div", { class: "status" });
    const refresh = el("button", { type: "button", class: "secondary" }, "Refresh list");

    root.append(
      section("Count people in a video", form),
      section("Result", resultBox),
      section("Past videos", el("div", { class: "row" }, refresh), listStatus, listBox),
    );

    // Pointer position → video pixels (the canvas is sized in video pixels; CSS may shrink it).
    function toVideo(event) {
      const rect = canvas.getBoundingClientRect();
      const x = ((event.clientX - rect.left) * canvas.width) / rect.width;
      const y = ((event.clientY - rect.top) * canvas.height) / rect.height;
      return [round1(Math.max(0, Math.min(canvas.width, x))), round1(Math.max(0, Math.min(canvas.height, y)))];
    }

    function arrow(ctx, [x1, y1], [x2, y2], colour) {
      // The "in" side: the right of start→end as seen on the image (y down) is (-dy, dx).
      const dx = x2 - x1;
      const dy = y2 - y1;
      const len = Math.hypot(dx, dy) || 1;
      const mx = (x1 + x2) / 2;
      const my = (y1 + y2) / 2;
      const size = Math.max(12, Math.min(canvas.width, canvas.height) / 25);
      const nx = (-dy / len) * size;
      const ny = (dx / len) * size;
      ctx.strokeStyle = colour;
      ctx.beginPath();
      ctx.moveTo(mx, my);
      ctx.lineTo(mx + nx, my + ny);
      ctx.stroke();
      ctx.beginPath();
      ctx.moveTo(mx + nx, my + ny);
      ctx.lineTo(mx + nx * 0.6 + ny * 0.3, my + ny * 0.6 - nx * 0.3);
      ctx.lineTo(mx + nx * 0.6 - ny * 0.3, my + ny * 0.6 + nx * 0.3);
      ctx.closePath();
      ctx.fillStyle = colour;
      ctx.fill();
    }

    function redraw() {
      if (!state.frame) return;
      const ctx = canvas.getContext("2d");
      ctx.drawImage(state.frame.source, 0, 0, canvas.width, canvas.height);
      const scale = Math.max(1, canvas.width / 640);
      ctx.lineWidth = 3 * scale;
      ctx.font = `${Math.round(14 * scale)}px system-ui, sans-serif`;
      state.zones.forEach((zone, i) => {
        const colour = LINE_COLOURS[(i + 3) % LINE_COLOURS.length];
        ctx.strokeStyle = colour;
        ctx.setLineDash([8 * scale, 4 * scale]);
        ctx.beginPath();
        zone.polygon.forEach(([x, y], k) => (k ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
        ctx.closePath();
        ctx.stroke();
        ctx.setLineDash([]);
        ctx.fillStyle = colour;
        ctx.fillText(zone.name, zone.polygon[0][0] + 4, zone.polygon[0][1] + 16 * scale);
      });
      if (state.zoneDraft.length) {
        ctx.strokeStyle = "#f59e0b";
        ctx.beginPath();
        state.zoneDraft.forEach(([x, y], k) => (k ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
        ctx.stroke();
        ctx.fillStyle = "#f59e0b";
        state.zoneDraft.forEach(([x, y]) => ctx.fillRect(x - 3 * scale, y - 3 * scale, 6 * scale, 6 * scale));
      }
      const drawn = state.draft ? [...state.lines, state.draft] : state.lines;
      drawn.forEach((line, i) => {
        const colour = LINE_COLOURS[i % LINE_COLOURS.length];
        ctx.strokeStyle = colour;
        ctx.beginPath();
        ctx.moveTo(...line.start);
        ctx.lineTo(...line.end);
        ctx.stroke();
        arrow(ctx, line.start, line.end, colour);
        ctx.fillStyle = colour;
        ctx.fillText(line.name || "", line.start[0] + 4, line.start[1] - 6);
      });
      const described = [
        `First frame of the video, ${canvas.width}×${canvas.height} pixels`,
        `${state.lines.length} counting line${state.lines.length === 1 ? "" : "s"}`,
        ...state.lines.map((l) => `${l.name} from ${l.start.join(",")} to ${l.end.join(",")}`),
        `${state.zones.length} zone${state.zones.length === 1 ? "" : "s"}`,
      ];
      canvas.setAttribute("aria-label", described.join("; "));
      canvas.dataset.lines = String(state.lines.length);
      canvas.dataset.zones = String(state.zones.length);
    }

    function uniqueName(prefix, list) {
      let n = list.length + 1;
      while (list.some((item) => item.name === `${prefix} ${n}`)) n += 1;
      return `${prefix} ${n}`;
    }

    function renderLines() {
      if (!state.lines.length) {
        linesBox.replaceChildren(el("p", { class: "muted" }, "No line yet: drag on the frame, or Add line."));
        return;
      }
      linesBox.replaceChildren(
        ...state.lines.map((line, index) => {
          const name = field(`Line ${index + 1} name`, "text", { value: line.name, maxlength: "100", required: true });
          name.control.addEventListener("input", () => {
            line.name = name.control.value;
            redraw();
          });
          const coord = (label, get, set, max) => {
            const f = field(`Line ${index + 1} ${label}`, "number", { min: "0", max: String(max), step: "0.1", value: String(get()) });
            f.classList.add("coord");
            f.control.addEventListener("input", () => {
              const v = Number(f.control.value);
              if (Number.isFinite(v)) {
                set(Math.max(0, Math.min(max, v)));
                redraw();
              }
            });
            return f;
          };
          const w = canvas.width;
          const h = canvas.height;
          const swap = el("button", { type: "button", class: "secondary" }, "Swap direction");
          swap.addEventListener("click", () => {
            [line.start, line.end] = [line.end, line.start];
            renderLines();
            redraw();
          });
          const remove = el("button", { type: "button", class: "secondary" }, `Remove ${line.name || "line"}`);
          remove.addEventListener("click", () => {
            state.lines.splice(index, 1);
            renderLines();
            redraw();
          });
          return el(
            "fieldset",
            { class: "count-line", dataset: { index: String(index) } },
            el("legend", {}, `Line ${index + 1}`),
            el(
              "div",
              { class: "row" },
              name,
              coord("x1", () => line.start[0], (v) => (line.start[0] = v), w),
              coord("y1", () => line.start[1], (v) => (line.start[1] = v), h),
              coord("x2", () => line.end[0], (v) => (line.end[0] = v), w),
              coord("y2", () => line.end[1], (v) => (line.end[1] = v), h),
              swap,
              remove,
            ),
          );
        }),
      );
    }

    function renderZones() {
      if (!state.zones.length) {
        zonesBox.replaceChildren(el("p", { class: "muted" }, "No zone (optional): choose Zones mode and click corners on the frame."));
        return;
      }
      zonesBox.replaceChildren(
        ...state.zones.map((zone, index) => {
          const name = field(`Zone ${index + 1} name`, "text", { value: zone.name, maxlength: "100", required: true });
          name.control.addEventListener("input", () => {
            zone.name = name.control.value;
            redraw();
          });
          const points = field(`Zone ${index + 1} corners (x,y; x,y; …)`, "text", {
            value: zone.polygon.map((p) => p.join(",")).join("; "),
          });
          points.control.addEventListener("change", () => {
            const parsed = points.control.value
              .split(";")
              .map((pair) => pair.split(",").map((v) => Number(v.trim())))
              .filter((p) => p.length === 2 && p.every(Number.isFinite));
            if (parsed.length >= 3) {
              zone.polygon = parsed;
              redraw();
            }
          });
          const remove = el("button", { type: "button", class: "secondary" }, `Remove ${zone.name || "zone"}`);
          remove.addEventListener("click", () => {
            state.zones.splice(index, 1);
            renderZones();
            redraw();
          });
          return el("fieldset", { class: "count-zone" }, el("legend", {}, `Zone ${index + 1}`), el("div", { class: "row" }, name, points, remove));
        }),
      );
    }

    function setMode(mode) {
      state.mode = mode;
      state.zoneDraft = [];
      finishZone.disabled = true;
      cancelZone.disabled = mode !== "zone";
      redraw();
    }
    modeLine.addEventListener("change", () => setMode("line"));
    modeZone.addEventListener("change", () => setMode("zone"));

    canvas.addEventListener("pointerdown", (event) => {
      if (!state.frame) return;
      event.preventDefault();
      const point = toVideo(event);
      if (state.mode === "zone") {
        state.zoneDraft.push(point);
        finishZone.disabled = state.zoneDraft.length < 3;
        redraw();
        return;
      }
      canvas.setPointerCapture?.(event.pointerId);
      state.draft = { name: uniqueName("line", state.lines), start: point, end: point };
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!state.draft) return;
      state.draft.end = toVideo(event);
      redraw();
    });
    const endDrag = (event) => {
      if (!state.draft) return;
      state.draft.end = toVideo(event);
      const { start, end } = state.draft;
      if (Math.hypot(end[0] - start[0], end[1] - start[1]) >= 2) {
        state.lines.push(state.draft);
        toast(`${state.draft.name} drawn from ${start.join(",")} to ${end.join(",")}.`);
      }
      state.draft = null;
      renderLines();
      redraw();
    };
    canvas.addEventListener("pointerup", endDrag);
    canvas.addEventListener("pointercancel", () => {
      state.draft = null;
      redraw();
    });

    addLine.addEventListener("click", () => {
      const w = canvas.width;
      const h = canvas.height;
      state.lines.push({ name: uniqueName("line", state.lines), start: [0, round1(h / 2)], end: [w, round1(h / 2)] });
      renderLines();
      redraw();
      linesBox.querySelector("fieldset:last-child input")?.focus();
    });
    finishZone.addEventListener("click", () => {
      if (state.zoneDraft.length < 3) return;
      state.zones.push({ name: uniqueName("zone", state.zones), polygon: state.zoneDraft });
      state.zoneDraft = [];
      finishZone.disabled = true;
      renderZones();
      redraw();
    });
    cancelZone.addEventListener("click", () => {
      state.zoneDraft = [];
      finishZone.disabled = true;
      redraw();
    });

    fileField.control.addEventListener("change", async () => {
      const file = fileField.control.files?.[0];
      state.file = file || null;
      state.frame = null;
      state.lines = [];
      state.zones = [];
      state.zoneDraft = [];
      canvas.hidden = true;
      addLine.disabled = true;
      renderLines();
      renderZones();
      if (!file) return;
      replaceStatus(frameStatus, "Reading the first frame…");
      let frame = await firstFrameInBrowser(file, signal);
      if (!frame && !signal.aborted) {
        replaceStatus(frameStatus, "This browser cannot decode the video; asking the server for its first frame…");
        try {
          frame = await firstFrameFromServer(api, file, signal);
        } catch (error) {
          if (error.name !== "AbortError") showError(frameStatus, error);
          return;
        }
      }
      if (!frame || state.file !== file) return;
      state.frame = frame;
      canvas.width = frame.width;
      canvas.height = frame.height;
      canvas.dataset.source = frame.how.includes("server") ? "server" : "browser";
      canvas.hidden = false;
      addLine.disabled = false;
      replaceStatus(frameStatus, `First frame ${frame.width}×${frame.height} px (${frame.how}). Draw your lines on it.`);
      redraw();
    });

    function replaceStatus(node, text) {
      node.replaceChildren(el("p", {}, text));
    }

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      busy(form, runStatus, async () => {
        if (!state.file) throw { code: "NO_VIDEO", message: "Choose a video first." };
        if (!state.lines.length && !state.zones.length) throw { code: "NO_LINES", message: "Draw at least one line or zone." };
        const fields = {
          video: state.file,
          sample_fps: fpsField.control.value,
          min_confidence: confField.control.value,
          lines: JSON.stringify(state.lines.map((l) => ({ name: l.name.trim(), start: l.start, end: l.end }))),
        };
        if (state.zones.length) fields.zones = JSON.stringify(state.zones.map((z) => ({ name: z.name.trim(), polygon: z.polygon })));
        const bar = progress("Counting");
        resultBox.replaceChildren(el("p", {}, "Uploading…"), bar);
        const answer = await api.post(VIDEOS, { form: fields, signal });
        toast(`Video queued (${answer.video_id}).`);
        loadList();
        await follow(answer.video_id, bar);
        loadList();
      });
    });

    // --- a video's progress and results ----------------------------------------------------------
    async function follow(videoId, bar) {
      const box = el("div", {});
      bar = bar || progress("Counting");
      resultBox.replaceChildren(bar, box);
      const controller = new AbortController();
      pollers.forEach((c) => c.abort());
      pollers.add(controller);
      const stop = () => controller.abort();
      signal.addEventListener("abort", stop);
      try {
        const video = await poll(() => api.get(`${VIDEOS}/${videoId}`, {}, { signal }), {
          signal: controller.signal,
          interval: 1000,
          done: (v) => TERMINAL.has(v.status),
          onUpdate: (v) => bar.set(v.status === "completed" ? 100 : v.progress_percentage, v.status),
        });
        await showResult(video, box);
      } catch (error) {
        if (error.name !== "AbortError") showError(box, error);
      } finally {
        pollers.delete(controller);
        signal.removeEventListener("abort", stop);
      }
    }

    async function showResult(video, box) {
      box.dataset.videoId = video.video_id;
      box.dataset.status = video.status;
      const info = video.video || {};
      const head = facts([
        ["Video", video.file_name || video.video_id],
        ["Status", video.status],
        ["Size", info.width ? `${info.width}×${info.height} px` : null],
        ["Duration", info.duration_seconds ? `${Number(info.duration_seconds).toFixed(1)} s` : null],
        ["Frames analysed per second", video.sample_fps],
        ["Model", video.model_version],
        ["Processing time", video.processing_time_ms ? `${(video.processing_time_ms / 1000).toFixed(1)} s` : null],
      ]);
      if (video.status !== "completed") {
        box.replaceChildren(head);
        if (video.error) showError(box.appendChild(el("div", {})), video.error);
        box.append(rawJson(video));
        return;
      }
      const totals = video.totals || {};
      const lineTable = table(
        [
          ["Line", (l) => l.name],
          ["In", (l) => el("span", { class: "count-in" }, String(l.in))],
          ["Out", (l) => el("span", { class: "count-out" }, String(l.out))],
          ["Net (in − out)", (l) => String(l.in - l.out)],
        ],
        video.lines,
        { caption: "Crossings per line", empty: "No line was counted." },
      );
      lineTable.classList?.add("count-lines-result");
      const zoneTable = video.zones?.length
        ? table(
            [
              ["Zone", (z) => z.name],
              ["Entered", (z) => String(z.entered)],
              ["Exited", (z) => String(z.exited)],
              ["Most inside at once", (z) => String(z.peak)],
            ],
            video.zones,
            { caption: "Entries and exits per zone" },
          )
        : null;
      const chartBox = el("div", {});
      const eventsBox = el("div", {});
      const previewBox = el("div", {});
      replace(
        box,
        head,
        facts([
          ["People tracked", totals.tracks],
          ["Most people on one frame", totals.people_max],
          ["Events", totals.events],
          ["Frames analysed", totals.frames_processed],
        ]),
        el("h3", {}, "Counts"),
        lineTable,
        zoneTable,
        el("h3", {}, "Counts over time"),
        chartBox,
        el("h3", {}, "Events"),
        eventsBox,
        el("h3", {}, "Preview"),
        previewBox,
        rawJson(video),
      );
      const [timeline, events] = await Promise.all([
        api.get(`${VIDEOS}/${video.video_id}/timeline`, { limit: 1000 }, { signal }).catch((e) => e),
        api.get(`${VIDEOS}/${video.video_id}/events`, { limit: 500 }, { signal }).catch((e) => e),
      ]);
      if (timeline instanceof Error) showError(chartBox, timeline);
      else drawTimeline(chartBox, timeline.timeline || []);
      if (events instanceof Error) showError(eventsBox, events);
      else {
        eventsBox.replaceChildren(
          el("p", { class: "muted" }, `${events.total} event${events.total === 1 ? "" : "s"}${events.total > events.events.length ? ` (first ${events.events.length} shown)` : ""}.`),
          table(
            [
              ["Time", (e) => `${(e.timestamp_ms / 1000).toFixed(1)} s`],
              ["Type", (e) => e.type.replace("_", " ")],
              ["Line / zone", (e) => e.line || e.zone || "—"],
              ["Direction", (e) => e.direction || "—"],
              ["Person (track)", (e) => String(e.track_id ?? "—")],
              ["In / out after", (e) => `${e.count_in} / ${e.count_out}`],
              ["Confidence", (e) => (e.confidence == null ? "—" : Number(e.confidence).toFixed(2))],
            ],
            events.events,
            { caption: "Line crossings and zone entries in video order", empty: "No one crossed a line or a zone." },
          ),
        );
      }
      if (video.preview_available) {
        try {
          const url = await api.objectUrl(`${VIDEOS}/${video.video_id}/preview.mp4`);
          urls.add(url);
          const player = el("video", { src: url, controls: true, muted: true, playsinline: true, class: "count-preview", "aria-label": "Annotated preview: boxes, track numbers, lines and counters" });
          const note = el("p", { class: "muted", role: "status" });
          player.addEventListener("error", () => {
            note.textContent = "This browser cannot play the preview (H.264 MP4); download it instead.";
          });
          previewBox.replaceChildren(
            el("div", { class: "stage" }, player),
            note,
            el("p", {}, el("a", { href: url, download: `${video.file_name || video.video_id}-preview.mp4` }, "Download the preview (MP4)")),
          );
        } catch (error) {
          if (error.name !== "AbortError") showError(previewBox, error);
        }
      } else previewBox.replaceChildren(el("p", { class: "muted" }, "No preview for this video."));
    }

    function drawTimeline(box, timeline) {
      const names = [...new Set(timeline.flatMap((t) => Object.keys(t.lines || {})))];
      const zones = [...new Set(timeline.flatMap((t) => Object.keys(t.zones || {})))];
      const series = [
        ...names.flatMap((name) => [
          { name: `${name} in`, points: timeline.filter((t) => t.lines?.[name]).map((t) => [t.second, t.lines[name].in]) },
          { name: `${name} out`, points: timeline.filter((t) => t.lines?.[name]).map((t) => [t.second, t.lines[name].out]) },
        ]),
        ...zones.map((name) => ({
          name: `${name} inside`,
          points: timeline.filter((t) => t.zones?.[name]).map((t) => [t.second, t.zones[name].inside]),
        })),
      ];
      const spec = {
        title: "Cumulative crossings per second of video",
        xLabel: "second of video",
        yLabel: "people",
        yMin: 0,
        series,
        stepped: true,
        xFormat: (x) => `${x} s`,
        xMinStep: 1,
      };
      const chart = chartCanvas("Cumulative crossings per second", { width: 900, height: 340 });
      chart.classList.add("count-chart");
      box.replaceChildren(el("div", { class: "stage wide" }, chart), chartTable(spec, { xHeader: "Second" }));
      lineChart(chart, spec);
      chart.dataset.seconds = String(timeline.length);
    }

    // --- past videos ---------------------------------------------------------------------------------
    async function loadList() {
      try {
        const answer = await api.get(VIDEOS, { limit: 20 }, { signal });
        clear(listStatus);
        listBox.replaceChildren(
          el("p", { class: "muted" }, `${answer.total} video${answer.total === 1 ? "" : "s"}.`),
          table(
            [
              ["File", (v) => v.file_name || v.video_id],
              ["Status", (v) => v.status],
              ["Progress", (v) => `${Math.round(v.status === "completed" ? 100 : v.progress_percentage)} %`],
              ["Uploaded", (v) => when(v.created_at)],
              [
                "Actions",
                (v) =>
                  el(
                    "div",
                    { class: "row" },
                    el("button", { type: "button", class: "secondary", onclick: () => openVideo(v.video_id) }, `Open ${v.file_name || "video"}`),
                    el("button", { type: "button", class: "danger", onclick: () => removeVideo(v) }, `Delete ${v.file_name || "video"}`),
                  ),
              ],
            ],
            answer.videos,
            { caption: "Your counting videos, newest first", empty: "No video counted yet." },
          ),
        );
      } catch (error) {
        if (error.name !== "AbortError") showError(listStatus, error);
      }
    }

    function openVideo(videoId) {
      follow(videoId);
      resultBox.closest("section")?.scrollIntoView({ block: "start" });
    }

    async function removeVideo(video) {
      if (!confirm(`Delete ${video.file_name || video.video_id} and all its results?`)) return;
      try {
        await api.del(`${VIDEOS}/${video.video_id}`, { signal });
        toast("Video deleted.");
        if (resultBox.querySelector(`[data-video-id="${CSS.escape(video.video_id)}"]`)) resultBox.replaceChildren();
        loadList();
      } catch (error) {
        if (error.name !== "AbortError") showError(listStatus, error);
      }
    }

    refresh.addEventListener("click", loadList);
    renderLines();
    renderZones();
    loadList();

    return () => {
      pollers.forEach((c) => c.abort());
      urls.forEach((u) => URL.revokeObjectURL(u));
    };
  },
};
