// Forensics: deepfake detection (an image now, a video as a job) and SkyGate's AI-generated-image
// reports (per-method scores with their explanations, ELA / heatmap / thumbnail images, past analyses).
import { el, field, section, replace, clear, showError, busy, progress, scoreBar, facts, table, rawJson, when, poll } from "../ui.js";

const DONE = new Set(["completed", "failed", "cancelled"]);
const LEVELS = [
  ["basic", "basic — learned classifier + frequency"],
  ["standard", "standard — + blending boundary, colour/noise mismatch"],
  ["advanced", "advanced — every signal, finer heatmap"],
];

function bandBadge(band, fakeWord = "fake") {
  const kind = band === "real" ? "ok" : band === "uncertain" ? "warn" : "bad";
  const mark = band === "real" ? "✓" : band === "uncertain" ? "?" : "✗";
  return el("span", { class: `badge ${kind}`, dataset: { band } }, `${mark} ${band === fakeWord ? fakeWord.replace("_", " ") : band}`);
}

const fmt = (v, digits = 3) => (v === null || v === undefined || Number.isNaN(Number(v)) ? "—" : Number(v).toFixed(digits));

/** Object URLs of this view, revoked when it goes away or a result is replaced. */
function urlKeeper() {
  const groups = new Map();
  return {
    async load(api, group, path) {
      const url = await api.objectUrl(path);
      if (!groups.has(group)) groups.set(group, []);
      groups.get(group).push(url);
      return url;
    },
    drop(group) {
      (groups.get(group) || []).forEach((u) => URL.revokeObjectURL(u));
      groups.delete(group);
    },
    dropAll() {
      [...groups.keys()].forEach((g) => this.drop(g));
    },
  };
}

// ---------------------------------------------------------------- deepfake: image

function deepfakeImageCard(api, signal) {
  const file = field("Image", "file", { name: "image", accept: "image/*", required: true });
  const level = field("Detection level", "select", { name: "detection_level", value: "standard" }, LEVELS);
  const heatmap = field("Return the heatmap", "checkbox", { name: "return_heatmap", checked: true });
  const status = el("div", { class: "status" });
  const result = el("div", { class: "deepfake-image-result", "aria-live": "polite" });
  const form = el("form", { class: "stack" }, file, level, heatmap, el("button", { type: "submit" }, "Analyse image"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const image = file.control.files[0];
    if (!image) return;
    busy(form, status, async () => {
      replace(status, el("p", { role: "status" }, "Analysing…"));
      const answer = await api.post("/api/v1/deepfake-detection/analyze", {
        form: { image, detection_level: level.control.value, return_heatmap: heatmap.control.checked },
        signal,
      });
      clear(status);
      renderDeepfakeImage(result, answer);
    });
  });
  return section("Deepfake — image", form, status, result);
}

/** Why a verdict is "uncertain", in words, with the answer's thresholds when it carries them. */
function uncertainWhy(answer) {
  if (answer.band !== "uncertain") return null;
  const t = answer.thresholds || {};
  const score = Number(answer.manipulation_score);
  const low = t.real_below;
  const high = t.fake_threshold;
  const edges = low !== undefined && high !== undefined;
  let text;
  if (edges && score >= low && score < high) {
    text = `Uncertain: the manipulation score ${fmt(score)} lies between the thresholds — below ${fmt(low)} counts as real, ${fmt(high)} or more as fake — so the detector does not decide either way.`;
  } else if (edges && score < low) {
    text = `Uncertain: the score ${fmt(score)} is under the real threshold (${fmt(low)}), but at this detection level the signals are not trusted to clear a face on their own (see the face's reasons); try the “advanced” level.`;
  } else {
    text = `Uncertain: the score ${fmt(score)} is neither clearly real nor clearly fake${edges ? ` (real below ${fmt(low)}, fake from ${fmt(high)})` : ""}.`;
  }
  return el("p", { class: "alert warn deepfake-uncertain", role: "note" }, text);
}

