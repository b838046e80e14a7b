// Jobs: this tenant's asynchronous jobs (videos, queued images), their progress, results and
// cancellation; refreshed every 2 s while any job is pending or processing.
import { el, field, section, replace, clear, showError, busy, progress, table, facts, when, toast } from "../ui.js";

const STATUSES = [
  ["", "Any status"],
  ["pending", "pending"],
  ["processing", "processing"],
  ["completed", "completed"],
  ["failed", "failed"],
  ["cancelled", "cancelled"],
];
const ACTIVE = new Set(["pending", "processing"]);
const REFRESH_MS = 2000;

/** Where a job's result can be seen, when its kind is known: [text, href] or null. */
function resultLink(job) {
  const r = job.result || {};
  switch (job.kind) {
    case "deepfake.video":
      return r.analysis_id ? [`Deepfake analysis ${r.analysis_id}`, `#/forensics?analysis=${encodeURIComponent(r.analysis_id)}`] : null;
    case "ai_detection.image":
      return r.result_id ? [`AI-image report ${r.result_id}`, `#/forensics?result=${encodeURIComponent(r.result_id)}`] : null;
    case "counting.video":
      return r.video_id ? [`Counting video ${r.video_id}`, "#/counting"] : null;
    case "attention.video":
      return ["Attention recordings", "#/attention"];
    case "antispoofing.video":
      return r.check_id ? [`Liveness check ${r.check_id}${r.is_live === undefined ? "" : r.is_live ? " (live)" : " (spoof)"}`, "#/liveness"] : null;
    default:
      return null;
  }
}

// What each kind of job does, in words.
const KINDS = {
  "deepfake.video": "Deepfake analysis of a video",
  "ai_detection.image": "AI-generated-image report",
  "counting.video": "People counting in a video",
  "attention.video": "Attention analysis of a recording",
  "antispoofing.video": "Liveness check of a video",
};
// Result/payload keys that name what a job is about (a file or a resource), first found wins.
const NAME_KEYS = ["filename", "file_name", "original_filename", "video_name", "name", "title"];
const RESOURCE_KEYS = [["analysis_id", "analysis"], ["result_id", "report"], ["video_id", "video"], ["recording_id", "recording"], ["check_id", "check"], ["meeting_id", "meeting"]];
// Phones get one card per job instead of the table.
const PHONE = "(max-width: 720px)";

/** "job_7a4d8071…": the prefix and the first 8 characters after it (the whole id when short). */
export function shortId(id) {
  const text = String(id);
  const cut = text.indexOf("_") + 1;
  return text.length > cut + 8 ? `${text.slice(0, cut + 8)}…` : text;
}

/** What the job is about: the kind in words, plus its file or resource when the answer names one. */
function about(job) {
  const bags = [job.result || {}, job.payload || {}, job.resource || {}];
  let name = null;
  for (const bag of bags) {
    for (const key of NAME_KEYS) {
      if (typeof bag[key] === "string" && bag[key]) {
        name = bag[key];
        break;
      }
    }
    if (name) break;
  }
  let resource = null;
  for (const [key, word] of RESOURCE_KEYS) {
    const value = bags.map((b) => b[key]).find((v) => v);
    if (value) {
      resource = `${word} ${value}`;
      break;
    }
  }
  return { kind: KINDS[job.kind] || job.kind, name, resource };
}

/** The job id: short on screen, in full in the title, a disclosure (selectable) and a Copy button. */
function jobIdCell(job) {
  const full = el("code", { class: "job-id-full" }, job.job_id);
  const copy = el("button", {
    type: "button",
    class: "secondary copy-id",
    "aria-label": `Copy job id ${job.job_id}`,
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(job.job_id);
        toast(`Copied ${job.job_id}.`);
      } catch {
        // No clipboard here (an insecure origin): select the id so Ctrl+C copies it.
        const range = document.createRange();
        range.selectNodeContents(full);
        const selection = getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        toast("Select-all done: press Ctrl+C to copy the id.");
      }
    },
  }, "Copy id");
  return el(
    "details",
    { class: "job-id-details" },
    el("summary", { title: job.job_id, "aria-label": `Job ${job.job_id}` }, el("code", { class: "job-id" }, shortId(job.job_id))),
    el("div", { class: "job-id-more" }, full, copy),
  );
}

