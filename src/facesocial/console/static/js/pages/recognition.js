// Recognition: enrol a face (register), verify 1:1, identify 1:N, manage face groups, look up and
// erase a user. Tabs (WAI-ARIA tab pattern, arrow keys move between them). The users enrolled in
// this browser tab are remembered for the tab's life (sessionStorage) so they can be picked again.
import { el, field, table, facts, busy, replace, clear, showError, when, rawJson } from "../ui.js";
import { faceCanvas, decodeImage, dropZone, modelPairs, fixed, uuid4, facesLabel } from "./detect-canvas.js";

const BASE = "/api/v1/face-recognition";
// A completed liveness session's token handed over by the Liveness view ("Use for enrolment"):
// kept in this tab's sessionStorage (never in the URL next to a key) and read once.
export const LIVENESS_HANDOFF = "facesocial.console.enrol-liveness-token";

export default {
  path: "recognition",
  title: "Recognition",
  render(root, { signal, api }) {
    const urls = [];
    const enrolled = enrolledStore(api);
    const datalist = el("datalist", { id: "recognition-users" });
    const groupSelects = new Set();
    let groups = [];
    let selectGroup = null; // the Groups tab's "open" action, set below

    function refreshDatalist() {
      replace(datalist, enrolled.list().map((u) => el("option", { value: u.user_id }, u.name || "enrolled in this tab")));
      enrolledViews.forEach((update) => update());
    }
    const enrolledViews = [];

    function groupSelect(label, noneText) {
      const wrapper = field(label, "select", { name: "group_id" }, [["", noneText]]);
      wrapper.control.noneText = noneText;
      groupSelects.add(wrapper.control);
      fillGroupSelect(wrapper.control);
      return wrapper;
    }
    function fillGroupSelect(select) {
      const current = select.value;
      replace(select, el("option", { value: "" }, select.noneText),
        groups.map((g) => el("option", { value: g.group_id }, `${g.group_name} (${g.face_count} faces)`)));
      if ([...select.options].some((o) => o.value === current)) select.value = current;
    }
    const groupsChanged = [];
    async function refreshGroups() {
      const answer = await api.get(`${BASE}/groups`, { limit: 1000 }, { signal });
      groups = answer.groups || [];
      groupSelects.forEach(fillGroupSelect);
      groupsChanged.forEach((update) => update());
      return groups;
    }

    const userIdField = (label, attrs = {}) =>
      field(label, "text", {
        name: "user_id",
        list: "recognition-users",
        autocomplete: "off",
        spellcheck: "false",
        pattern: "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
        "data-hint": "A UUID; the users enrolled in this tab are suggested.",
        ...attrs,
      });

    /** The optional "Face index" control (the API's face_index; 0 = the largest face). */
    const faceIndexField = (hint) =>
      field("Face index (optional, 0 = largest)", "number", { name: "face_index", min: "0", step: "1", inputmode: "numeric", "data-hint": hint });
    const livenessField = () =>
      field("Liveness session token (optional)", "text", {
        name: "liveness_session",
        autocomplete: "off",
        spellcheck: "false",
        "data-hint": "The session token of a completed liveness check (Liveness view); it can be used once, for the same face.",
      });
    /** Clear a form's old messages and results as soon as it is submitted again (even when the
     * browser blocks the submit because a required field is empty). */
    function clearOnSubmitAttempt(form, ...nodes) {
      const wipe = () => nodes.forEach(clear);
      form.querySelector("button[type=submit]").addEventListener("click", wipe);
      form.addEventListener("invalid", wipe, true);
    }

    /**
     * The photo has several faces (MULTIPLE_FACES) or the index names none
     * (FACE_INDEX_OUT_OF_RANGE): say so in plain words, draw the detected faces numbered (from
     * /api/v1/face-detection/detect: the error carries only their count) and offer one button per
     * face that fills the Face index field.
     */
    async function showFacePicker(status, host, file, error, indexField, action) {
      const count = error.details?.faces_detected;
      showError(status, error);
      const words = error.code === "MULTIPLE_FACES"
        ? `This photo shows ${count ?? "several"} faces, so the server does not know which one to ${action}. Choose a face below (they are numbered on the photo, 1 is the largest), or type its face index (face 1 = index 0), then press the button again.`
        : `There is no face with index ${indexField.control.value} in this photo${count ? ` (it shows ${facesLabel(count, "").trim()}: indexes 0 to ${count - 1})` : ""}. Choose a face below.`;
      status.append(el("p", { class: "alert warn face-choice-help", role: "status" }, words));
      let faces = [];
      try {
        const answer = await api.post("/api/v1/face-detection/detect", { signal, form: { image: file } });
        faces = answer.faces || [];
        const picker = el("div", { class: "stack face-picker" }, el("h3", {}, "Faces in the photo"));
        try {
          const image = await decodeImage(file, urls);
          picker.append(faceCanvas(image, faces, {
            size: answer.image ? { width: answer.image.width, height: answer.image.height } : undefined,
            label: `${facesLabel(faces.length)}, numbered from 1 (the largest)`,
            caption: "Each face carries its number; face 1 is the largest.",
          }));
        } catch {
          picker.append(el("p", { class: "muted" }, "This browser cannot draw this image format."));
        }
        picker.append(el("div", { class: "actions face-choices" }, faces.map((face, i) =>
          el("button", {
            type: "button",
            class: "secondary",
            "data-face-index": String(i),
            onclick: () => {
              indexField.control.value = String(i);
              indexField.control.focus();
              replace(status, el("p", { class: "alert ok", role: "status" }, `Face ${i + 1} chosen (face index ${i}). Press the button again to ${action} it.`));
            },
          }, `Use face ${i + 1} (index ${i})`))));
        replace(host, picker);
      } catch (detectError) {
        if (detectError.name === "AbortError") throw detectError;
        host.append(el("p", { class: "muted" }, `The faces could not be drawn (${detectError.code || "ERROR"}); type a face index from 0 to ${count ? count - 1 : "n"}.`));
      }
    }
    const FACE_CODES = new Set(["MULTIPLE_FACES", "FACE_INDEX_OUT_OF_RANGE"]);
    /** "N faces were found; only face k was used" for answers of photos with several faces. */
    function facesNote(answer, verb) {
      const count = answer.faces_detected;
      if (!count || count < 2) return null;
      const index = answer.face?.face_index ?? 0;
      const which = index === 0 ? "the largest face (face index 0)" : `face index ${index} (face ${index + 1} by size)`;
      return el("p", { class: "alert warn faces-note", role: "note" },
        `${count} faces were found in this photo; only ${which} was ${verb}. To use another face, set “Face index”.`);
    }

    /** Draw one face of `file` (when the browser can decode it) into `host`. */
    async function drawFace(host, file, face, label) {
      if (!face) return;
      try {
        const image = await decodeImage(file, urls);
        host.append(faceCanvas(image, [face], { label, caption: label }));
      } catch {
        host.append(el("p", { class: "muted" }, "This browser cannot draw this image format."));
      }
    }

    // --- Enrol -------------------------------------------------------------------------------
    const enrolId = userIdField("User ID", { required: true });
    const generate = el("button", { type: "button", class: "secondary" }, "Generate UUID");
    generate.addEventListener("click", () => {
      enrolId.control.value = uuid4();
      enrolId.control.focus();
    });
    const enrolName = field("Name (optional, kept only in this browser tab)", "text", { name: "name", autocomplete: "off" });
    const enrolPhoto = field("Photo", "file", { name: "image", accept: "image/*", required: true });
    const enrolGroup = groupSelect("Group (optional)", "No group");
    const consent = field("The person consented to storing a template of their face", "checkbox", { name: "consent", required: true });
    const enrolIndex = faceIndexField("Empty: the photo must show exactly one face. With several faces, 0 is the largest, 1 the next, …");
    const enrolLiveness = livenessField();
    const enrolStatus = el("div", { class: "status", "aria-live": "polite" });
    const enrolResult = el("div", { class: "stack" });
    const enrolForm = el("form", { class: "stack", "aria-label": "Enrol a face" },
      el("div", { class: "row uuid-row" }, enrolId, generate),
      enrolName, enrolPhoto, dropZone(enrolPhoto.control), enrolIndex, enrolGroup, enrolLiveness, consent,
      el("button", { type: "submit" }, "Enrol"));
    clearOnSubmitAttempt(enrolForm, enrolStatus, enrolResult);
    enrolForm.addEventListener("submit", (event) => {
      event.preventDefault();
      clear(enrolResult);
      const file = enrolPhoto.control.files[0];
      busy(enrolForm, enrolStatus, async () => {
        let answer;
        try {
          answer = await api.post(`${BASE}/register`, {
            signal,
            form: {
              user_id: enrolId.control.value.trim(),
              image: file,
              consent: consent.control.checked,
              group_id: enrolGroup.control.value,
              face_index: enrolIndex.control.value,
              liveness_session: enrolLiveness.control.value.trim(),
            },
          });
        } catch (error) {
          if (!FACE_CODES.has(error.code)) throw error;
          await showFacePicker(enrolStatus, enrolResult, file, error, enrolIndex, "enrol");
          return;
        }
        // A liveness token is spent by a successful enrolment.
        enrolLiveness.control.value = "";
        enrolled.add(answer.user_id, enrolName.control.value.trim());
        refreshDatalist();
        replace(enrolStatus, el("div", { class: "alert ok", role: "status" }, `Enrolled face ${answer.face_id} for user ${answer.user_id}.`));
        replace(enrolResult,
          facts([
            ["User ID", el("code", { class: "enrolled-user" }, answer.user_id)],
            ["Face ID", answer.face_id],
            ["Faces in the photo", String(answer.faces_detected)],
            ["Face enrolled", answer.faces_detected > 1 ? `face index ${answer.face?.face_index ?? 0}` : null],
            ["Liveness session", answer.liveness ? (answer.liveness.session_id || "used") : null],
            ["Face quality", fixed(answer.face?.quality?.score)],
            ["Group", answer.group_id || "—"],
            ["Embedding model", modelPairs({ m: answer.embedding_model })[0][1]],
            ["Collection", answer.collection],
            ["Face chip kept", answer.face_chip_kept ? "yes" : "no"],
          ]),
          answer.companion_faces?.length ? el("p", { class: "alert warn" }, `${answer.companion_faces.length} other face(s) in the photo were not enrolled.`) : null);
        await drawFace(enrolResult, file, answer.face, "The enrolled face");
        if (answer.group_id) await refreshGroups();
      });
    });
    const enrolledTable = el("div");
    enrolledViews.push(() =>
      replace(enrolledTable, table(
        [
          ["Name", (u) => u.name || "—"],
          ["User ID", (u) => el("code", {}, u.user_id)],
          ["Enrolled", (u) => when(u.at)],
          ["Actions", (u) => el("div", { class: "actions" },
            el("button", { type: "button", class: "secondary", onclick: () => pickUser("verify", u.user_id) }, "Verify"),
            el("button", { type: "button", class: "secondary", onclick: () => pickUser("user", u.user_id) }, "Look up"))],
        ],
        enrolled.list(),
        { caption: "Users enrolled in this browser tab", empty: "No user enrolled in this tab yet." },
      )));
    const enrolPanel = el("div", { class: "grid two" },
      el("div", {}, enrolForm, enrolStatus),
      el("div", {}, enrolResult, el("h3", {}, "Enrolled in this tab"), enrolledTable));

    // --- Verify ------------------------------------------------------------------------------
    const verifyPhoto = field("Photo", "file", { name: "image", accept: "image/*", required: true });
    const against = field("Compare with", "select", { name: "against" }, [["user", "An enrolled user (user ID)"], ["image", "A second photo"]]);
    const verifyId = userIdField("User ID");
    const verifyPhoto2 = field("Second photo", "file", { name: "image2", accept: "image/*" });
    const mode = field("Mode", "select", { name: "mode" }, [["balanced", "Balanced"], ["strict", "Strict (fewer false matches)"]]);
    const verifyIndex = faceIndexField("Which face of the (first) photo; empty: the largest.");
    const verifyLiveness = livenessField();
    const syncAgainst = () => {
      const byUser = against.control.value === "user";
      verifyId.hidden = !byUser;
      verifyId.control.required = byUser;
      verifyPhoto2.hidden = byUser;
      verifyPhoto2.control.required = !byUser;
    };
    against.control.addEventListener("change", syncAgainst);
    syncAgainst();
    const verifyStatus = el("div", { class: "status", "aria-live": "polite" });
    const verifyResult = el("div", { class: "stack" });
    const verifyForm = el("form", { class: "stack", "aria-label": "Verify a face" },
      verifyPhoto, dropZone(verifyPhoto.control), verifyIndex, against, verifyId, verifyPhoto2, mode, verifyLiveness,
      el("button", { type: "submit" }, "Verify"));
    clearOnSubmitAttempt(verifyForm, verifyStatus, verifyResult);
    verifyForm.addEventListener("submit", (event) => {
      event.preventDefault();
      clear(verifyResult);
      const file = verifyPhoto.control.files[0];
      const byUser = against.control.value === "user";
      const file2 = byUser ? null : verifyPhoto2.control.files[0];
      busy(verifyForm, verifyStatus, async () => {
        let answer;
        try {
          answer = await api.post(`${BASE}/verify`, {
            signal,
            form: {
              image: file,
              user_id: byUser ? verifyId.control.value.trim() : null,
              image2: file2,
              mode: mode.control.value,
              face_index: verifyIndex.control.value,
              liveness_session: verifyLiveness.control.value.trim(),
            },
          });
        } catch (error) {
          if (!FACE_CODES.has(error.code)) throw error;
          await showFacePicker(verifyStatus, verifyResult, file, error, verifyIndex, "verify");
          return;
        }
        if (verifyLiveness.control.value.trim()) verifyLiveness.control.value = "";
        const name = answer.user_id ? enrolled.name(answer.user_id) : null;
        replace(verifyResult,
          el("p", { class: `verdict ${answer.match ? "match" : "no-match"}`, role: "status", "data-match": String(answer.match) },
            answer.match ? "✔ Match — the same person" : "✘ No match — not the same person"),
          facesNote(answer, "compared"),
          facts([
            ["Similarity", fixed(answer.similarity, 4)],
            ["Threshold", `${fixed(answer.threshold, 4)} (${answer.threshold_mode})`],
            ["Compared with", answer.user_id ? `user ${answer.user_id}${name ? ` (${name})` : ""}, ${answer.faces_compared} face(s)` : "the second photo"],
            ["Embedding model", modelPairs({ m: answer.embedding_model })[0][1]],
          ]));
        const pictures = el("div", { class: "grid two" });
        verifyResult.append(pictures);
        await drawFace(pictures, file, answer.face, "The face compared in the photo");
        if (file2) await drawFace(pictures, file2, answer.face2, "The face compared in the second photo");
      });
    });
    const verifyPanel = el("div", { class: "grid two" }, el("div", {}, verifyForm, verifyStatus), verifyResult);

    // --- Identify ----------------------------------------------------------------------------
    const identifyPhoto = field("Photo", "file", { name: "image", accept: "image/*", required: true });
    const topK = field("Top K", "number", { name: "top_k", value: "5", min: "1", max: "100", step: "1" });
    const identifyGroup = groupSelect("Search in group (optional)", "The whole gallery");
    const identifyThreshold = field("Threshold (optional)", "number", { name: "threshold", min: "-1", max: "1", step: "0.005",
      "data-hint": "Empty: the server's own threshold." });
    const identifyIndex = faceIndexField("Which face is searched; empty: the largest.");
    const identifyStatus = el("div", { class: "status", "aria-live": "polite" });
    const identifyResult = el("div", { class: "stack" });
    const identifyForm = el("form", { class: "stack", "aria-label": "Identify a face" },
      identifyPhoto, dropZone(identifyPhoto.control), el("div", { class: "row" }, topK, identifyThreshold), identifyIndex, identifyGroup,
      el("button", { type: "submit" }, "Identify"));
    clearOnSubmitAttempt(identifyForm, identifyStatus, identifyResult);
    identifyForm.addEventListener("submit", (event) => {
      event.preventDefault();
      clear(identifyResult);
      const file = identifyPhoto.control.files[0];
      busy(identifyForm, identifyStatus, async () => {
        let answer;
        try {
          answer = await api.post(`${BASE}/identify`, {
            signal,
            form: {
              image: file,
              top_k: topK.control.value,
              group_id: identifyGroup.control.value,
              threshold: identifyThreshold.control.value,
              face_index: identifyIndex.control.value,
            },
          });
        } catch (error) {
          if (!FACE_CODES.has(error.code)) throw error;
          await showFacePicker(identifyStatus, identifyResult, file, error, identifyIndex, "search");
          return;
        }
        const group = groups.find((g) => g.group_id === answer.group_id);
        replace(identifyResult,
          el("p", { class: `verdict ${answer.identified ? "match" : "no-match"}`, role: "status" },
            answer.identified ? `✔ Identified: ${answer.candidates.length} candidate(s)` : "✘ Unknown — no one above the threshold"),
          facesNote(answer, "searched"),
          facts([
            ["Searched", answer.group_id ? `group ${group ? group.group_name : answer.group_id}` : "the whole gallery"],
            ["Faces in the photo", answer.faces_detected !== undefined ? String(answer.faces_detected) : null],
            ["Gallery size", String(answer.gallery_size)],
            ["Threshold", fixed(answer.threshold, 4)],
            ["Top K", String(answer.top_k)],
            ["Embedding model", modelPairs({ m: answer.embedding_model })[0][1]],
          ]),
          table(
            [
              ["Rank", (c) => String(c.rank)],
              ["User ID", (c) => el("code", { class: "candidate-user" }, c.user_id)],
              ["Name (this tab)", (c) => enrolled.name(c.user_id) || "—"],
              ["Similarity", (c) => fixed(c.similarity, 4)],
              ["Face ID", (c) => c.face_id],
            ],
            answer.candidates,
            { caption: "Candidates, best first", empty: "No candidate above the threshold." },
          ));
        await drawFace(identifyResult, file, answer.face, "The query face");
      });
    });
    const identifyPanel = el("div", { class: "grid two" }, el("div", {}, identifyForm, identifyStatus), identifyResult);

    // --- Groups ------------------------------------------------------------------------------
    const groupName = field("Group name", "text", { name: "group_name", required: true, maxlength: "255" });
    const groupDescription = field("Description (optional)", "text", { name: "description" });
    const privacy = field("Privacy", "select", { name: "privacy_level" }, [["private", "Private"], ["friends", "Friends"], ["public", "Public"]]);
    const createStatus = el("div", { class: "status", "aria-live": "polite" });
    const createForm = el("form", { class: "stack", "aria-label": "Create a group" },
      groupName, groupDescription, privacy, el("button", { type: "submit" }, "Create group"));
    const listStatus = el("div", { class: "status", "aria-live": "polite" });
    const groupsTable = el("div");
    const detail = el("div", { class: "stack group-detail" });
    let openGroupId = null;

    createForm.addEventListener("submit", (event) => {
      event.preventDefault();
      busy(createForm, createStatus, async () => {
        const answer = await api.post(`${BASE}/groups`, {
          signal,
          json: { group_name: groupName.control.value.trim(), description: groupDescription.control.value.trim() || null, privacy_level: privacy.control.value },
        });
        replace(createStatus, el("div", { class: "alert ok", role: "status" }, `Created group ${answer.group.group_name}.`));
        groupName.control.value = "";
        groupDescription.control.value = "";
        await refreshGroups();
        await selectGroup(answer.group.group_id);
      });
    });
    const refreshButton = el("button", { type: "button", class: "secondary" }, "Refresh groups");
    refreshButton.addEventListener("click", () => busy(null, listStatus, refreshGroups));
    groupsChanged.push(() =>
      replace(groupsTable, table(
        [
          ["Name", (g) => g.group_name],
          ["Faces", (g) => String(g.face_count)],
          ["Privacy", (g) => g.privacy_level],
          ["Created", (g) => when(g.created_at)],
          ["Group ID", (g) => el("code", {}, g.group_id)],
          ["Actions", (g) => el("div", { class: "actions" },
            el("button", { type: "button", class: "secondary", "aria-label": `Members of ${g.group_name}`, onclick: () => busy(null, listStatus, () => selectGroup(g.group_id)) }, "Members"),
            el("button", { type: "button", class: "danger", "aria-label": `Delete ${g.group_name}`, onclick: (e) => askDeleteGroup(g, e.currentTarget) }, "Delete…"))],
        ],
        groups,
        { caption: `Groups of this tenant (${groups.length})`, empty: "No group yet." },
      )));

    function askDeleteGroup(group, opener) {
      confirmInline(listStatus, `Delete the group “${group.group_name}”? Its members stay enrolled.`, "Delete group", opener, () =>
        busy(null, listStatus, async () => {
          await api.del(`${BASE}/groups/${group.group_id}`, { signal });
          if (openGroupId === group.group_id) {
            openGroupId = null;
            clear(detail);
          }
          await refreshGroups();
          replace(listStatus, el("div", { class: "alert ok", role: "status" }, `Deleted group ${group.group_name}.`));
        }));
    }

    selectGroup = async (groupId) => {
      const answer = await api.get(`${BASE}/groups/${groupId}`, {}, { signal });
      openGroupId = groupId;
      showGroup(answer.group);
    };
    function showGroup(group) {
      // Redrawing the same group (its members reloaded) keeps what was being typed in "add".
      const typing = detail.dataset.group === group.group_id ? detail.querySelector("form.add-member input")?.value : "";
      const addId = userIdField("User ID to add", { required: true });
      addId.control.value = typing || "";
      const memberStatus = el("div", { class: "status", "aria-live": "polite" });
      const addForm = el("form", { class: "row add-member", "aria-label": "Add a member" }, addId, el("button", { type: "submit" }, "Add to group"));
      addForm.addEventListener("submit", (event) => {
        event.preventDefault();
        busy(addForm, memberStatus, async () => {
          const answer = await api.post(`${BASE}/groups/${group.group_id}/members`, { signal, json: { user_ids: [addId.control.value.trim()] } });
          addId.control.value = "";
          showGroup(answer.group);
          await refreshGroups();
          detail.querySelector(".status").append(el("div", { class: "alert ok", role: "status" }, "Member added."));
        });
      });
      detail.dataset.group = group.group_id;
      replace(detail,
        el("h3", { tabindex: "-1" }, `Group “${group.group_name}”`),
        facts([["Group ID", el("code", { class: "open-group" }, group.group_id)], ["Description", group.description || "—"],
          ["Privacy", group.privacy_level], ["Faces", String(group.face_count)]]),
        table(
          [
            ["User ID", (m) => el("code", { class: "member-user" }, m.user_id)],
            ["Name (this tab)", (m) => enrolled.name(m.user_id) || "—"],
            ["Faces", (m) => String(m.face_ids.length)],
            ["Actions", (m) => el("button", { type: "button", class: "secondary", "aria-label": `Remove ${m.user_id}`, onclick: () =>
              busy(null, memberStatus, async () => {
                const answer = await api.del(`${BASE}/groups/${group.group_id}/members/${m.user_id}`, { signal });
                showGroup(answer.group);
                await refreshGroups();
                detail.querySelector(".status").append(el("div", { class: "alert ok", role: "status" }, "Member removed."));
              }) }, "Remove")],
          ],
          group.members,
          { caption: "Members", empty: "No member yet." },
        ),
        addForm,
        memberStatus);
    }
    const groupsPanel = el("div", { class: "grid two" },
      el("div", { class: "stack" }, el("h3", {}, "Create a group"), createForm, createStatus),
      el("div", { class: "stack" }, el("div", { class: "row" }, el("h3", {}, "Groups"), refreshButton), listStatus, groupsTable, detail));

    // --- User --------------------------------------------------------------------------------
    const lookupId = userIdField("User ID", { required: true });
    const lookupStatus = el("div", { class: "status", "aria-live": "polite" });
    const userResult = el("div", { class: "stack" });
    const lookupForm = el("form", { class: "row", "aria-label": "Look up a user" }, lookupId, el("button", { type: "submit" }, "Look up"));
    lookupForm.addEventListener("submit", (event) => {
      event.preventDefault();
      clear(userResult);
      busy(lookupForm, lookupStatus, async () => {
        const user = await api.get(`${BASE}/users/${encodeURIComponent(lookupId.control.value.trim())}`, {}, { signal });
        const erase = el("button", { type: "button", class: "danger" }, "Erase this user…");
        erase.addEventListener("click", () =>
          confirmInline(userResult.querySelector(".confirm-host"), `Erase user ${user.user_id}: their faces, templates, sessions and group memberships? This cannot be undone.`, "Erase permanently", erase, () =>
            busy(null, lookupStatus, async () => {
              const answer = await api.del(`${BASE}/users/${user.user_id}`, { signal });
              enrolled.remove(user.user_id);
              refreshDatalist();
              replace(userResult, el("div", { class: "alert ok", role: "status" },
                `Erased user ${answer.user_id}: ${answer.faces_removed} face(s), ${answer.vectors_removed} vector(s), ${answer.recognition_sessions_removed} session(s) removed.`));
              await refreshGroups();
            })));
        replace(userResult,
          facts([
            ["User ID", el("code", {}, user.user_id)],
            ["Name (this tab)", enrolled.name(user.user_id) || "—"],
            ["Consent", user.consent_given ? `given ${when(user.consent_timestamp)}` : "not given"],
            ["Created", when(user.created_at)],
          ]),
          table(
            [
              ["Face ID", (f) => f.face_id],
              ["Status", (f) => f.status],
              ["Quality", (f) => fixed(f.quality)],
              ["Model", (f) => `${f.embedding_model.name} ${f.embedding_model.version}`],
              ["Chip kept", (f) => (f.chip_kept ? "yes" : "no")],
              ["Enrolled", (f) => when(f.created_at)],
            ],
            user.faces,
            { caption: "Faces", empty: "No face." },
          ),
          el("div", { class: "actions" }, erase),
          el("div", { class: "confirm-host" }),
          rawJson(user));
      });
    });
    const userPanel = el("div", { class: "stack" }, lookupForm, lookupStatus, userResult);

    // --- Tabs --------------------------------------------------------------------------------
    const tabs = tabSet([
      ["enrol", "Enrol", enrolPanel],
      ["verify", "Verify", verifyPanel],
      ["identify", "Identify", identifyPanel],
      ["groups", "Groups", groupsPanel],
      ["user", "User", userPanel],
    ]);
    function pickUser(tab, userId) {
      if (tab === "verify") {
        against.control.value = "user";
        syncAgainst();
        verifyId.control.value = userId;
      } else {
        lookupId.control.value = userId;
      }
      tabs.select(tab, true);
    }

    root.classList.add("recognition-view");
    root.append(datalist, tabs.node);
    // A liveness session token handed over by the Liveness view (or #/recognition?liveness=...).
    const handed = takeLivenessToken();
    if (handed) {
      enrolLiveness.control.value = handed;
      tabs.select("enrol", false);
      replace(enrolStatus, el("p", { class: "alert ok", role: "status" },
        "The liveness session token was filled in from the Liveness view: choose the user, the same person's photo and consent, then Enrol."));
    }
    refreshDatalist();
    groupsChanged.forEach((update) => update());
    busy(null, listStatus, refreshGroups);
    return () => urls.forEach((u) => URL.revokeObjectURL(u));
  },
};