function renderDeepfakeImage(node, answer) {
  const faces = answer.faces || [];
  if (answer.reason === "no_face" || (answer.faces_analyzed === 0 && faces.length === 0)) {
    // Nothing to judge: no band, no 0.000 score bar, no empty heatmap.
    replace(
      node,
      el("p", { class: "verdict deepfake-no-face", role: "status", dataset: { reason: "no_face" } }, "No face found — nothing to judge"),
      el("p", { class: "muted" }, "Deepfake detection looks for manipulated faces; this image shows none, so it says nothing about it. For a whole image made by a generator, use “AI-generated image” below."),
      facts([
        ["Faces analysed", "0"],
        ["Model", answer.model_version],
        ["Analysis id", answer.analysis_id],
      ]),
      rawJson({ ...answer, heatmap_png_base64: answer.heatmap_png_base64 ? "(base64 PNG)" : null }),
    );
    return;
  }
  const thresholds = answer.thresholds || {};
  replace(
    node,
    el("p", { class: "verdict" }, bandBadge(answer.band), " ", answer.is_deepfake ? "Judged a deepfake" : answer.band === "uncertain" ? "Undecided" : "Not judged a deepfake"),
    uncertainWhy(answer),
    facts([
      ["Band", answer.band],
      ["Manipulation score", fmt(answer.manipulation_score)],
      ["Confidence in the band", fmt(answer.confidence_score)],
      ["Manipulation types", (answer.manipulation_types || []).join(", ") || "—"],
      ["Faces analysed", String(answer.faces_analyzed ?? faces.length)],
      ["Reason", answer.reason],
      ["Thresholds", thresholds.real_below !== undefined && thresholds.fake_threshold !== undefined
        ? `real below ${fmt(thresholds.real_below)}, fake from ${fmt(thresholds.fake_threshold)}` : null],
      ["Known fake match", answer.known_fake_match ? JSON.stringify(answer.known_fake_match) : null],
      ["Model", answer.model_version],
      ["Analysis id", answer.analysis_id],
    ]),
    scoreBar("manipulation score", answer.manipulation_score),
    faces.map((face, i) =>
      el(
        "div",
        { class: "deepfake-face stack" },
        el("h3", {}, `Face ${i + 1}: `, bandBadge(face.band), ` score ${fmt(face.score)}`),
        el(
          "div",
          { class: "stack deepfake-signals" },
          scoreBar("face score", face.score),
          Object.entries(face.signals || {}).map(([name, s]) =>
            scoreBar(`${name} (suspicion; raw ${fmt(s.raw, 4)}, weight ${s.weight ?? "—"})`, s.suspicion),
          ),
        ),
        (face.reasons || []).length ? el("p", {}, "Reasons: ", face.reasons.join("; ")) : null,
        (face.notes || []).map((n) => el("p", { class: "muted" }, n)),
      ),
    ),
    table(
      [
        ["Reason", (a) => a.reason || a.kind || "—"],
        ["Score", (a) => fmt(a.score)],
        ["Box (x, y, w, h)", (a) => [a.x, a.y, a.width, a.height].map((v) => Math.round(v ?? 0)).join(", ")],
      ],
      answer.inconsistency_areas || [],
      { caption: "Inconsistency areas", empty: "No inconsistency area was marked." },
    ),
    answer.heatmap_png_base64 && faces.length
      ? el("figure", {}, el("img", {
        class: "media deepfake-heatmap",
        src: `data:image/png;base64,${answer.heatmap_png_base64}`,
        alt: `Inconsistency heatmap over the image (${faces.length} face${faces.length === 1 ? "" : "s"} analysed)`,
      }), el("figcaption", { class: "muted" }, "Inconsistency heatmap (brighter: more suspicious)"))
      : null,
    rawJson({ ...answer, heatmap_png_base64: answer.heatmap_png_base64 ? "(base64 PNG)" : null }),
  );
}

// ---------------------------------------------------------------- deepfake: video

