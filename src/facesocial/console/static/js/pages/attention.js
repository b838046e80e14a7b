// Attention: meetings (list, create, start, end, delete), one meeting's page (participants, live
// analysis from the webcam over the meeting's WebSocket, live scores, open alerts, the attention
// chart and the summary), and recorded videos (upload, progress, chart, results).
//
// A meeting's page is #/attention?meeting=<id> (the shell routes on the part before "?").
import { el, field, section, table, progress, facts, busy, showError, clear, toast, when, rawJson, poll } from "../ui.js";
import { chartCanvas, chartTable, lineChart } from "../attention-chart.js";

const BASE = "/api/v1/attention";
const MEETINGS = `${BASE}/meetings`;
const VIDEOS = `${BASE}/videos`;
const GROUPS = "/api/v1/face-recognition/groups";
const FRAME_INTERVAL_MS = 250; // at most 4 frames a second from the camera
const ANSWER_TIMEOUT_MS = 5000; // send the next frame anyway after this long without an answer
const LIVE_POLL_MS = 1000;
const REFRESH_EVERY = 5; // live polls between refreshes of the facts, alerts, chart and summary
const TERMINAL = new Set(["completed", "failed", "cancelled"]);

const fmt = (v, digits = 1) => (v === null || v === undefined ? "—" : Number(v).toFixed(digits));
const yesNo = (v) => (v ? "yes" : "no");
const clock = (seconds) => {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
};

function statusBadge(status) {
  return el("span", { class: `badge ${status}` }, status);
}

function meetingIdFromHash() {
  const query = location.hash.split("?")[1] || "";
  return new URLSearchParams(query).get("meeting");
}

export default {
  path: "attention",
  title: "Attention",
  render(root, ctx) {
    const { api, signal } = ctx;
    const cleanups = new Set();
    const onCleanup = (fn) => cleanups.add(fn);
    const meetingId = meetingIdFromHash();
    if (meetingId) renderMeeting(root, ctx, meetingId, onCleanup);
    else {
      renderMeetings(root, ctx);
      renderRecordings(root, ctx, onCleanup);
    }
    return () => {
      cleanups.forEach((fn) => {
        try {
          fn();
        } catch (error) {
          console.error(error);
        }
      });
    };
  },
};

// --- meetings list and creation ---------------------------------------------------------------------
function renderMeetings(root, { api, signal, navigate }) {
  const filter = field("Show meetings", "select", { name: "status" }, [
    ["", "All"],
    ["scheduled", "Scheduled"],
    ["active", "Active"],
    ["ended", "Ended"],
  ]);
  const refresh = el("button", { type: "button", class: "secondary" }, "Refresh meetings");
  const listStatus = el("div", { class: "status" });
  const listBox = el("div", {});

  const title = field("Title", "text", { name: "title", maxlength: "255", required: true });
  const description = field("Description (optional)", "textarea", { name: "description", rows: "2" });
  const group = field("Face group (optional: participants are identified against it)", "select", { name: "group_id" }, [["", "No group"]]);
  const createStatus = el("div", { class: "status" });
  const form = el("form", { class: "stack", "aria-label": "New meeting" }, title, description, group, el("button", { type: "submit" }, "Create meeting"), createStatus);

  root.append(
    section("New meeting", form),
    section("Meetings", el("div", { class: "row" }, filter, refresh), listStatus, listBox),
  );

  api
    .get(GROUPS, { limit: 1000 }, { signal })
    .then((answer) => {
      for (const g of answer.groups || []) {
        const id = g.group_id || g.id;
        group.control.append(el("option", { value: id }, g.group_name || g.name || id));
      }
    })
    .catch((error) => {
      if (error.name !== "AbortError") showError(createStatus, error);
    });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, createStatus, async () => {
      const body = { title: title.control.value.trim() };
      if (description.control.value.trim()) body.description = description.control.value.trim();
      if (group.control.value) body.group_id = group.control.value;
      const answer = await api.post(MEETINGS, { json: body, signal });
      toast(`Meeting “${answer.meeting.title}” created.`);
      navigate(`attention?meeting=${encodeURIComponent(answer.meeting.meeting_id)}`);
    });
  });

  async function act(meeting, action) {
    try {
      if (action === "delete") {
        if (!confirm(`Delete “${meeting.title}” with its participants, alerts and metrics?`)) return;
        await api.del(`${MEETINGS}/${meeting.meeting_id}`, { signal });
        toast("Meeting deleted.");
      } else {
        await api.post(`${MEETINGS}/${meeting.meeting_id}/${action}`, { signal });
        toast(action === "start" ? "Meeting started." : "Meeting ended.");
      }
      load();
    } catch (error) {
      if (error.name !== "AbortError") showError(listStatus, error);
    }
  }

  async function load() {
    try {
      const answer = await api.get(MEETINGS, { status: filter.control.value, page_size: 100 }, { signal });
      clear(listStatus);
      listBox.replaceChildren(
        el("p", { class: "muted" }, `${answer.total} meeting${answer.total === 1 ? "" : "s"}.`),
        table(
          [
            ["Title", (m) => m.title],
            ["Status", (m) => statusBadge(m.status)],
            ["Created", (m) => when(m.created_at)],
            ["Started", (m) => when(m.start_time)],
            ["Ended", (m) => when(m.end_time)],
            [
              "Actions",
              (m) =>
                el(
                  "div",
                  { class: "actions" },
                  el("button", { type: "button", onclick: () => navigate(`attention?meeting=${encodeURIComponent(m.meeting_id)}`) }, `Open ${m.title}`),
                  m.status === "scheduled" ? el("button", { type: "button", class: "secondary", onclick: () => act(m, "start") }, `Start ${m.title}`) : null,
                  m.status === "active" ? el("button", { type: "button", class: "secondary", onclick: () => act(m, "end") }, `End ${m.title}`) : null,
                  el("button", { type: "button", class: "danger", onclick: () => act(m, "delete") }, `Delete ${m.title}`),
                ),
            ],
          ],
          answer.items,
          { caption: "Meetings, newest first", empty: "No meeting yet." },
        ),
      );
    } catch (error) {
      if (error.name !== "AbortError") showError(listStatus, error);
    }
  }
  filter.control.addEventListener("change", load);
  refresh.addEventListener("click", load);
  load();
}

