// Models: the model registry (serving slots, versions, deployments; deploy / canary / promote /
// rollback with an inline confirmation), drift checks and performance roll-ups of a slot, and
// A/B experiments (list, create, start, stop, results). Every route here needs the operator's
// API key: any other credential gets 403 FORBIDDEN, shown as one clear message.
import { el, field, replace, section, table, facts, showError, busy, toast, when, rawJson } from "../ui.js";

const MODELS = "/api/v1/models";
const EXPERIMENTS = "/api/v1/experiments";

const fmt = (value, digits = 3) =>
  value === null || value === undefined || Number.isNaN(Number(value)) ? "—" : Number(value).toFixed(digits);
const pvalue = (value) =>
  value === null || value === undefined ? "—" : Number(value) < 0.0001 ? Number(value).toExponential(2) : Number(value).toFixed(4);

function badge(text, kind) {
  return el("span", { class: `badge ${kind || ""}` }, text);
}

function stageBadge(stage) {
  const kind = { production: "ok", staging: "warn", archived: "bad" }[stage] || "";
  return badge(stage || "—", kind);
}

/** The answer to a non-operator caller: what the view needs and how to get it. */
function operatorNeeded(root, error) {
  replace(
    root,
    el(
      "div",
      { class: "alert warn models-forbidden", role: "alert" },
      el("strong", {}, "This view needs an operator key. "),
      "The model registry and A/B experiments route every tenant's requests, so only the installation's ",
      "operator API key may read or change them. Log in with the operator key (printed on the first start, ",
      "or made with ",
      el("code", {}, "facesocial keys create --role operator"),
      ").",
    ),
    el("p", { class: "muted" }, `The server answered ${error.status} ${error.code}: ${error.message}`),
  );
}

/**
 * An inline confirmation (no window.confirm: it works the same with a keyboard, a screen reader
 * and a test driver). Shows `message` with Confirm / Cancel in `host`; `action` runs on Confirm.
 */
function confirmInline(host, message, action, { label = "Confirm", danger = false } = {}) {
  const status = el("div", { class: "status" });
  const yes = el("button", { type: "button", class: danger ? "danger" : "" }, label);
  const no = el("button", { type: "button", class: "secondary" }, "Cancel");
  const box = el(
    "div",
    { class: "confirm card", role: "group", "aria-label": "Confirm the action" },
    el("p", {}, message),
    el("div", { class: "row" }, yes, no),
    status,
  );
  no.addEventListener("click", () => box.remove());
  yes.addEventListener("click", async () => {
    const done = await busy(box, status, async () => {
      await action();
      return true;
    });
    if (done) box.remove();
  });
  host.replaceChildren(box);
  yes.focus();
}

function modelsTable(models, onOpen) {
  return table(
    [
      ["Slot", (m) => el("code", {}, m.model_id)],
      ["Name", (m) => m.name || "—"],
      ["Production", (m) => m.production || "—"],
      ["Canary", (m) => (m.canary ? `${m.canary.version} (${m.canary.percent} %)` : "—")],
      ["Experiment", (m) => (m.experiment ? m.experiment.name : "—")],
      ["Versions", (m) => String((m.versions || []).length)],
      ["", (m) => el("button", { type: "button", class: "secondary", onclick: () => onOpen(m.model_id) }, `Open ${m.model_id}`)],
    ],
    models,
    { caption: "Serving slots", empty: "No model slots are registered." },
  );
}