function frameScore(frame) {
  const scores = (frame.faces || []).map((f) => Number(f.score)).filter((v) => !Number.isNaN(v));
  return scores.length ? Math.max(...scores) : null;
}

function drawFrameChart(canvas, frames) {
  const width = 640;
  const height = 200;
  canvas.width = width;
  canvas.height = height;
  const g = canvas.getContext("2d");
  const style = getComputedStyle(document.documentElement);
  const ink = style.getPropertyValue("--fg").trim() || "#222";
  const accent = style.getPropertyValue("--accent").trim() || "#2563eb";
  const bad = style.getPropertyValue("--bad").trim() || "#b91c1c";
  g.clearRect(0, 0, width, height);
  const left = 36;
  const bottom = height - 24;
  const top = 10;
  const right = width - 10;
  const tMax = Math.max(1, ...frames.map((f) => f.timestamp_ms || 0));
  const x = (t) => left + ((right - left) * t) / tMax;
  const y = (v) => bottom - (bottom - top) * v;
  g.strokeStyle = ink;
  g.fillStyle = ink;
  g.font = "11px sans-serif";
  g.beginPath();
  g.moveTo(left, top);
  g.lineTo(left, bottom);
  g.lineTo(right, bottom);
  g.stroke();
  [0, 0.35, 0.65, 1].forEach((v) => g.fillText(v.toFixed(2), 2, y(v) + 4));
  g.fillText(`${(tMax / 1000).toFixed(1)} s`, right - 30, height - 6);
  g.fillText("0 s", left, height - 6);
  // The band edges (real below 0.35, fake from 0.65), dashed.
  g.setLineDash([4, 4]);
  g.strokeStyle = bad;
  g.beginPath();
  g.moveTo(left, y(0.65));
  g.lineTo(right, y(0.65));
  g.stroke();
  g.setLineDash([]);
  g.strokeStyle = accent;
  g.fillStyle = accent;
  g.lineWidth = 2;
  g.beginPath();
  let drawing = false;
  for (const f of frames) {
    const v = frameScore(f);
    if (v === null) {
      drawing = false;
      continue;
    }
    if (drawing) g.lineTo(x(f.timestamp_ms || 0), y(v));
    else g.moveTo(x(f.timestamp_ms || 0), y(v));
    drawing = true;
  }
  g.stroke();
  for (const f of frames) {
    const v = frameScore(f);
    if (v !== null) g.fillRect(x(f.timestamp_ms || 0) - 2, y(v) - 2, 4, 4);
  }
}

function deepfakeVideoCard(api, signal) {
  const file = field("Video", "file", { name: "video", accept: "video/*", required: true });
  const level = field("Detection level", "select", { name: "detection_level", value: "standard" }, LEVELS);
  const priority = field("Priority (1–10)", "number", { name: "priority", min: "1", max: "10", step: "1", value: "5" });
  const fps = field("Frames per second analysed (blank: server default)", "number", { name: "sample_fps", min: "0.1", max: "10", step: "0.1" });
  const status = el("div", { class: "status" });
  const bar = progress("Video analysis");
  bar.classList.add("deepfake-video-progress");
  bar.hidden = true;
  const result = el("div", { class: "deepfake-video-result", "aria-live": "polite" });
  const form = el("form", { class: "stack" }, file, level, el("div", { class: "grid two" }, priority, fps), el("button", { type: "submit" }, "Analyse video"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const video = file.control.files[0];
    if (!video) return;
    let queuedId = null;
    busy(form, status, async () => {
      clear(result);
      bar.hidden = false;
      bar.set(0, "uploading");
      const queued = await api.post("/api/v1/deepfake-detection/analyze-video", {
        form: { video, detection_level: level.control.value, priority: priority.control.value, sample_fps: fps.control.value },
        signal,
      });
      queuedId = queued.analysis_id;
      result.dataset.analysisId = queued.analysis_id;
      bar.set(0, queued.status);
      await followVideo(api, signal, queued.analysis_id, bar, result, status);
    }).then(() => {
      // The upload was refused: no job, so no progress to show (the alert says why).
      if (!queuedId) bar.hidden = true;
    });
  });
  return { card: section("Deepfake — video (a job)", form, status, bar, result), open: (id) => {
    bar.hidden = false;
    result.dataset.analysisId = id;
    busy(null, status, () => followVideo(api, signal, id, bar, result, status));
  } };
}