/** The token handed over by the Liveness view (read once), or ?liveness= in the URL fragment. */
function takeLivenessToken() {
  let token = null;
  try {
    token = sessionStorage.getItem(LIVENESS_HANDOFF);
    sessionStorage.removeItem(LIVENESS_HANDOFF);
  } catch {
    token = null;
  }
  const query = location.hash.split("?")[1];
  if (!token && query) token = new URLSearchParams(query).get("liveness");
  return token ? token.trim() : null;
}

/** Tabs: [[key, title, panel], ...] -> {node, select(key, focus)}. Arrow keys, Home, End move. */
function tabSet(items) {
  const buttons = [];
  const panels = [];
  const list = el("div", { role: "tablist", class: "tabs", "aria-label": "Recognition tasks" });
  for (const [key, title, content] of items) {
    const tabId = `recognition-tab-${key}`;
    const panelId = `recognition-panel-${key}`;
    const button = el("button", { type: "button", role: "tab", id: tabId, "aria-controls": panelId, "data-tab": key }, title);
    const panel = el("section", { role: "tabpanel", id: panelId, "aria-labelledby": tabId, class: "card", tabindex: "0" }, el("h2", {}, title), content);
    button.addEventListener("click", () => select(key, false));
    buttons.push(button);
    panels.push(panel);
    list.append(button);
  }
  list.addEventListener("keydown", (event) => {
    const index = buttons.indexOf(document.activeElement);
    if (index < 0) return;
    let next = null;
    if (event.key === "ArrowRight") next = (index + 1) % buttons.length;
    else if (event.key === "ArrowLeft") next = (index - 1 + buttons.length) % buttons.length;
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = buttons.length - 1;
    if (next === null) return;
    event.preventDefault();
    select(buttons[next].dataset.tab, true);
  });
  function select(key, focus) {
    buttons.forEach((button, i) => {
      const on = button.dataset.tab === key;
      button.setAttribute("aria-selected", String(on));
      button.tabIndex = on ? 0 : -1;
      panels[i].hidden = !on;
      if (on && focus) button.focus();
    });
  }
  select(items[0][0], false);
  return { node: el("div", {}, list, panels), select };
}