export default {
  path: "models",
  title: "Models",
  render(root, { api, signal }) {
    const status = el("div", { class: "status", role: "status" });
    const slotsHost = el("div", { class: "models-slots" }, el("p", { class: "muted" }, "Loading the registry…"));
    const detailHost = el("div", { class: "models-detail" });
    const experimentsHost = el("div", { class: "models-experiments" });
    root.append(status, section("Model slots", slotsHost), detailHost, experimentsHost);
    let models = [];

    async function loadModels() {
      const answer = await api.get(MODELS, {}, { signal });
      models = answer.models || [];
      replace(slotsHost, modelsTable(models, openSlot));
      return models;
    }

    // --- a slot: versions, actions, history, drift, performance ------------------------------
    async function openSlot(slot) {
      const model = (await api.get(`${MODELS}/${encodeURIComponent(slot)}`, {}, { signal })).model;
      const confirmHost = el("div", { class: "models-confirm", "aria-live": "polite" });
      const actionStatus = el("div", { class: "status" });

      const after = async (answer, what) => {
        toast(`${what}: ${slot} now serves ${answer.model.production}${answer.model.canary ? ` (canary ${answer.model.canary.version} ${answer.model.canary.percent} %)` : ""}`);
        await loadModels();
        await openSlot(slot);
      };
      const post = (path, json) => api.post(`${MODELS}/${encodeURIComponent(slot)}${path}`, { json, signal });

      const versionRows = model.versions || [];
      const versionsTable = table(
        [
          ["Version", (v) => el("code", {}, v.version)],
          ["Stage", (v) => stageBadge(v.stage)],
          ["Canary %", (v) => (v.canary_percent ? String(v.canary_percent) : "—")],
          ["Installed", (v) => (v.is_installed ? "yes" : "no")],
          ["Size (MB)", (v) => fmt(v.file_size_mb, 1)],
          ["Accuracy", (v) => fmt(v.validation_accuracy)],
          ["Source", (v) => v.source || "—"],
          [
            "Actions",
            (v) =>
              v.version === model.production
                ? el("span", { class: "muted" }, "serving")
                : el(
                    "div",
                    { class: "row" },
                    el("button", {
                      type: "button",
                      onclick: () =>
                        confirmInline(
                          confirmHost,
                          `Deploy ${v.version} as production of ${slot}? Every tenant's ${slot} requests move to it now.`,
                          async () => after(await post("/deploy", { version: v.version }), "Deployed"),
                          { label: `Deploy ${v.version}` },
                        ),
                    }, `Deploy ${v.version}`),
                    el("button", {
                      type: "button",
                      class: "secondary",
                      onclick: () => canaryForm(v.version),
                    }, `Canary ${v.version}…`),
                  ),
          ],
        ],
        versionRows,
        { caption: `Versions of ${slot}` },
      );

      function canaryForm(version) {
        const percent = field("Share of callers (%)", "number", { min: 1, max: 99, step: 1, value: 10, required: true });
        const form = el("form", { class: "row" }, percent, el("button", { type: "submit" }, "Review canary"));
        form.addEventListener("submit", (event) => {
          event.preventDefault();
          const value = Number(percent.control.value);
          confirmInline(
            confirmHost,
            `Serve ${version} to ${value} % of ${slot}'s callers (stable per caller)?`,
            async () => after(await post("/canary", { version, percent: value }), "Canary set"),
            { label: "Start canary" },
          );
        });
        replace(confirmHost, form);
        percent.control.focus();
      }

      const canaryActions = model.canary
        ? el(
            "div",
            { class: "row" },
            el("button", {
              type: "button",
              onclick: () =>
                confirmInline(
                  confirmHost,
                  `Promote the canary ${model.canary.version} to production of ${slot}? ${model.production} goes to staging.`,
                  async () => after(await post("/promote", {}), "Promoted"),
                  { label: "Promote canary" },
                ),
            }, "Promote canary"),
            el("button", {
              type: "button",
              class: "secondary",
              onclick: () =>
                confirmInline(
                  confirmHost,
                  `End the canary of ${model.canary.version}? ${model.production} serves everyone again.`,
                  async () => after(await api.del(`${MODELS}/${encodeURIComponent(slot)}/canary`, { signal }), "Canary ended"),
                  { label: "End canary" },
                ),
            }, "End canary"),
          )
        : null;

      const rollbackVersion = field(
        "Version to serve again",
        "select",
        { required: true },
        versionRows.filter((v) => v.version !== model.production).map((v) => [v.version, `${v.version} (${v.stage})`]),
      );
      const rollbackReason = field("Reason", "text", { required: true, maxlength: 500 });
      const rollbackForm = el(
        "form",
        { class: "row" },
        rollbackVersion,
        rollbackReason,
        el("button", { type: "submit", class: "danger" }, "Review rollback"),
      );
      rollbackForm.addEventListener("submit", (event) => {
        event.preventDefault();
        const version = rollbackVersion.control.value;
        const reason = rollbackReason.control.value.trim();
        confirmInline(
          confirmHost,
          `Roll ${slot} back to ${version} now (any canary ends)? Reason: ${reason}`,
          async () => after(await post("/rollback", { version, reason }), "Rolled back"),
          { label: "Roll back", danger: true },
        );
      });

      const historyHost = el("div", {}, el("p", { class: "muted" }, "Loading…"));
      const driftHost = el("div", {});
      const driftStatus = el("div", { class: "status" });
      const perfHost = el("div", {});
      const perfStatus = el("div", { class: "status" });
      const driftButton = el("button", { type: "submit" }, "Run drift check");
      const driftForm = el("form", { class: "row" }, driftButton);
      driftForm.addEventListener("submit", (event) => {
        event.preventDefault();
        busy(driftForm, driftStatus, async () => {
          const answer = await api.post(`${MODELS}/${encodeURIComponent(slot)}/drift/check`, { json: {}, signal });
          replace(driftHost, driftView(answer.drift, "Latest check"));
          toast(`Drift check of ${slot}: severity ${answer.drift.severity}`);
        });
      });
      const perfButton = el("button", { type: "submit" }, "Roll up the last 24 hours");
      const perfForm = el("form", { class: "row" }, perfButton);
      perfForm.addEventListener("submit", (event) => {
        event.preventDefault();
        busy(perfForm, perfStatus, async () => {
          const answer = await api.get(`${MODELS}/${encodeURIComponent(slot)}/performance`, { window_hours: 24, limit: 20 }, { signal });
          replace(perfHost, perfTable(answer.metrics));
        });
      });

      replace(
        detailHost,
        section(
          `Slot ${slot}`,
          facts([
            ["Name", model.name],
            ["Type", model.type],
            ["Production", model.production || "—"],
            ["Canary", model.canary ? `${model.canary.version} (${model.canary.percent} %)` : "none"],
            ["Experiment", model.experiment ? `${model.experiment.name} (${model.experiment.traffic_split_percent} % challenger)` : "none"],
            ["Updated", when(model.updated_at)],
          ]),
          versionsTable,
          canaryActions,
          el("h3", {}, "Roll back"),
          versionRows.length > 1 ? rollbackForm : el("p", { class: "muted" }, "One version only: nothing to roll back to."),
          confirmHost,
          actionStatus,
          el("h3", {}, "Deployment history"),
          historyHost,
          el("h3", {}, "Drift"),
          el("p", { class: "muted" }, "Current 24 hours against the 7 days before: PSI and Kolmogorov–Smirnov per feature; high or worse raises an alert."),
          driftForm,
          driftStatus,
          driftHost,
          el("h3", {}, "Performance"),
          perfForm,
          perfStatus,
          perfHost,
        ),
      );

      // The three read-only lists load side by side; a failure shows in its own place.
      const [history, drift, perf] = await Promise.allSettled([
        api.get(`${MODELS}/${encodeURIComponent(slot)}/deployments`, { limit: 20 }, { signal }),
        api.get(`${MODELS}/${encodeURIComponent(slot)}/drift`, { limit: 5 }, { signal }),
        api.get(`${MODELS}/${encodeURIComponent(slot)}/performance`, { limit: 20 }, { signal }),
      ]);
      if (history.status === "fulfilled") {
        replace(
          historyHost,
          table(
            [
              ["When", (d) => when(d.created_at)],
              ["Action", (d) => d.action || "—"],
              ["Version", (d) => el("code", {}, d.version || "—")],
              ["Status", (d) => d.status || "—"],
              ["Rollback reason", (d) => d.rollback_reason || "—"],
            ],
            history.value.deployments || [],
            { caption: `Deployments of ${slot}, newest first`, empty: "No deployments recorded." },
          ),
        );
      } else showError(historyHost, history.reason);
      if (drift.status === "fulfilled") {
        const checks = drift.value.checks || [];
        replace(driftHost, checks.length ? driftView(checks[0], "Latest stored check") : el("p", { class: "muted" }, "No drift check stored yet."));
      } else showError(driftStatus, drift.reason);
      if (perf.status === "fulfilled") replace(perfHost, perfTable(perf.value.metrics));
      else showError(perfStatus, perf.reason);
      detailHost.querySelector("h2")?.setAttribute("tabindex", "-1");
      detailHost.querySelector("h2")?.focus();
    }

    function driftView(check, title) {
      const features = Object.entries(check.features || {}).filter(([name]) => name !== "accuracy");
      return el(
        "div",
        { class: "models-drift" },
        el(
          "p",
          {},
          `${title} (${when(check.checked_at)}${check.model_version ? `, ${check.model_version}` : ""}): severity `,
          badge(check.severity || "none", check.alerted ? "bad" : "ok"),
          " ",
          check.alerted ? badge("ALERT", "bad") : badge("no alert", "ok"),
          ` — data drift ${fmt(check.data_drift_score)}, model drift ${fmt(check.model_drift_score)}`,
        ),
        table(
          [
            ["Feature", ([name]) => name],
            ["PSI", ([, f]) => fmt(f.psi)],
            ["KS D", ([, f]) => fmt(f.ks)],
            ["KS p-value", ([, f]) => pvalue(f.ks_p_value)],
            ["n baseline", ([, f]) => String(f.n_baseline ?? "—")],
            ["n current", ([, f]) => String(f.n_current ?? "—")],
            ["Severity", ([, f]) => (f.enough_data === false ? "too few samples" : f.severity || "—")],
          ],
          features,
          { caption: "Drift per feature", empty: "No feature had data in both windows." },
        ),
      );
    }

    function perfTable(metrics) {
      return table(
        [
          ["Version", (m) => el("code", {}, m.model_version || "—")],
          ["Window", (m) => `${when(m.window?.start)} – ${when(m.window?.end)}`],
          ["Inferences", (m) => String(m.sample_size ?? "—")],
          ["Mean latency (ms)", (m) => fmt(m.latency_mean_ms, 1)],
          ["p95 latency (ms)", (m) => fmt(m.latency_p95_ms, 1)],
          ["Accuracy", (m) => fmt(m.accuracy)],
          ["Detection rate", (m) => fmt(m.detection_rate)],
        ],
        metrics || [],
        { caption: "Performance roll-ups", empty: "No performance roll-ups yet (the hourly upkeep makes them)." },
      );
    }

    // --- experiments ---------------------------------------------------------------------------
    const expStatus = el("div", { class: "status" });
    const expList = el("div", {}, el("p", { class: "muted" }, "Loading…"));
    const expDetail = el("div", { class: "models-results", "aria-live": "polite" });
    const expConfirm = el("div", {});

    async function loadExperiments() {
      const answer = await api.get(EXPERIMENTS, { page_size: 50 }, { signal });
      replace(
        expList,
        table(
          [
            ["Name", (x) => x.name],
            ["Slot", (x) => el("code", {}, x.model_id)],
            ["Baseline", (x) => x.baseline_version],
            ["Challenger", (x) => x.challenger_version],
            ["Split", (x) => `${x.traffic_split_percent} % (${x.traffic_split_method})`],
            ["Status", (x) => badge(x.status, { running: "ok", stopped: "bad", completed: "ok" }[x.status])],
            ["Created", (x) => when(x.created_at)],
            [
              "Actions",
              (x) =>
                el(
                  "div",
                  { class: "row" },
                  el("button", { type: "button", class: "secondary", onclick: () => showResults(x) }, `Results of ${x.name}`),
                  x.status === "draft"
                    ? el("button", {
                        type: "button",
                        onclick: () =>
                          confirmInline(expConfirm, `Start ${x.name}? ${x.traffic_split_percent} % of ${x.model_id} traffic goes to ${x.challenger_version}.`,
                            async () => {
                              await api.post(`${EXPERIMENTS}/${x.experiment_id}/start`, { json: {}, signal });
                              toast(`${x.name} is running`);
                              await Promise.all([loadExperiments(), loadModels()]);
                            }, { label: `Start ${x.name}` }),
                      }, `Start ${x.name}`)
                    : null,
                  x.status === "running"
                    ? el("button", {
                        type: "button",
                        class: "danger",
                        onclick: () =>
                          confirmInline(expConfirm, `Stop ${x.name}? Its verdict becomes final and ${x.model_id} returns to its production routing.`,
                            async () => {
                              const final = await api.post(`${EXPERIMENTS}/${x.experiment_id}/stop`, { signal });
                              toast(`${x.name} stopped: ${final.conclusion?.recommendation || "done"}`);
                              replace(expDetail, resultsView(final));
                              await Promise.all([loadExperiments(), loadModels()]);
                            }, { label: `Stop ${x.name}`, danger: true }),
                      }, `Stop ${x.name}`)
                    : null,
                ),
            ],
          ],
          answer.experiments || [],
          { caption: `Experiments (${answer.total ?? 0})`, empty: "No experiments yet." },
        ),
      );
    }

    async function showResults(x) {
      await busy(null, expStatus, async () => {
        const results = await api.get(`${EXPERIMENTS}/${x.experiment_id}/results`, {}, { signal });
        replace(expDetail, resultsView(results));
      });
    }

    function resultsView(results) {
      const exp = results.experiment || {};
      const arms = Object.entries(results.arms || {});
      const tests = Object.entries(results.tests || {});
      const c = results.conclusion || {};
      return section(
        `Results of ${exp.name}`,
        facts([
          ["Status", exp.status],
          ["Primary metric", results.primary_metric || "none yet"],
          ["Recommendation", c.recommendation || "—"],
          ["Winner", c.winner_version || (c.winner ? c.winner : "none")],
          ["Reason", c.reason || "—"],
          ["Final", results.final ? "yes" : "no (recomputed now)"],
        ]),
        table(
          [
            ["Arm", ([arm]) => arm],
            ["Version", ([, a]) => el("code", {}, a.version)],
            ["n (inferences)", ([, a]) => String(a.sample_size)],
            ["Subjects", ([, a]) => String(a.subjects)],
            ["Feedback", ([, a]) => String(a.feedback)],
            ["Accuracy", ([, a]) => fmt(a.metrics?.accuracy?.rate)],
            ["Mean latency (ms)", ([, a]) => fmt(a.metrics?.latency_ms?.mean, 1)],
            ["Mean confidence", ([, a]) => fmt(a.metrics?.confidence?.mean)],
          ],
          arms,
          { caption: "Arms" },
        ),
        table(
          [
            ["Metric", ([name]) => name],
            ["Test", ([, t]) => (t.test === "two_proportion_z" ? "two-proportion z" : t.test === "welch_t" ? "Welch t" : t.test)],
            ["Difference (challenger − baseline)", ([, t]) => fmt(t.difference, 4)],
            ["Interval", ([, t]) => `${fmt(t.confidence_interval?.[0], 4)} … ${fmt(t.confidence_interval?.[1], 4)}`],
            ["p-value", ([, t]) => pvalue(t.p_value)],
            ["Significant", ([, t]) => (t.significant ? "yes" : "no")],
          ],
          tests,
          { caption: "Tests", empty: "No test yet: an arm has no data." },
        ),
        rawJson(results),
      );
    }

    function createForm() {
      const slots = models.map((m) => [m.model_id, m.model_id]);
      const name = field("Experiment name", "text", { required: true, maxlength: 200 });
      const slot = field("Slot", "select", { required: true }, slots);
      const baseline = field("Baseline version", "select", { required: true }, []);
      const challenger = field("Challenger version", "select", { required: true }, []);
      const split = field("Traffic to the challenger (%)", "number", { min: 1, max: 99, step: 1, value: 50, required: true });
      const method = field("Split by", "select", { value: "random" }, [["random", "request (random)"], ["user", "caller (user)"], ["session", "session"]]);
      const minimum = field("Minimum sample size per arm", "number", { min: 1, step: 1, value: 1000, required: true });
      const metric = field("Primary metric", "select", {}, [["accuracy", "accuracy (needs feedback)"], ["latency_ms", "latency (ms)"], ["confidence", "confidence"]]);
      const days = field("Duration (days)", "number", { min: 1, max: 365, step: 1, value: 7, required: true });
      const status = el("div", { class: "status" });
      const fillVersions = () => {
        const model = models.find((m) => m.model_id === slot.control.value);
        const versions = (model?.versions || []).filter((v) => v.stage !== "archived").map((v) => [v.version, v.version]);
        replace(baseline.control, versions.map(([v, t]) => el("option", { value: v }, t)));
        replace(challenger.control, versions.map(([v, t]) => el("option", { value: v }, t)));
        if (model?.production) baseline.control.value = model.production;
        const other = versions.find(([v]) => v !== baseline.control.value);
        if (other) challenger.control.value = other[0];
      };
      slot.control.addEventListener("change", fillVersions);
      const withTwo = models.find((m) => (m.versions || []).length > 1);
      if (withTwo) slot.control.value = withTwo.model_id;
      fillVersions();
      const form = el(
        "form",
        { class: "stack" },
        el("div", { class: "grid three" }, name, slot, days, baseline, challenger, split, method, minimum, metric),
        el("button", { type: "submit" }, "Create experiment"),
        status,
      );
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        busy(form, status, async () => {
          const primary = metric.control.value;
          const answer = await api.post(EXPERIMENTS, {
            json: {
              name: name.control.value.trim(),
              model_id: slot.control.value,
              baseline_version: baseline.control.value,
              challenger_version: challenger.control.value,
              traffic_split_percent: Number(split.control.value),
              traffic_split_method: method.control.value,
              minimum_sample_size: Number(minimum.control.value),
              success_metrics: [primary, ...["accuracy", "latency_ms"].filter((m) => m !== primary)],
              duration_days: Number(days.control.value),
            },
            signal,
          });
          toast(`Experiment ${answer.experiment.name} created (draft)`);
          name.control.value = "";
          await loadExperiments();
        });
      });
      return form;
    }

    (async () => {
      try {
        await loadModels();
      } catch (error) {
        if (error.name === "AbortError") return;
        if (error.status === 403) operatorNeeded(root, error);
        else showError(slotsHost, error);
        return;
      }
      replace(
        experimentsHost,
        section(
          "A/B experiments",
          el("p", { class: "muted" }, "A draft splits nothing until it is started; stopping gives the final verdict (two-proportion z-test for accuracy, Welch's t for latency and confidence)."),
          expStatus,
          expList,
          expConfirm,
          expDetail,
          el("h3", {}, "New experiment"),
          createForm(),
        ),
      );
      try {
        await loadExperiments();
      } catch (error) {
        if (error.name !== "AbortError") showError(expList, error);
      }
    })();
  },
};