async function followVideo(api, signal, id, bar, result, status) {
  const path = `/api/v1/deepfake-detection/analyses/${encodeURIComponent(id)}`;
  const last = await poll(() => api.get(path, { frames_limit: 0 }, { signal }), {
    done: (a) => DONE.has(a.status),
    onUpdate: (a) => bar.set(a.progress_percentage ?? 0, a.status),
    interval: 1000,
    signal,
  });
  if (last.status !== "completed") {
    bar.set(last.progress_percentage ?? 0, last.status);
    showError(status, last.error || { code: `ANALYSIS_${last.status.toUpperCase()}`, message: last.reason || `The analysis ended ${last.status}.` });
    return;
  }
  const full = await api.get(path, { frames_limit: 1000 }, { signal });
  bar.set(100, "completed");
  renderVideo(result, full);
}

function renderVideo(node, a) {
  const frames = a.frame_analyses?.items || [];
  const canvas = el("canvas", { class: "media frame-chart", role: "img" });
  const scored = frames.map(frameScore).filter((v) => v !== null);
  const peak = scored.length ? Math.max(...scored) : null;
  canvas.setAttribute(
    "aria-label",
    `Chart of the highest face manipulation score in each of ${frames.length} analysed frames` +
      (peak !== null ? `; peak ${peak.toFixed(3)}` : "; no face was found") + `. The same numbers are in the table below.`,
  );
  replace(
    node,
    el("p", { class: "verdict" }, bandBadge(a.band), " ", a.is_deepfake ? "Judged a deepfake" : a.band === "uncertain" ? "Undecided" : "Not judged a deepfake"),
    uncertainWhy(a),
    facts([
      ["Band", a.band],
      ["Manipulation score", fmt(a.manipulation_score)],
      ["Confidence in the band", fmt(a.confidence_score)],
      ["Manipulation types", (a.manipulation_types || []).join(", ") || "—"],
      ["Frames analysed", `${a.analyzed_frames ?? frames.length} of ${a.total_frames ?? "?"}`],
      ["Frames judged fake", String(a.deepfake_frame_count ?? 0)],
      ["Consistency score", fmt(a.consistency_score)],
      ["Persons (face tracks)", String((a.persons || []).length)],
      ["Reason", a.reason],
      ["Processing time", a.processing_time_ms !== undefined ? `${a.processing_time_ms} ms` : null],
      ["Model", a.model_version],
      ["Analysis id", a.analysis_id],
    ]),
    el("h3", {}, "Per-frame scores"),
    canvas,
    table(
      [
        ["Person", (p) => `track ${p.track_id}${p.deciding ? " (deciding)" : ""}`],
        ["Band", (p) => p.band],
        ["Score", (p) => fmt(p.score)],
        ["Frames", (p) => String(p.frames)],
        ["Seen (s)", (p) => `${fmt((p.first_ms || 0) / 1000, 1)}–${fmt((p.last_ms || 0) / 1000, 1)}`],
      ],
      a.persons || [],
      { caption: "Persons", empty: "No face was tracked." },
    ),
    el(
      "details",
      {},
      el("summary", {}, `Per-frame table (${frames.length} frames)`),
      table(
        [
          ["Frame", (f) => String(f.frame_number)],
          ["Time (s)", (f) => fmt((f.timestamp_ms || 0) / 1000, 2)],
          ["Faces", (f) => String(f.face_count ?? (f.faces || []).length)],
          ["Highest face score", (f) => fmt(frameScore(f))],
          ["Deepfake?", (f) => (f.is_deepfake ? "yes" : "no")],
        ],
        frames,
        { caption: "Frames", empty: "No frame was analysed." },
      ),
    ),
    rawJson({ ...a, frame_analyses: { ...a.frame_analyses, items: `(${frames.length} items, in the table)` } }),
  );
  drawFrameChart(canvas, frames);
}