// --- one meeting --------------------------------------------------------------------------------------
function renderMeeting(root, { api, signal, navigate }, meetingId, onCleanup) {
  // The id comes from the URL fragment (anyone can send a link): encoded, it stays one path
  // segment under /meetings and can never walk to another route with the user's credentials.
  const path = `${MEETINGS}/${encodeURIComponent(meetingId)}`;
  const back = el("button", { type: "button", class: "secondary", onclick: () => navigate("attention") }, "← All meetings");
  const headBox = el("div", {});
  const headStatus = el("div", { class: "status", "aria-live": "polite" });
  const liveBox = el("div", {});
  const participantsBox = el("div", {});
  const alertsBox = el("div", {});
  const chartBox = el("div", {});
  const summaryBox = el("div", {});
  const liveSection = section("Live", liveBox);
  root.append(
    el("div", { class: "row" }, back),
    section("Meeting", headStatus, headBox),
    liveSection,
    section("Participants", participantsBox),
    section("Alerts", alertsBox),
    section("Attention over time", chartBox),
    section("Summary", summaryBox),
  );

  let meeting = null;
  let names = new Map(); // participant_id → a label people can read
  let live = null; // the running camera/socket/poll of this page

  const stopLive = () => {
    live?.stop();
    live = null;
  };
  onCleanup(stopLive);

  function label(participantId) {
    return names.get(participantId) || `Participant ${String(participantId).slice(0, 8)}`;
  }

  let meetingCall = 0;
  async function loadMeeting() {
    const call = ++meetingCall;
    const answer = (await api.get(path, {}, { signal })).meeting;
    if (call !== meetingCall) return;
    meeting = answer;
    const buttons = el(
      "div",
      { class: "actions" },
      meeting.status === "scheduled" ? el("button", { type: "button", onclick: () => transition("start") }, "Start meeting") : null,
      meeting.status === "active" ? el("button", { type: "button", onclick: () => transition("end") }, "End meeting") : null,
      el("button", { type: "button", class: "danger", onclick: remove }, "Delete meeting"),
    );
    headBox.replaceChildren(
      el("h2", { class: "meeting-title" }, meeting.title),
      facts([
        ["Status", statusBadge(meeting.status)],
        ["Description", meeting.description || null],
        ["Face group", meeting.group_id || "none"],
        ["Started", when(meeting.start_time)],
        ["Ended", when(meeting.end_time)],
        ["Participants", String(meeting.participant_count ?? 0)],
        ["Present now", String(meeting.active_participants ?? 0)],
        ["Open alerts", String(meeting.open_alerts ?? 0)],
      ]),
      buttons,
    );
    headBox.dataset.status = meeting.status;
    document.title = `${meeting.title} — Attention — FaceSocial console`;
  }

  async function transition(action) {
    await busy(headBox, headStatus, async () => {
      if (action === "end") stopLive();
      await api.post(`${path}/${action}`, { signal });
      toast(action === "start" ? "Meeting started." : "Meeting ended.");
      await refreshAll();
    });
  }

  async function remove() {
    if (!confirm(`Delete “${meeting?.title}” with its participants, alerts and metrics?`)) return;
    await busy(headBox, headStatus, async () => {
      stopLive();
      await api.del(path, { signal });
      toast("Meeting deleted.");
      navigate("attention");
    });
  }

  // Participants -----------------------------------------------------------------------------------
  const pName = field("Display name", "text", { name: "display_name", maxlength: "255" });
  const pUser = field("User id (an enrolled user, optional)", "text", { name: "user_id", spellcheck: "false" });
  const pStatus = el("div", { class: "status" });
  const pForm = el("form", { class: "row", "aria-label": "Add a participant" }, pName, pUser, el("button", { type: "submit" }, "Add participant"));
  const pTable = el("div", {});
  participantsBox.append(pTable, pForm, pStatus);
  pForm.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(pForm, pStatus, async () => {
      const body = {};
      if (pName.control.value.trim()) body.display_name = pName.control.value.trim();
      if (pUser.control.value.trim()) body.user_id = pUser.control.value.trim();
      await api.post(`${path}/participants`, { json: body, signal });
      pName.control.value = "";
      pUser.control.value = "";
      toast("Participant added.");
      await loadParticipants();
    });
  });

  async function loadParticipants() {
    const answer = await api.get(`${path}/participants`, {}, { signal });
    names = new Map(
      answer.items.map((p) => [
        p.participant_id,
        p.display_name || (p.user_id ? `User ${p.user_id.slice(0, 8)}` : p.track_id != null ? `Face track ${p.track_id}` : `Participant ${p.participant_id.slice(0, 8)}`),
      ]),
    );
    const leave = async (p) => {
      try {
        await api.post(`${path}/participants/${p.participant_id}/leave`, { signal });
        toast(`${label(p.participant_id)} left.`);
        await loadParticipants();
      } catch (error) {
        if (error.name !== "AbortError") showError(pStatus, error);
      }
    };
    pTable.replaceChildren(
      table(
        [
          ["Participant", (p) => label(p.participant_id)],
          ["User", (p) => p.user_id || "—"],
          ["Face track", (p) => (p.track_id == null ? "—" : String(p.track_id))],
          ["Joined", (p) => when(p.joined_at)],
          ["Left", (p) => when(p.left_at)],
          ["Present", (p) => yesNo(p.is_active)],
          ["", (p) => (p.is_active ? el("button", { type: "button", class: "secondary", onclick: () => leave(p) }, `${label(p.participant_id)} leaves`) : "")],
        ],
        answer.items,
        { caption: "Participants in joining order", empty: "No participant yet: add one, or go live (each face seen joins)." },
      ),
    );
    pForm.hidden = meeting?.status === "ended";
  }

  // Alerts -----------------------------------------------------------------------------------------
  const aState = field("Alerts to show", "select", { name: "state" }, [["open", "Open"], ["", "All"], ["resolved", "Resolved"]]);
  const aStatus = el("div", { class: "status" });
  const aTable = el("div", {});
  alertsBox.append(el("div", { class: "row" }, aState), aStatus, aTable);
  aState.control.addEventListener("change", () => loadAlerts().catch((e) => showError(aStatus, e)));

  async function loadAlerts() {
    const answer = await api.get(`${path}/alerts`, { state: aState.control.value, page_size: 100 }, { signal });
    const resolve = async (a) => {
      try {
        await api.post(`${path}/alerts/${a.alert_id}/resolve`, { signal });
        toast("Alert resolved.");
        await loadAlerts();
      } catch (error) {
        if (error.name !== "AbortError") showError(aStatus, error);
      }
    };
    aTable.replaceChildren(
      table(
        [
          ["Participant", (a) => label(a.participant_id)],
          ["Type", (a) => a.alert_type.replace("_", " ")],
          ["Severity", (a) => el("span", { class: `badge ${a.severity === "info" ? "" : "warn"}` }, a.severity)],
          ["Message", (a) => a.message || "—"],
          ["Since", (a) => when(a.created_at)],
          ["Duration", (a) => (a.duration_seconds == null ? "—" : `${fmt(a.duration_seconds)} s`)],
          ["State", (a) => (a.is_open ? "open" : `resolved ${when(a.resolved_at)}`)],
          ["", (a) => (a.is_open ? el("button", { type: "button", class: "secondary", onclick: () => resolve(a) }, "Resolve") : "")],
        ],
        answer.items,
        { caption: `${answer.total} alert${answer.total === 1 ? "" : "s"}, newest first`, empty: "No alert." },
      ),
    );
  }

  // Chart and summary ------------------------------------------------------------------------------
  const resolution = field("Resolution", "select", { name: "resolution" }, [["raw", "Per second"], ["minute", "Per minute (average)"]]);
  const chartStatus = el("div", { class: "status" });
  const chartArea = el("div", {});
  const chartRefresh = el("button", { type: "button", class: "secondary" }, "Refresh chart");
  chartBox.append(el("div", { class: "row" }, resolution, chartRefresh), chartStatus, chartArea);
  resolution.control.addEventListener("change", () => loadChart());
  chartRefresh.addEventListener("click", () => loadChart());

  let chartCall = 0;
  async function loadChart() {
    const call = ++chartCall;
    try {
      const raw = resolution.control.value === "raw";
      const answer = await api.get(`${path}/metrics`, { resolution: resolution.control.value, limit: 10000 }, { signal });
      if (call !== chartCall) return; // a later call's answer wins
      clear(chartStatus);
      const items = answer.items || [];
      const timeOf = (item) => Date.parse(raw ? item.time : item.bucket);
      const start = meeting?.start_time ? Date.parse(meeting.start_time) : items.length ? Math.min(...items.map(timeOf)) : 0;
      const byParticipant = new Map();
      for (const item of items) {
        const list = byParticipant.get(item.participant_id) || [];
        list.push([(timeOf(item) - start) / 1000, raw ? item.attention_score : item.avg_attention]);
        byParticipant.set(item.participant_id, list);
      }
      const spec = {
        title: raw ? "Attention per second (0–100)" : "Average attention per minute (0–100)",
        xLabel: "time since the meeting started (min:s)",
        yLabel: "attention",
        yMin: 0,
        yMax: 100,
        xFormat: clock,
        xMinStep: 1,
        series: [...byParticipant].map(([pid, points]) => ({ name: label(pid), points })),
      };
      const canvas = chartCanvas(spec.title, { width: 900, height: 340 });
      canvas.classList.add("attention-chart");
      chartArea.replaceChildren(el("div", { class: "stage wide" }, canvas), chartTable(spec, { xHeader: "Time", format: (v) => fmt(v) }));
      lineChart(canvas, spec);
      canvas.dataset.count = String(answer.count ?? items.length);
      canvas.dataset.resolution = resolution.control.value;
    } catch (error) {
      if (error.name !== "AbortError") showError(chartStatus, error);
    }
  }

  let summaryCall = 0;
  async function loadSummary() {
    const call = ++summaryCall;
    const { summary } = await api.get(`${path}/summary`, {}, { signal });
    if (call !== summaryCall) return;
    summaryBox.dataset.source = summary.source;
    summaryBox.replaceChildren(
      el("p", { class: "muted" }, summary.source === "stored" ? "Stored when the meeting ended." : "Computed now (the meeting has not ended)."),
      facts([
        ["Duration", summary.duration_minutes == null ? "—" : `${summary.duration_minutes} min`],
        ["Participants", String(summary.participant_count ?? 0)],
        ["Average attention", el("span", { class: "summary-avg" }, fmt(summary.avg_attention_score))],
        ["Lowest attention", fmt(summary.min_attention_score)],
        ["Highest attention", fmt(summary.max_attention_score)],
        ["Alerts", String(summary.total_alerts ?? 0)],
        ["Low-attention segments", Array.isArray(summary.low_attention_segments) ? String(summary.low_attention_segments.length) : String(summary.low_attention_segments ?? 0)],
      ]),
      rawJson(summary, "Raw summary"),
    );
  }

  // Live -------------------------------------------------------------------------------------------
  function renderLive() {
    stopLive();
    if (meeting.status !== "active") {
      liveSection.hidden = true;
      return;
    }
    liveSection.hidden = false;
    const socketStatus = el("div", { class: "status live-status", role: "status", "aria-live": "polite" }, "Camera off.");
    const startButton = el("button", { type: "button" }, "Start camera");
    const stopButton = el("button", { type: "button", class: "secondary", disabled: true }, "Stop camera");
    const video = el("video", { class: "att-video", muted: true, playsinline: true, autoplay: true, "aria-label": "Your camera" });
    video.hidden = true;
    const lastFrame = el("div", { class: "last-frame" });
    const scores = el("div", { class: "live-scores" });
    const counters = el("p", { class: "muted live-counters" });
    liveBox.replaceChildren(
      el("div", { class: "row" }, startButton, stopButton),
      socketStatus,
      el("div", { class: "grid two att-live-grid" }, el("div", {}, video, counters, lastFrame), el("div", {}, el("h3", {}, "Live scores (GET …/live)"), scores)),
    );

    const state = { ws: null, stream: null, timer: null, watchdog: null, poll: null, sent: 0, answered: 0, t0: 0, closed: false };
    const grab = document.createElement("canvas");

    function say(text) {
      socketStatus.textContent = text;
    }

    function stopCamera(message) {
      clearTimeout(state.timer);
      clearTimeout(state.watchdog);
      state.timer = state.watchdog = null;
      if (state.ws && state.ws.readyState <= 1) state.ws.close(1000, "camera stopped");
      state.ws = null;
      state.stream?.getTracks().forEach((t) => t.stop());
      state.stream = null;
      video.srcObject = null;
      video.hidden = true;
      startButton.disabled = false;
      stopButton.disabled = true;
      if (message) say(message);
    }

    function scheduleNext(delay) {
      clearTimeout(state.timer);
      state.timer = setTimeout(sendFrame, Math.max(0, delay));
    }

    function sendFrame() {
      const ws = state.ws;
      if (!ws || ws.readyState !== WebSocket.OPEN || !video.videoWidth) {
        if (ws && ws.readyState === WebSocket.OPEN) scheduleNext(100);
        return;
      }
      const scale = Math.min(1, 640 / video.videoWidth);
      grab.width = Math.round(video.videoWidth * scale);
      grab.height = Math.round(video.videoHeight * scale);
      grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
      const sentAt = performance.now();
      grab.toBlob(
        (blob) => {
          if (!blob || state.ws !== ws || ws.readyState !== WebSocket.OPEN) return;
          ws.send(JSON.stringify({ timestamp_ms: Math.round(sentAt - state.t0) }));
          ws.send(blob);
          state.sent += 1;
          state.lastSent = sentAt;
          clearTimeout(state.watchdog);
          state.watchdog = setTimeout(sendFrame, ANSWER_TIMEOUT_MS);
        },
        "image/jpeg",
        0.85,
      );
    }

    function showFrame(message) {
      state.answered += 1;
      counters.textContent = `Frames sent ${state.sent}, analysed ${state.answered}; last frame #${message.frame_index} at ${fmt(message.timestamp_ms / 1000)} s${message.dropped ? `, ${message.dropped} skipped` : ""}.`;
      lastFrame.replaceChildren(
        el("h3", {}, `Last frame: ${message.faces.length} face${message.faces.length === 1 ? "" : "s"}`),
        ...message.faces.map((f) =>
          el(
            "div",
            { class: "stack", dataset: { participantId: f.participant_id } },
            el("strong", {}, label(f.participant_id)),
            facts([
              ["Attention", fmt(f.attention_score)],
              ["Gaze", fmt(f.gaze_score)],
              ["Head pose", fmt(f.head_pose_score)],
              ["Eye openness", fmt(f.eye_openness_score)],
              ["Looking away", yesNo(f.is_looking_away)],
              ["Drowsy", yesNo(f.is_drowsy)],
              ["Blinks", String(f.blink_count ?? 0)],
            ]),
          ),
        ),
      );
      if (message.alerts?.length) {
        toast(message.alerts.map((a) => `${label(a.participant_id)}: ${a.alert_type.replace("_", " ")} ${a.state}`).join("; "), "warn");
        loadAlerts().catch(() => {});
      }
    }

    async function startCamera() {
      startButton.disabled = true;
      try {
        say("Asking for the camera…");
        state.stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
      } catch (error) {
        startButton.disabled = false;
        showError(socketStatus, { code: "CAMERA_UNAVAILABLE", message: `The camera could not be opened (${error.name}: ${error.message}).` });
        return;
      }
      video.srcObject = state.stream;
      video.hidden = false;
      await video.play().catch(() => {});
      stopButton.disabled = false;
      say("Connecting to the meeting's live socket (the first one loads the face models)…");
      const ws = api.openSocket(`${path}/ws`);
      state.ws = ws;
      state.t0 = performance.now();
      state.sent = state.answered = 0;
      ws.addEventListener("open", () => {
        say("Live: sending camera frames.");
        sendFrame();
      });
      ws.addEventListener("message", (event) => {
        let message;
        try {
          message = JSON.parse(event.data);
        } catch {
          return;
        }
        if (message.type === "frame") {
          clearTimeout(state.watchdog);
          showFrame(message);
          scheduleNext(FRAME_INTERVAL_MS - (performance.now() - (state.lastSent || 0)));
        } else if (message.type === "error") {
          showError(socketStatus, message);
          if (message.timestamp_ms !== undefined) scheduleNext(FRAME_INTERVAL_MS);
        }
      });
      ws.addEventListener("close", (event) => {
        if (state.ws !== ws) return;
        const why = event.code >= 4000 ? `${event.reason || "CLOSED"} (${event.code})` : `code ${event.code}`;
        stopCamera();
        if (event.code >= 4000) showError(socketStatus, { code: event.reason || `WS_${event.code}`, message: `The live socket was closed by the server (${event.code}).` });
        else say(`Live socket closed (${why}).`);
        if (event.reason === "MEETING_ENDED") refreshAll();
      });
      ws.addEventListener("error", () => say("The live socket failed; see the message above if the server sent one."));
    }

    async function pollLive() {
      try {
        const answer = await api.get(`${path}/live`, {}, { signal });
        const known = answer.participants.some((p) => !names.has(p.participant_id));
        if (known) await loadParticipants().catch(() => {});
        scores.replaceChildren(
          el("p", { class: "muted" }, `${answer.sockets} socket${answer.sockets === 1 ? "" : "s"} streaming.`),
          answer.participants.length
            ? el(
                "div",
                { class: "table-wrap" },
                el(
                  "table",
                  { class: "live-table" },
                  el("caption", {}, "Latest scores of each present participant (0–100)"),
                  el("thead", {}, el("tr", {}, ["Participant", "Attention", "Gaze", "Head pose", "Eye openness", "Looking away", "Drowsy", "Updated"].map((h) => el("th", { scope: "col" }, h)))),
                  el(
                    "tbody",
                    {},
                    answer.participants.map((p) =>
                      el(
                        "tr",
                        { dataset: { participantId: p.participant_id, updatedAt: p.updated_at || "" } },
                        el("td", {}, label(p.participant_id)),
                        el("td", { class: "live-attention" }, fmt(p.attention_score, 2)),
                        el("td", {}, fmt(p.gaze_score, 2)),
                        el("td", {}, fmt(p.head_pose_score, 2)),
                        el("td", {}, fmt(p.eye_openness_score, 2)),
                        el("td", {}, yesNo(p.is_looking_away)),
                        el("td", {}, yesNo(p.is_drowsy)),
                        el("td", {}, when(p.updated_at)),
                      ),
                    ),
                  ),
                ),
              )
            : el("p", { class: "muted" }, "No live scores yet."),
        );
      } catch (error) {
        if (error.name === "AbortError") return;
        if (error.code === "MEETING_NOT_ACTIVE" || error.code === "MEETING_ENDED") {
          stopAll();
          refreshAll();
          return;
        }
        showError(scores, error);
      }
      // Every few seconds the rest of the page follows the live meeting too.
      state.polls = (state.polls || 0) + 1;
      if (!state.closed && state.polls % REFRESH_EVERY === 0) {
        await Promise.all([loadMeeting(), loadAlerts(), loadChart(), loadSummary()]).catch(() => {});
      }
      if (!state.closed) state.poll = setTimeout(pollLive, LIVE_POLL_MS);
    }

    function stopAll() {
      state.closed = true;
      clearTimeout(state.poll);
      stopCamera();
    }

    startButton.addEventListener("click", startCamera);
    stopButton.addEventListener("click", () => stopCamera("Camera off; the live socket is closed."));
    live = { stop: stopAll };
    pollLive();
  }

  async function refreshAll() {
    try {
      await loadMeeting();
      await loadParticipants();
      renderLive();
      await Promise.all([loadAlerts(), loadChart(), loadSummary()]);
    } catch (error) {
      if (error.name !== "AbortError") showError(headStatus, error);
    }
  }
  refreshAll();
}

