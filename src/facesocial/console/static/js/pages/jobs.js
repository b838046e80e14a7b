// Jobs: this tenant's asynchronous jobs (videos, queued images), their progress, results and
// cancellation; refreshed every 2 s while any job is pending or processing.
import { el, field, section, replace, clear, showError, busy, progress, table, when, toast } from "../ui.js";

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
          replace(
            list,
            table(
              [
                ["Job", (r) => el("code", { class: "job-id" }, r.job.job_id)],
                ["Type", (r) => r.job.kind],
                ["Status", (r) => statusBadge(r.job.status)],
                ["Priority", (r) => String(r.job.priority)],
                ["Progress", (r) => r.bar],
                [
                  "Times",
                  (r) =>
                    el(
                      "div",
                      { class: "job-times" },
                      el("div", {}, `created ${when(r.job.created_at)}`),
                      r.job.started_at ? el("div", {}, `started ${when(r.job.started_at)}`) : null,
                      r.job.completed_at ? el("div", {}, `ended ${when(r.job.completed_at)}`) : null,
                      r.job.estimated_completion ? el("div", {}, `expected ${when(r.job.estimated_completion)}`) : null,
                      el("div", { class: "muted" }, `attempt ${r.job.attempts} of ${r.job.max_attempts}`),
                    ),
                ],
                [
                  "Result",
                  (r) =>
                    el(
                      "div",
                      {},
                      r.link ? el("a", { href: r.link[1] }, r.link[0]) : r.job.result ? el("code", {}, JSON.stringify(r.job.result)) : "—",
                      r.job.error ? el("div", { class: "alert error" }, el("strong", {}, r.job.error.code), " ", r.job.error.message) : null,
                    ),
                ],
                ["Actions", (r) => r.cancel || "—"],
              ],
              rows,
              { caption: "Jobs (newest first)", empty: "No job matches." },
            ),
          );
          list.querySelectorAll("tbody tr").forEach((tr, i) => {
            tr.dataset.jobId = rows[i].job.job_id;
            tr.dataset.status = rows[i].job.status;
          });
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
    };
  },
};