// ---------------------------------------------------------------- AI-generated images

function aiCard(api, signal, urls, onAnalysed) {
  const file = field("Image", "file", { name: "image", accept: "image/*", required: true });
  const methodsBox = el("div", { class: "ai-method-choice" }, el("p", { class: "muted" }, "Loading methods…"));
  const asJob = field("Analyse as a job (async)", "checkbox", { name: "async" });
  const status = el("div", { class: "status" });
  const bar = progress("AI-image analysis job");
  bar.hidden = true;
  const result = el("div", { class: "ai-result", "aria-live": "polite" });
  let catalogue = [];
  let boxes = [];
  const form = el(
    "form",
    { class: "stack" },
    file,
    el("fieldset", { class: "ai-methods-set" }, el("legend", {}, "Methods"), methodsBox),
    asJob,
    el("button", { type: "submit" }, "Analyse"),
  );
  const ready = api
    .get("/api/v1/ai-detection/methods", {}, { signal })
    .then((answer) => {
      catalogue = answer.methods || [];
      boxes = catalogue.map((m) => {
        const box = field(`${m.method_name}${m.available ? "" : " (not installed)"}`, "checkbox", {
          name: "methods",
          value: m.method_name,
          checked: m.is_active && m.available,
          disabled: !m.available,
          "data-hint": `${m.description} (weight ${m.weight})`,
        });
        return box;
      });
      replace(methodsBox, boxes);
    })
    .catch((error) => {
      if (error.name !== "AbortError") showError(methodsBox, error);
    });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const image = file.control.files[0];
    if (!image) return;
    busy(form, status, async () => {
      await ready;
      const chosen = boxes.filter((b) => b.control.checked).map((b) => b.control.value);
      const all = boxes.filter((b) => !b.control.disabled).every((b) => b.control.checked);
      replace(status, el("p", { role: "status" }, "Analysing…"));
      const response = await api.post("/api/v1/ai-detection/analyze", {
        form: { image, methods: all ? undefined : chosen.join(","), async: asJob.control.checked ? "true" : undefined },
        signal,
        as: "response",
      });
      let report = await response.json();
      if (response.status === 202) {
        bar.hidden = false;
        bar.set(0, report.status || "pending");
        report = await poll(() => api.get(`/api/v1/ai-detection/results/${encodeURIComponent(report.result_id)}`, {}, { signal }), {
          done: (r) => DONE.has(r.status),
          onUpdate: (r) => bar.set(r.progress_percentage ?? (r.status === "completed" ? 100 : 0), r.status),
          interval: 1000,
          signal,
        });
        bar.set(report.status === "completed" ? 100 : report.progress_percentage ?? 0, report.status);
      }
      clear(status);
      await renderAi(result, report, catalogue, api, urls);
      onAnalysed();
    });
  });
  return {
    card: section("AI-generated image (SkyGate)", form, status, bar, result),
    open: (id) =>
      busy(null, status, async () => {
        await ready;
        const report = await api.get(`/api/v1/ai-detection/results/${encodeURIComponent(id)}`, {}, { signal });
        await renderAi(result, report, catalogue, api, urls);
        result.scrollIntoView?.({ block: "start" });
      }),
    clearIf: (id) => {
      if (result.dataset.resultId === id) {
        urls.drop("ai");
        replace(result, el("p", { class: "muted" }, "That analysis was deleted."));
        delete result.dataset.resultId;
      }
    },
  };
}

