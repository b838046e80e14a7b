// Liveness: a passive check of one uploaded photo, and an active session with the webcam
// (challenges, frames over the session's WebSocket, the server's instructions and progress).
import { el, field, section, replace, clear, showError, busy, progress, scoreBar, facts, table, rawJson, when } from "../ui.js";
import { LIVENESS_HANDOFF } from "./recognition.js";

const CHALLENGES = [
  ["turn_left", "Turn left"],
  ["turn_right", "Turn right"],
  ["look_up", "Look up"],
  ["nod", "Nod"],
  ["blink", "Blink"],
  ["smile", "Smile"],
  ["open_mouth", "Open mouth"],
];
const LABELS = Object.fromEntries(CHALLENGES);
// ~9 frames a second, at most this many frames sent and not yet answered.
const FRAME_INTERVAL_MS = 110;
const MAX_IN_FLIGHT = 2;
const MAX_FRAME_WIDTH = 640;
const STATUS_WORDS = { completed: "Completed", failed: "Failed", expired: "Expired", cancelled: "Cancelled" };
/** Milliseconds from the session's clock, rounded for people ("—" when absent). */
const ms = (value) => (value === null || value === undefined || Number.isNaN(Number(value)) ? "—" : String(Math.round(Number(value))));

function badge(ok, yes, no) {
  return el("span", { class: `badge ${ok ? "ok" : "bad"}` }, ok ? `✓ ${yes}` : `✗ ${no}`);
}

function passiveCard(api, signal) {
  const file = field("Photo with a face", "file", { name: "image", accept: "image/*", required: true });
  const faceIndex = field("Face index (0 = largest)", "number", { name: "face_index", min: "0", step: "1", value: "0" });
  const status = el("div", { class: "status", "aria-live": "polite" });
  const result = el("div", { class: "passive-result", "aria-live": "polite" });
  const form = el("form", { class: "stack" }, file, faceIndex, el("button", { type: "submit" }, "Check"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const image = file.control.files[0];
    if (!image) return;
    busy(form, status, async () => {
      replace(status, el("p", { role: "status" }, "Checking…"));
      const answer = await api.post("/api/v1/antispoofing/check", {
        form: { image, face_index: faceIndex.control.value },
        signal,
      });
      clear(status);
      renderPassive(result, answer);
    });
  });
  return section("Passive check (one photo)", el("p", { class: "muted" }, "Is the face in this photo a live person, or a photo / screen of one?"), form, status, result);
}

function renderPassive(node, answer) {
  const details = answer.analysis_details || {};
  const scores = details.scores || {};
  const signals = details.signals || {};
  replace(
    node,
    el(
      "p",
      { class: "verdict", dataset: { isLive: String(answer.is_live) } },
      badge(answer.is_live, "Live", "Spoof"),
      " ",
      el("span", { class: "passive-confidence" }, `confidence ${Number(answer.confidence_score).toFixed(4)}`),
    ),
    facts([
      ["Live", answer.is_live ? "yes" : "no"],
      ["Confidence", Number(answer.confidence_score).toFixed(4)],
      ["Spoof type", answer.spoof_type || "—"],
      ["Risk level", answer.risk_level],
      ["Threshold (P(live))", details.threshold !== undefined ? String(details.threshold) : null],
      ["Faces detected", details.faces_detected !== undefined ? String(details.faces_detected) : null],
      ["Model", answer.model_version],
      ["Check id", answer.check_id],
    ]),
    el("h3", {}, "Scores"),
    el("div", { class: "stack passive-scores" }, Object.entries(scores).map(([k, v]) => scoreBar(k, v))),
    Object.keys(signals).length ? el("h3", {}, "Signals") : null,
    el("div", { class: "stack passive-signals" }, Object.entries(signals).map(([k, v]) => scoreBar(k, v))),
    rawJson(answer),
  );
}