// --- recorded videos ----------------------------------------------------------------------------------
function renderRecordings(root, { api, signal }, onCleanup) {
  const urls = new Set();
  onCleanup(() => urls.forEach((u) => URL.revokeObjectURL(u)));
  const file = field("Recording (video file)", "file", { name: "video", accept: "video/*", required: true });
  const fps = field("Frames analysed per second", "number", { name: "sample_fps", min: "0.5", max: "10", step: "0.5", value: "5" });
  const meetingField = field("Add to meeting (optional)", "select", { name: "meeting_id" }, [["", "No meeting"]]);
  const status = el("div", { class: "status" });
  const form = el("form", { class: "stack", "aria-label": "Analyse a recording" }, el("div", { class: "grid three" }, file, fps, meetingField), el("button", { type: "submit" }, "Analyse recording"), status);
  const resultBox = el("div", { class: "recording-result", "aria-live": "polite" });
  const listBox = el("div", {});
  const listStatus = el("div", { class: "status" });
  root.append(section("Recorded videos", form, resultBox, el("h3", {}, "Your recordings"), listStatus, listBox));

  api
    .get(MEETINGS, { page_size: 100 }, { signal })
    .then((answer) => answer.items.forEach((m) => meetingField.control.append(el("option", { value: m.meeting_id }, `${m.title} (${m.status})`))))
    .catch(() => {});

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, status, async () => {
      const chosen = file.control.files?.[0];
      if (!chosen) throw { code: "NO_VIDEO", message: "Choose a video first." };
      const bar = progress("Recording analysis");
      resultBox.replaceChildren(el("p", {}, "Uploading…"), bar);
      const answer = await api.post(VIDEOS, { form: { video: chosen, sample_fps: fps.control.value, meeting_id: meetingField.control.value }, signal });
      toast("Recording queued.");
      loadList();
      await follow(answer.id, bar);
      loadList();
    });
  });

  async function follow(id, bar) {
    bar = bar || progress("Recording analysis");
    const box = el("div", {});
    resultBox.replaceChildren(bar, box);
    try {
      const recording = await poll(() => api.get(`${VIDEOS}/${id}`, {}, { signal }), {
        signal,
        interval: 1000,
        done: (r) => TERMINAL.has(r.status),
        onUpdate: (r) => bar.set(r.status === "completed" ? 100 : r.progress_percentage, r.status),
      });
      await showRecording(recording, box);
    } catch (error) {
      if (error.name !== "AbortError") showError(box, error);
    }
  }

  async function showRecording(recording, box) {
    box.dataset.recordingId = recording.id;
    box.dataset.status = recording.status;
    const head = facts([
      ["File", recording.filename],
      ["Status", recording.status],
      ["Duration", recording.duration_seconds ? `${fmt(recording.duration_seconds)} s` : null],
      ["Size", recording.width ? `${recording.width}×${recording.height} px` : null],
      ["Alerts", String(recording.alert_count ?? 0)],
    ]);
    if (recording.status !== "completed") {
      box.replaceChildren(head);
      if (recording.error) showError(box.appendChild(el("div", {})), { code: "JOB_FAILED", message: recording.error });
      return;
    }
    const results = recording.results || {};
    const overall = results.overall || {};
    const chartArea = el("div", {});
    const imageArea = el("div", {});
    box.replaceChildren(
      head,
      facts([
        ["Mean attention", el("span", { class: "recording-mean" }, fmt(overall.mean_attention))],
        ["Lowest attention", fmt(overall.min_attention)],
        ["People", String(overall.participants ?? 0)],
        ["Frames analysed", String(results.frames_analyzed ?? "—")],
      ]),
      table(
        [
          ["Person", (t) => t.participant_label],
          ["Seconds present", (t) => fmt(t.seconds_present)],
          ["Mean attention", (t) => fmt(t.mean_attention)],
          ["Min", (t) => fmt(t.min_attention)],
          ["Max", (t) => fmt(t.max_attention)],
          ["Looking away (s)", (t) => fmt(t.looking_away_seconds)],
          ["Drowsy (s)", (t) => fmt(t.drowsy_seconds)],
          ["Alerts", (t) => String(t.alert_count)],
        ],
        results.tracks || [],
        { caption: "Per person in the recording", empty: "No face was found." },
      ),
      el("h3", {}, "Attention over the recording"),
      chartArea,
      el("h3", {}, "The server's chart"),
      imageArea,
      rawJson(recording),
    );
    // The timeline, every page of it.
    const frames = [];
    for (let offset = 0; ; offset += 1000) {
      const page = await api.get(`${VIDEOS}/${recording.id}/timeline`, { offset, limit: 1000 }, { signal });
      frames.push(...page.frames);
      if (!page.frames.length || frames.length >= page.total) break;
    }
    const byPerson = new Map();
    for (const frame of frames) {
      for (const face of frame.faces || []) {
        const name = face.participant_label || `Track ${face.track_id}`;
        const list = byPerson.get(name) || [];
        list.push([frame.video_timestamp_ms / 1000, face.attention_score]);
        byPerson.set(name, list);
      }
    }
    const spec = {
      title: "Attention per analysed frame (0–100)",
      xLabel: "second of the recording",
      yLabel: "attention",
      yMin: 0,
      yMax: 100,
      xFormat: (x) => `${Math.round(x * 10) / 10} s`,
      series: [...byPerson].map(([name, points]) => ({ name, points })),
    };
    const canvas = chartCanvas(spec.title, { width: 900, height: 340 });
    canvas.classList.add("recording-chart");
    chartArea.replaceChildren(el("div", { class: "stage wide" }, canvas), chartTable(spec, { xHeader: "Second", format: (v) => fmt(v) }));
    lineChart(canvas, spec);
    canvas.dataset.frames = String(frames.length);
    try {
      const url = await api.objectUrl(`${VIDEOS}/${recording.id}/chart.png`);
      urls.add(url);
      imageArea.replaceChildren(
        el("div", { class: "stage" }, el("img", { src: url, class: "recording-chart-png", alt: `The server's attention chart of ${recording.filename}: the same data as the table above.` })),
      );
    } catch (error) {
      if (error.name !== "AbortError") showError(imageArea, error);
    }
  }

  async function loadList() {
    try {
      const answer = await api.get(VIDEOS, { limit: 20 }, { signal });
      clear(listStatus);
      const remove = async (r) => {
        if (!confirm(`Delete the recording ${r.filename} and its analysis?`)) return;
        try {
          await api.del(`${VIDEOS}/${r.id}`, { signal });
          toast("Recording deleted.");
          if (resultBox.querySelector(`[data-recording-id="${CSS.escape(r.id)}"]`)) resultBox.replaceChildren();
          loadList();
        } catch (error) {
          if (error.name !== "AbortError") showError(listStatus, error);
        }
      };
      listBox.replaceChildren(
        table(
          [
            ["File", (r) => r.filename],
            ["Status", (r) => r.status],
            ["Progress", (r) => `${Math.round(r.status === "completed" ? 100 : r.progress_percentage)} %`],
            ["Uploaded", (r) => when(r.created_at)],
            [
              "Actions",
              (r) =>
                el(
                  "div",
                  { class: "actions" },
                  el("button", { type: "button", class: "secondary", onclick: () => follow(r.id) }, `Open ${r.filename}`),
                  el("button", { type: "button", class: "danger", onclick: () => remove(r) }, `Delete ${r.filename}`),
                ),
            ],
          ],
          answer.recordings,
          { caption: "Recordings, newest first", empty: "No recording yet." },
        ),
      );
    } catch (error) {
      if (error.name !== "AbortError") showError(listStatus, error);
    }
  }
  loadList();
}