async function renderAi(node, r, catalogue, api, urls) {
  urls.drop("ai");
  node.dataset.resultId = r.result_id;
  if (r.status && r.status !== "completed") {
    replace(node, el("p", {}, `Status: ${r.status}`), r.error ? el("p", {}, `${r.error.code || ""} ${r.error.message || ""}`) : null, rawJson(r));
    return;
  }
  const describe = Object.fromEntries(catalogue.map((m) => [m.method_name, m.description]));
  const methods = r.methods || [];
  const figure = (cls, path, alt, caption) =>
    path ? el("figure", { class: "ai-figure" }, el("img", { class: `media ${cls}`, alt }), el("figcaption", { class: "muted" }, caption)) : null;
  const elaFig = figure("ai-ela", r.ela_url, "Error-level analysis of the image (bright: parts that change most on re-compression)", "ELA");
  const heatFig = figure("ai-heatmap", r.visual_anomalies?.heatmap_url, `Visual-anomaly heatmap (${(r.visual_anomalies?.detected_anomalies || []).length} anomalies marked)`, "Anomaly heatmap");
  const thumbFig = figure("ai-thumbnail", r.thumbnail_url, `Thumbnail of ${r.original_file_name || "the upload"}`, "Thumbnail");
  replace(
    node,
    el("p", { class: "verdict" }, bandBadge(r.band, "ai_generated"), " ", r.is_ai_generated ? "Judged AI-generated" : "Not judged AI-generated"),
    r.result_summary ? el("p", {}, r.result_summary) : null,
    facts([
      ["Band", r.band],
      ["Score", fmt(r.confidence_score, 4)],
      ["Decided by", r.decided_by],
      ["Thresholds", r.thresholds ? `AI from ${r.thresholds.ai_threshold}, real below ${r.thresholds.real_below}` : null],
      ["File", r.original_file_name ? `${r.original_file_name} (${r.file_type}, ${r.file_size} bytes)` : null],
      ["Dimensions", r.file_info?.dimensions ? `${r.file_info.dimensions.width} × ${r.file_info.dimensions.height}` : null],
      ["Compression", r.file_info?.compression],
      ["Algorithm", r.algorithm_version],
      ["Processing time", r.processing_time_ms !== undefined ? `${r.processing_time_ms} ms` : null],
      ["Result id", r.result_id],
    ]),
    el("h3", {}, "Methods"),
    el(
      "ul",
      { class: "ai-methods" },
      methods.map((m) =>
        el(
          "li",
          { class: "ai-method", dataset: { method: m.method } },
          m.score === null || m.score === undefined
            ? el("div", { class: "score" }, el("span", { class: "score-label" }, m.method), el("span", { class: "score-track", "aria-hidden": "true" }), el("span", { class: "score-value" }, "n/a"))
            : scoreBar(m.method, m.score),
          el(
            "p",
            { class: "muted ai-method-note" },
            describe[m.method] || "",
            ` — ${m.in_ensemble ? `in the ensemble, weight ${m.weight}` : "not in the weighted mean"}; confidence ${fmt(m.confidence)}; ${m.version || ""}`,
            m.score === null || m.score === undefined ? " (no score: nothing to judge by)" : "",
          ),
        ),
      ),
    ),
    table(
      [
        ["Factor", (f) => f.factor],
        ["Weight", (f) => String(f.weight)],
        ["Score", (f) => fmt(f.score, 4)],
        ["Contribution", (f) => fmt(f.contribution, 4)],
      ],
      r.contributing_factors || [],
      { caption: "Contributing factors", empty: "No contributing factor." },
    ),
    el("div", { class: "grid three ai-images" }, elaFig, heatFig, thumbFig),
    table(
      [
        ["Anomaly", (a) => a.type],
        ["Confidence", (a) => fmt(a.confidence)],
        ["Box (x, y, w, h)", (a) => (a.bounding_box ? [a.bounding_box.x, a.bounding_box.y, a.bounding_box.width, a.bounding_box.height].join(", ") : "—")],
        ["Description", (a) => a.description || ""],
      ],
      r.visual_anomalies?.detected_anomalies || [],
      { caption: "Visual anomalies", empty: "No visual anomaly was marked." },
    ),
    rawJson(r),
  );
  const load = async (fig, path) => {
    if (!fig) return;
    try {
      fig.querySelector("img").src = await urls.load(api, "ai", path);
    } catch (error) {
      replace(fig, el("p", { class: "muted" }, `${error.code || "ERROR"}: ${error.message}`));
    }
  };
  await Promise.all([load(elaFig, r.ela_url), load(heatFig, r.visual_anomalies?.heatmap_url), load(thumbFig, r.thumbnail_url)]);
}