function activeCard(api, signal, registerCleanup) {
  const boxes = CHALLENGES.map(([value, label]) => field(label, "checkbox", { name: "challenge", value }));
  const timeout = field("Timeout (seconds, 5–120)", "number", { name: "timeout_seconds", min: "5", max: "120", step: "1", value: "30" });
  const attempts = field("Attempts (1–10)", "number", { name: "max_attempts", min: "1", max: "10", step: "1", value: "3" });
  const startButton = el("button", { type: "submit" }, "Start");
  const stopButton = el("button", { type: "button", class: "secondary", disabled: true }, "Stop");
  const form = el(
    "form",
    { class: "stack" },
    el(
      "fieldset",
      { class: "challenge-choice" },
      el("legend", {}, "Challenges (none ticked: the server chooses)"),
      el("div", { class: "challenge-boxes" }, boxes),
    ),
    el("div", { class: "grid two" }, timeout, attempts),
    el("div", { class: "row" }, startButton, stopButton),
  );
  const status = el("div", { class: "status" });
  const instruction = el("p", { class: "liveness-instruction", "aria-live": "assertive", role: "status" }, "Press Start and allow the camera.");
  const bar = progress("Challenges completed");
  const list = el("ol", { class: "challenge-list", "aria-label": "Challenges" });
  const video = el("video", { class: "liveness-video mirrored", autoplay: true, muted: true, playsinline: true, "aria-label": "Camera preview (mirrored)" });
  video.muted = true;
  const stage = el("div", { class: "stage", hidden: true }, video);
  const outcome = el("div", { class: "liveness-outcome", "aria-live": "polite" });
  const frameInfo = el("p", { class: "muted frame-info" });

  let run = null; // the current session's resources

  function stopRun() {
    if (!run) return;
    const r = run;
    run = null;
    clearInterval(r.timer);
    if (r.socket && r.socket.readyState <= 1) r.socket.close(1000);
    r.stream?.getTracks().forEach((t) => t.stop());
    video.srcObject = null;
    stage.hidden = true;
    stopButton.disabled = true;
    startButton.disabled = false;
    form.removeAttribute("aria-busy");
  }
  registerCleanup(stopRun);
  stopButton.addEventListener("click", () => {
    stopRun();
    instruction.textContent = "Stopped.";
  });

  function showState(state, token) {
    const challenges = state.challenges || [];
    const results = state.challenge_results || [];
    const done = (state.challenges_completed || []).length;
    const total = challenges.length || 1;
    bar.set((100 * done) / total, `${done} of ${challenges.length}`);
    replace(
      list,
      challenges.map((kind, i) => {
        const r = results[i];
        const s = r ? r.status : "waiting";
        const now = state.session_status === "active" && i === done;
        const mark = s === "passed" ? "✓" : s === "failed" ? "✗" : now ? "▶" : "·";
        return el(
          "li",
          { class: `challenge ${s}${now ? " current" : ""}`, dataset: { kind, status: s }, "aria-current": now ? "step" : null },
          `${mark} ${LABELS[kind] || kind} — ${s}${now ? " (now)" : ""}`,
        );
      }),
    );
    if (state.instruction?.instruction) instruction.textContent = state.instruction.instruction;
    if (state.session_status && state.session_status !== "active") {
      const ok = state.session_status === "completed";
      instruction.textContent = ok ? "Done: liveness confirmed." : `Liveness check ${state.session_status}.`;
      outcome.dataset.status = state.session_status;
      outcome.dataset.token = token;
      const reason = state.failure_reason ? String(state.failure_reason).replace(/_/g, " ") : null;
      const overall = ok ? "passed — a live person did the challenges" : `failed — ${reason || state.session_status}`;
      const useToken = ok && token
        ? el("button", {
          type: "button",
          class: "secondary use-for-enrolment",
          onclick: () => {
            // The token goes to Recognition through this tab's sessionStorage, not the URL.
            sessionStorage.setItem(LIVENESS_HANDOFF, token);
            location.hash = "#/recognition?enrol";
          },
        }, "Use for enrolment")
        : null;
      replace(
        outcome,
        el("p", { class: "verdict" },
          el("span", { class: `badge ${ok ? "ok" : "bad"}` }, ok ? "✓ " : "✗ ",
            el("span", { class: "session-status" }, state.session_status))),
        facts([
          ["Status", STATUS_WORDS[state.session_status] || state.session_status],
          ["Overall result", overall],
          ["Failure reason", ok ? null : reason ?? "—"],
          ["Failure detail", state.failure_detail ? JSON.stringify(state.failure_detail) : null],
          ["Challenges completed", `${done} of ${challenges.length}`],
          ["Frames processed", String(state.frames_processed ?? 0)],
          ["Attempts used", `${state.attempts_used ?? 0} of ${state.max_attempts ?? "?"}`],
          ["Completed at", state.completed_at ? when(state.completed_at) : null],
          ["Token usable until", ok && state.expires_at ? when(state.expires_at) : null],
        ]),
        table(
          [
            ["Challenge", (r) => LABELS[r.kind] || r.kind],
            ["Status", (r) => r.status],
            ["Started (ms)", (r) => ms(r.started_ms)],
            ["Completed (ms)", (r) => ms(r.completed_ms)],
            ["Frames", (r) => String(r.frames ?? "—")],
          ],
          results,
          { caption: "Challenge results", empty: "No challenge was started." },
        ),
        ok && token
          ? el("div", { class: "stack liveness-token-box" },
            el("p", {}, "Session token (can be presented once, to enrol or verify the same face, until the time above):"),
            el("code", { class: "liveness-token" }, token),
            el("div", { class: "actions" }, useToken))
          : null,
        rawJson(state, "Session state (raw)"),
      );
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    stopRun();
    clear(status);
    clear(outcome);
    delete outcome.dataset.status;
    frameInfo.textContent = "";
    const chosen = boxes.filter((b) => b.control.checked).map((b) => b.control.value);
    if (!navigator.mediaDevices?.getUserMedia) {
      showError(status, { code: "CAMERA_UNAVAILABLE", message: "This browser gives no camera access here (it needs https or localhost)." });
      return;
    }
    startButton.disabled = true;
    form.setAttribute("aria-busy", "true");
    const current = { timer: null, socket: null, stream: null, inFlight: 0, capturing: false, token: null };
    run = current;
    try {
      instruction.textContent = "Starting the camera…";
      let stream;
      try {
        stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
      } catch (error) {
        const refused = error.name === "NotAllowedError" || error.name === "SecurityError";
        const absent = error.name === "NotFoundError" || error.name === "OverconstrainedError";
        throw {
          code: refused ? "CAMERA_REFUSED" : absent ? "CAMERA_NOT_FOUND" : "CAMERA_ERROR",
          message: refused
            ? "Camera access was refused. Allow the camera for this site in the browser's settings, then press Start again."
            : absent
              ? "No camera was found. Connect a camera and press Start again."
              : `The camera could not be started (${error.name}: ${error.message}).`,
        };
      }
      if (run !== current) {
        stream.getTracks().forEach((t) => t.stop());
        return;
      }
      current.stream = stream;
      video.srcObject = stream;
      stage.hidden = false;
      await video.play().catch(() => {});
      const body = {};
      if (chosen.length) body.challenges = chosen;
      if (timeout.control.value) body.timeout_seconds = Number(timeout.control.value);
      if (attempts.control.value) body.max_attempts = Number(attempts.control.value);
      instruction.textContent = "Opening a session…";
      const session = await api.post("/api/v1/antispoofing/liveness/sessions", { json: body, signal });
      if (run !== current) return;
      current.token = session.session_token;
      outcome.dataset.token = session.session_token;
      stopButton.disabled = false;
      showState({ ...session, session_status: "active", challenges_completed: [], challenge_results: [] }, session.session_token);
      openSocket(current, session);
    } catch (error) {
      if (error?.name === "AbortError") return;
      if (run === current) stopRun();
      instruction.textContent = "Not started.";
      showError(status, error);
    }
  });

  function openSocket(current, session) {
    const path = session.ws_url || `/api/v1/antispoofing/liveness/sessions/${encodeURIComponent(session.session_token)}/ws`;
    // The session token in the path is the socket's credential: no API key in the URL.
    const socket = new WebSocket(api.socketUrl(path, { withKey: false }));
    socket.binaryType = "arraybuffer";
    current.socket = socket;
    const canvas = document.createElement("canvas");
    const context = canvas.getContext("2d");
    let ended = false;

    const sendFrame = () => {
      if (run !== current || socket.readyState !== WebSocket.OPEN) return;
      if (current.capturing || current.inFlight >= MAX_IN_FLIGHT) return;
      if (!video.videoWidth || video.readyState < 2) return;
      const scale = Math.min(1, MAX_FRAME_WIDTH / video.videoWidth);
      canvas.width = Math.round(video.videoWidth * scale);
      canvas.height = Math.round(video.videoHeight * scale);
      context.drawImage(video, 0, 0, canvas.width, canvas.height);
      const stamp = Math.round(performance.now());
      current.capturing = true;
      canvas.toBlob(
        (blob) => {
          current.capturing = false;
          if (!blob || run !== current || socket.readyState !== WebSocket.OPEN) return;
          current.inFlight += 1;
          socket.send(JSON.stringify({ timestamp_ms: stamp }));
          socket.send(blob);
        },
        "image/jpeg",
        0.85,
      );
    };

    socket.addEventListener("open", () => {
      current.timer = setInterval(sendFrame, FRAME_INTERVAL_MS);
    });
    socket.addEventListener("message", (event) => {
      if (run !== current) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.type === "progress" || message.type === "result" || message.type === "error") {
        current.inFlight = Math.max(0, current.inFlight - 1);
      }
      if (message.type === "error") {
        showError(status, message);
        return;
      }
      if (message.last_frame) {
        const f = message.last_frame;
        frameInfo.textContent = f.face_found ? `Face found (${f.faces} in view).` : "No face in the last frame: look at the camera.";
      }
      showState(message, current.token);
      if (message.type === "result") {
        ended = true;
        stopRun();
      }
    });
    socket.addEventListener("close", (event) => {
      if (run !== current || ended) return;
      // Closed before a result: read the session's state over HTTP.
      api
        .get(`/api/v1/antispoofing/liveness/sessions/${encodeURIComponent(current.token)}`, {}, { signal })
        .then((state) => {
          showState(state, current.token);
          if (state.session_status === "active") {
            showError(status, { code: event.reason || "SOCKET_CLOSED", message: `The connection closed (code ${event.code}).` });
          }
        })
        .catch((error) => {
          if (error.name !== "AbortError") showError(status, error);
        })
        .finally(() => {
          if (run === current) stopRun();
        });
    });
  }

  return section(
    "Active liveness (webcam)",
    el("p", { class: "muted" }, "The server asks for head moves or face actions; the camera's frames are sent to it while you follow the instructions."),
    form,
    status,
    instruction,
    bar,
    list,
    frameInfo,
    stage,
    outcome,
  );
}

export default {
  path: "liveness",
  title: "Liveness",
  render(root, { api, signal }) {
    const cleanups = [];
    root.append(
      el("div", { class: "grid two liveness" }, activeCard(api, signal, (fn) => cleanups.push(fn)), passiveCard(api, signal)),
    );
    return () => cleanups.forEach((fn) => fn());
  },
};