/** An in-page confirmation (not window.confirm): a message, the action's button and Cancel. */
function confirmInline(host, message, action, opener, onConfirm) {
  const yes = el("button", { type: "button", class: "danger" }, action);
  const no = el("button", { type: "button", class: "secondary" }, "Cancel");
  const box = el("div", { class: "confirm-box", role: "group", "aria-label": "Confirm" }, el("p", { role: "alert" }, message), el("div", { class: "actions" }, yes, no));
  yes.addEventListener("click", () => {
    box.remove();
    onConfirm();
  });
  no.addEventListener("click", () => {
    box.remove();
    opener?.focus();
  });
  replace(host, box);
  no.focus();
}

/** The users enrolled in this browser tab (per login), newest first. */
function enrolledStore(api) {
  const c = api.credentials();
  const who = c ? (c.kind === "key" ? `key:${c.secret.slice(0, 12)}` : `account:${c.username}`) : "anonymous";
  const key = `facesocial.console.enrolled.${who}`;
  const read = () => {
    try {
      return JSON.parse(sessionStorage.getItem(key) || "[]");
    } catch {
      return [];
    }
  };
  const write = (items) => sessionStorage.setItem(key, JSON.stringify(items.slice(0, 50)));
  return {
    list: read,
    name: (userId) => read().find((u) => u.user_id === userId)?.name || null,
    add(userId, name) {
      const items = read().filter((u) => u.user_id !== userId);
      const previous = read().find((u) => u.user_id === userId);
      items.unshift({ user_id: userId, name: name || previous?.name || "", at: new Date().toISOString() });
      write(items);
    },
    remove(userId) {
      write(read().filter((u) => u.user_id !== userId));
    },
  };
}