function historyCard(api, signal, ai) {
  const status = el("div", { class: "status" });
  const list = el("div", { class: "ai-history" });
  const pageInfo = el("span", { class: "muted" });
  const prev = el("button", { type: "button", class: "secondary" }, "Previous page");
  const next = el("button", { type: "button", class: "secondary" }, "Next page");
  const refresh = el("button", { type: "button", class: "secondary" }, "Refresh");
  const pageSize = 10;
  let page = 1;
  async function load() {
    const answer = await api.get("/api/v1/ai-detection/uploads", { page, page_size: pageSize }, { signal });
    const pages = Math.max(1, Math.ceil((answer.total || 0) / pageSize));
    pageInfo.textContent = `Page ${page} of ${pages} (${answer.total} analyses)`;
    prev.disabled = page <= 1;
    next.disabled = page >= pages;
    replace(
      list,
      table(
        [
          ["File", (u) => u.original_file_name || "—"],
          ["Uploaded", (u) => when(u.upload_date)],
          ["Status", (u) => u.status],
          ["Band", (u) => (u.band ? bandBadge(u.band, "ai_generated") : "—")],
          ["Score", (u) => fmt(u.confidence_score, 4)],
          [
            "Actions",
            (u) =>
              el(
                "div",
                { class: "row" },
                el("button", { type: "button", class: "secondary", "aria-label": `Open ${u.original_file_name || u.result_id}`, onclick: () => ai.open(u.result_id) }, "Open"),
                el(
                  "button",
                  {
                    type: "button",
                    class: "danger",
                    "aria-label": `Delete ${u.original_file_name || u.result_id}`,
                    onclick: (event) => {
                      if (!confirm(`Delete the analysis of ${u.original_file_name || u.result_id}?`)) return;
                      event.target.disabled = true;
                      busy(null, status, async () => {
                        await api.del(`/api/v1/ai-detection/results/${encodeURIComponent(u.result_id)}`, { signal });
                        ai.clearIf(u.result_id);
                        await load();
                      }).finally(() => (event.target.disabled = false));
                    },
                  },
                  "Delete",
                ),
              ),
          ],
        ],
        answer.items || [],
        { caption: "Past AI-image analyses (newest first)", empty: "No analysis yet." },
      ),
    );
  }
  const reload = () => busy(null, status, load);
  prev.addEventListener("click", () => {
    page = Math.max(1, page - 1);
    reload();
  });
  next.addEventListener("click", () => {
    page += 1;
    reload();
  });
  refresh.addEventListener("click", reload);
  reload();
  return { card: section("Past AI-image analyses", status, list, el("div", { class: "row" }, prev, pageInfo, next, refresh)), reload };
}

export default {
  path: "forensics",
  title: "Forensics",
  render(root, { api, signal }) {
    const urls = urlKeeper();
    let history = null;
    const ai = aiCard(api, signal, urls, () => history?.reload());
    history = historyCard(api, signal, ai);
    const video = deepfakeVideoCard(api, signal);
    root.append(
      el("p", { class: "muted" }, "Scores are “how suspicious” (0–1), not probabilities; the band is the verdict."),
      el("div", { class: "grid two forensics" }, deepfakeImageCard(api, signal), video.card),
      ai.card,
      history.card,
    );
    // A link from the Jobs view: #/forensics?analysis=<id> or ?result=<id>.
    const query = new URLSearchParams(location.hash.split("?")[1] || "");
    if (query.get("analysis")) video.open(query.get("analysis"));
    if (query.get("result")) ai.open(query.get("result"));
    return () => urls.dropAll();
  },
};
