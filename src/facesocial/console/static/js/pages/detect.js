// Detect: find faces in a photo (POST /api/v1/face-detection/detect) and show them drawn on the
// photo and as a table — box, confidence, quality, pose, attributes — plus which model made what.
// Optionally the Demographics analysis of the same photo (POST /api/v1/demographics/analyze).
import { el, field, section, table, facts, busy, replace, clear, rawJson } from "../ui.js";
import { faceCanvas, facesLabel, decodeImage, dropZone, modelPairs, fixed, colourOf } from "./detect-canvas.js";

const LANDMARKS = [
  ["5", "5 named points"],
  ["68", "68 points"],
  ["468", "468-point mesh (and head pose)"],
];

export default {
  path: "detect",
  title: "Detect",
  render(root, { signal, api }) {
    const urls = [];

    const image = field("Image", "file", { name: "image", accept: "image/*", required: true });
    const zone = dropZone(image.control);
    const landmarks = field("Landmarks", "select", { name: "landmarks", value: "5" }, LANDMARKS);
    const attributes = field("Return attributes (age, gender, emotion)", "checkbox", { name: "return_attributes" });
    const demographics = field("Also run the Demographics analysis", "checkbox", {
      name: "demographics",
      "data-hint": "A second call, /api/v1/demographics/analyze, on the same photo.",
    });
    const minFace = field("Minimum face size (px)", "number", { name: "min_face_size", value: "40", min: "1", step: "1" });
    const confidence = field("Detection confidence", "number", {
      name: "detection_confidence",
      value: "0.5",
      min: "0.2",
      max: "1",
      step: "0.05",
    });
    const status = el("div", { class: "status", "aria-live": "polite" });
    const results = el("div", { class: "detect-results" });
    const form = el(
      "form",
      { class: "stack", "aria-label": "Detect faces" },
      image,
      zone,
      el("div", { class: "row" }, landmarks, minFace, confidence),
      attributes,
      demographics,
      el("button", { type: "submit" }, "Detect faces"),
    );

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const file = image.control.files?.[0];
      if (!file) {
        replace(status, el("div", { class: "alert error", role: "alert" }, el("strong", {}, "NO_IMAGE"), " Choose an image first."));
        image.control.focus();
        return;
      }
      clear(results);
      busy(form, status, async () => {
        replace(status, el("p", { role: "status" }, "Detecting…"));
        const wanted = landmarks.control.value;
        const answer = await api.post("/api/v1/face-detection/detect", {
          signal,
          form: {
            image: file,
            landmarks: wanted,
            return_landmarks: true,
            return_attributes: attributes.control.checked,
            min_face_size: minFace.control.value,
            detection_confidence: confidence.control.value,
          },
        });
        let extra = null;
        if (demographics.control.checked) {
          // Its failure is shown with its own code, below the detection (which still stands).
          extra = await api
            .post("/api/v1/demographics/analyze", { signal, form: { image: file } })
            .catch((error) => {
              if (error.name === "AbortError") throw error;
              return { error };
            });
        }
        let picture;
        try {
          picture = await decodeImage(file, urls);
        } catch (error) {
          picture = null;
        }
        clear(status);
        show(results, answer, picture, wanted, extra);
        replace(status, el("p", { role: "status" }, `${facesLabel(answer.faces.length)}.`));
      });
    });

    root.classList.add("detect-view");
    root.append(
      el(
        "div",
        { class: "grid two detect-layout" },
        section("Photo and options", form, status),
        section("How it works", el("p", {}, "The photo is sent to ", el("code", {}, "POST /api/v1/face-detection/detect"),
          ". Every face gets a numbered box on the picture and a row with the same number in the table below. ",
          "The 68-point and 468-point options add those landmarks (the mesh also gives head pose and eye state); ",
          "attributes add age, gender and emotion."), el("p", { class: "muted" }, "Nothing is stored by detection.")),
      ),
      results,
    );
    return () => urls.forEach((u) => URL.revokeObjectURL(u));
  },
};