/** What the job is about, as inline text (fits a table cell and a card's heading). */
function aboutText(job, { kindWords = true } = {}) {
  const a = about(job);
  return el(
    "span",
    { class: "job-about" },
    kindWords ? el("span", { class: "job-kind" }, a.kind) : null,
    a.name ? el("span", { class: "job-file" }, a.name) : null,
    !a.name && a.resource ? el("span", { class: "job-resource" }, a.resource) : null,
  );
}

function statusBadge(status) {
  const kind = status === "completed" ? "ok" : status === "failed" || status === "cancelled" ? "bad" : "warn";
  return el("span", { class: `badge ${kind}` }, status);
}

export default {
  path: "jobs",
  title: "Jobs",
  render(root, { api, signal }) {
    const filter = field("Status", "select", { name: "status" }, STATUSES);
    const perPage = field("Per page", "select", { name: "limit", value: "20" }, [["10", "10"], ["20", "20"], ["50", "50"], ["100", "100"]]);
    const status = el("div", { class: "status" });
    const live = el("p", { class: "muted jobs-refresh", role: "status", "aria-live": "polite" });
    const list = el("div", { class: "jobs-list" });
    const prev = el("button", { type: "button", class: "secondary" }, "Previous page");
    const next = el("button", { type: "button", class: "secondary" }, "Next page");
    const refresh = el("button", { type: "button", class: "secondary" }, "Refresh");
    const pageInfo = el("span", { class: "muted" });
    let offset = 0;
    let timer = null;
    let stopped = false;
    let loading = null;
    let lastRows = [];
    const phone = window.matchMedia ? window.matchMedia(PHONE) : null;

    const times = (job) =>
      el(
        "div",
        { class: "job-times" },
        el("div", {}, `created ${when(job.created_at)}`),
        job.started_at ? el("div", {}, `started ${when(job.started_at)}`) : null,
        job.completed_at ? el("div", {}, `ended ${when(job.completed_at)}`) : null,
        job.estimated_completion && ACTIVE.has(job.status) ? el("div", {}, `expected ${when(job.estimated_completion)}`) : null,
        el("div", { class: "muted" }, `attempt ${job.attempts} of ${job.max_attempts}`),
      );
    const resultOf = (r) =>
      el(
        "div",
        { class: "job-result" },
        r.link ? el("a", { href: r.link[1] }, r.link[0]) : r.job.result ? el("code", {}, JSON.stringify(r.job.result)) : "—",
        r.job.error ? el("div", { class: "alert error" }, el("strong", {}, r.job.error.code), " ", r.job.error.message) : null,
      );

    /** The jobs as a table (wide screens) or as one card per job (phones). */
    function draw() {
      const rows = lastRows;
      if (phone?.matches) {
        replace(
          list,
          rows.length === 0
            ? el("p", { class: "muted" }, "No job matches.")
            : el("ul", { class: "job-cards", "aria-label": "Jobs (newest first)" }, rows.map((r) =>
              el("li", { class: "job-card card", dataset: { jobId: r.job.job_id, status: r.job.status } },
                el("h3", {}, aboutText(r.job)),
                facts([
                  ["Job", jobIdCell(r.job)],
                  ["Type", r.job.kind],
                  ["Status", statusBadge(r.job.status)],
                  ["Priority", String(r.job.priority)],
                  ["Progress", r.bar],
                  ["Times", times(r.job)],
                  ["Result", resultOf(r)],
                ]),
                r.cancel ? el("div", { class: "actions" }, r.cancel) : null))),
        );
        return;
      }
      replace(
        list,
        table(
          [
            ["Job", (r) => el("div", { class: "job-cell" }, jobIdCell(r.job), aboutText(r.job))],
            ["Type", (r) => r.job.kind],
            ["Status", (r) => statusBadge(r.job.status)],
            ["Priority", (r) => String(r.job.priority)],
            ["Progress", (r) => r.bar],
            ["Times", (r) => times(r.job)],
            ["Result", resultOf],
            ["Actions", (r) => r.cancel || "—"],
          ],
          rows,
          { caption: "Jobs (newest first)", empty: "No job matches." },
        ),
      );
      list.querySelector("table")?.classList.add("jobs-table");
      list.querySelectorAll("tbody tr").forEach((tr, i) => {
        tr.dataset.jobId = rows[i].job.job_id;
        tr.dataset.status = rows[i].job.status;
      });
    }
    const redraw = () => draw();
    phone?.addEventListener?.("change", redraw);

    function schedule(active) {
      clearTimeout(timer);
      timer = null;
      if (stopped) return;
      if (active) {
        live.textContent = "Refreshing every 2 s while jobs are active.";
        timer = setTimeout(() => load(), REFRESH_MS);
      } else {
        live.textContent = "No active job on this page: not refreshing.";
      }
    }

    function row(job) {
      const bar = progress(`Progress of ${job.job_id}`);
      bar.set(job.progress_percentage ?? 0, job.status);
      const link = resultLink(job);
      const cancel = ACTIVE.has(job.status)
        ? el("button", {
          type: "button",
          class: "danger",
          "aria-label": `Cancel job ${job.job_id}`,
          onclick: (event) => {
            event.target.disabled = true;
            busy(null, status, async () => {
              await api.del(`/api/v1/jobs/${encodeURIComponent(job.job_id)}`, { signal });
              toast(`Job ${job.job_id} cancelled.`);
              await load();
            }).finally(() => {
              event.target.disabled = false;
            });
          },
        }, "Cancel")
        : null;
      return { job, bar, link, cancel };
    }

    async function load() {
      if (loading) return loading;
      loading = (async () => {
        try {
          const limit = Number(perPage.control.value);
          const answer = await api.get("/api/v1/jobs", { status: filter.control.value, limit, offset }, { signal });
          if (stopped) return;
          clear(status);
          const total = answer.total || 0;
          const pages = Math.max(1, Math.ceil(total / limit));
          const pageNo = Math.floor(offset / limit) + 1;
          pageInfo.textContent = `Page ${pageNo} of ${pages} (${total} job${total === 1 ? "" : "s"})`;
          prev.disabled = offset <= 0;
          next.disabled = offset + limit >= total;
          const rows = (answer.jobs || []).map(row);
          lastRows = rows;
          draw();
          schedule(rows.some((r) => ACTIVE.has(r.job.status)));
        } catch (error) {
          if (error.name === "AbortError" || stopped) return;
          showError(status, error);
          // Keep trying while the view is open (a restarting server comes back).
          schedule(true);
        } finally {
          loading = null;
        }
      })();
      return loading;
    }

    filter.control.addEventListener("change", () => {
      offset = 0;
      load();
    });
    perPage.control.addEventListener("change", () => {
      offset = 0;
      load();
    });
    prev.addEventListener("click", () => {
      offset = Math.max(0, offset - Number(perPage.control.value));
      load();
    });
    next.addEventListener("click", () => {
      offset += Number(perPage.control.value);
      load();
    });
    refresh.addEventListener("click", () => load());

    root.append(
      section(
        "Your jobs",
        el("div", { class: "grid two" }, filter, perPage),
        status,
        live,
        list,
        el("div", { class: "row" }, prev, pageInfo, next, refresh),
      ),
    );
    load();
    return () => {
      stopped = true;
      clearTimeout(timer);
      phone?.removeEventListener?.("change", redraw);
    };
  },
};