function show(node, answer, picture, wanted, demographics) {
  const faces = answer.faces || [];
  const canvas = picture
    ? faceCanvas(picture, faces, {
        size: answer.image,
        caption: `${facesLabel(faces.length)} — ${answer.image.width}×${answer.image.height} px, ${answer.processing_time_ms} ms`,
      })
    : el("p", { class: "alert warn" }, "This browser cannot draw this image format; the results are in the table.");
  const anyMesh = faces.some((f) => f.mesh);
  const anyAttributes = faces.some((f) => f.attributes);
  const columns = [
    ["Face", (f) => el("span", { class: "face-number", style: { borderColor: colourOf(f._i) } }, `#${f._i + 1}`)],
    ["Confidence", (f) => fixed(f.confidence, 3)],
    ["Box (x, y, w × h)", (f) => `${f.bbox.x}, ${f.bbox.y}, ${f.bbox.width} × ${f.bbox.height}`],
    ["Quality", (f) => quality(f.quality)],
    ["Pose", (f) => pose(f)],
    ["Landmarks", (f) => landmarkText(f)],
  ];
  if (anyAttributes) columns.push(["Attributes", (f) => attributeText(f.attributes)]);
  if (anyMesh) columns.push(["Eyes", (f) => eyes(f.mesh)]);
  const rows = faces.map((f, i) => ({ ...f, _i: i }));
  replace(
    node,
    section(
      "Result",
      el("div", { class: "grid two" },
        el("div", {}, canvas),
        el("div", { class: "stack" },
          el("p", { class: "detect-count" }, el("strong", {}, facesLabel(faces.length)), ` (landmarks: ${wanted}).`),
          el("h3", {}, "Models (which model made each part)"),
          facts([...modelPairs(answer.model), ["served by", answer.serving?.version], ["request", answer.request_id]]),
        ),
      ),
      table(columns, rows, { caption: "Faces (numbers match the picture)", empty: "No face was found in this photo." }),
      demographics ? demographicsTable(demographics) : null,
      rawJson(trimmed(answer)),
    ),
  );
}

function quality(q) {
  if (!q) return "—";
  return el("span", {}, el("strong", {}, fixed(q.score, 2)),
    el("small", { class: "muted block" }, `size ${fixed(q.size)}, sharpness ${fixed(q.sharpness)}, brightness ${fixed(q.brightness)}, frontal ${fixed(q.frontalness)}`));
}

function pose(face) {
  if (face.mesh) return `yaw ${fixed(face.mesh.yaw, 1)}°, pitch ${fixed(face.mesh.pitch, 1)}°, roll ${fixed(face.mesh.roll, 1)}°`;
  if (face.roll !== null && face.roll !== undefined) return `roll ${fixed(face.roll, 1)}° (yaw/pitch need the 468-point mesh)`;
  return "—";
}

function landmarkText(face) {
  const parts = [];
  if (face.landmarks?.length) {
    parts.push(el("details", {}, el("summary", {}, `${face.landmarks.length} named points`),
      el("ul", { class: "plain" }, face.landmarks.map((p) => el("li", {}, `${p.name.replace(/_/g, " ")}: ${Math.round(p.x)}, ${Math.round(p.y)}`)))));
  }
  if (face.landmarks_68) parts.push(el("div", {}, `${face.landmarks_68.length} points (68-point scheme)`));
  if (face.mesh?.landmarks) parts.push(el("div", {}, `${face.mesh.landmarks.length}-point mesh`));
  return parts.length ? parts : "—";
}

function attributeText(a) {
  if (!a) return "—";
  return el("ul", { class: "plain" },
    el("li", { class: "attr-age" }, `Age ${fixed(a.estimated_age, 0)} (range ${a.age_range.min}–${a.age_range.max}, ${a.age_group.replace(/_/g, " ")})`),
    el("li", {}, `Gender ${a.gender} (${fixed(a.gender_confidence, 2)})`),
    el("li", {}, `Emotion ${a.emotion} (${fixed(a.emotion_confidence, 2)})`),
  );
}

function eyes(mesh) {
  if (!mesh) return "—";
  const open = mesh.eye_openness || {};
  return `open L ${fixed(open.left)} / R ${fixed(open.right)}${mesh.blink ? ", blinking" : ""}; gaze ${fixed(mesh.gaze?.horizontal)}, ${fixed(mesh.gaze?.vertical)}`;
}

function demographicsTable(answer) {
  if (answer.error) {
    return el("div", { class: "alert error", role: "alert" }, el("strong", {}, answer.error.code || "ERROR"), " Demographics: ", answer.error.message);
  }
  const rows = (answer.faces || []).map((f, i) => ({ ...f, _i: i }));
  return el("div", { class: "stack" },
    el("h3", {}, "Demographics analysis"),
    table(
      [
        ["Face", (f) => `#${f._i + 1}`],
        ["Box", (f) => `${f.bbox.x}, ${f.bbox.y}, ${f.bbox.width} × ${f.bbox.height}`],
        ["Age", (f) => `${fixed(f.estimated_age, 0)} (${f.age_range.min}–${f.age_range.max})`],
        ["Gender", (f) => `${f.gender} (${fixed(f.gender_confidence)})`],
        ["Emotion", (f) => `${f.emotion} (${fixed(f.emotion_confidence)})`],
      ],
      rows,
      { caption: "Demographics (its own detection: numbers follow its face order)", empty: "No face found." },
    ),
    facts(modelPairs(answer.models)),
  );
}

/** The answer without its 468×3 mesh arrays (the raw view stays readable). */
function trimmed(answer) {
  return {
    ...answer,
    faces: (answer.faces || []).map((f) => ({
      ...f,
      landmarks_68: f.landmarks_68 ? `[${f.landmarks_68.length} points]` : undefined,
      mesh: f.mesh ? { ...f.mesh, landmarks: `[${f.mesh.landmarks?.length} points]` } : undefined,
    })),
  };
}
