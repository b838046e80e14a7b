// API keys & usage: who the console is logged in as; for an account login, the account's keys
// (create — the secret shown once, with a copy button — and revoke, confirmed inline); for an
// API-key login, the key's own record and why key management needs the account login; and the
// tenant's usage (GET /api/v1/auth/usage) as a per-day bar chart and tables.
import { el, field, replace, section, table, facts, showError, busy, toast, when } from "../ui.js";

const KEYS = "/api/v1/auth/api-keys";
const USAGE = "/api/v1/auth/usage";

const ms = (value) => (value === null || value === undefined ? "—" : Number(value).toFixed(1));
// The figures of every usage row (per endpoint, per day and endpoint): one set of columns.
const FIGURES = [
  ["Requests", (e) => String(e.requests)],
  ["4xx", (e) => String(e.errors_4xx)],
  ["5xx", (e) => String(e.errors_5xx)],
  ["Mean (ms)", (e) => ms(e.mean_ms)],
  ["p95 (ms)", (e) => ms(e.p95_ms)],
];

function stateBadge(state) {
  return el("span", { class: `badge ${{ active: "ok", revoked: "bad", expired: "warn" }[state] || ""}` }, state);
}

function limitText(key) {
  return `${key.requests_made ?? 0} / ${key.request_limit ?? "unlimited"}`;
}

/** Copy text to the clipboard; where the Clipboard API is refused, select it for Ctrl+C. */
async function copy(text, node) {
  try {
    await navigator.clipboard.writeText(text);
    toast("Copied to the clipboard");
  } catch {
    const range = document.createRange();
    range.selectNodeContents(node);
    const selection = getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    toast("Selected: press Ctrl+C (⌘C) to copy");
  }
}

/** Requests per day as CSS bars, with the numbers as text (the bar is only a picture of them). */
function usageChart(perDay) {
  const most = Math.max(1, ...perDay.map((d) => d.requests));
  return el(
    "figure",
    { class: "usage-chart" },
    el("figcaption", {}, "Requests per day (UTC); errors in brackets"),
    el(
      "ul",
      { class: "usage-bars" },
      perDay.map((d) =>
        el(
          "li",
          {},
          el("span", { class: "usage-day" }, d.date),
          el(
            "span",
            { class: "usage-track", "aria-hidden": "true" },
            el("span", { class: "usage-fill", style: { width: `${(100 * d.requests) / most}%` } }),
          ),
          el(
            "span",
            { class: "usage-count" },
            `${d.requests}${d.errors_4xx + d.errors_5xx ? ` (${d.errors_4xx + d.errors_5xx} errors)` : ""}`,
          ),
        ),
      ),
    ),
  );
}

export default {
  path: "keys",
  title: "API keys & usage",
  render(root, { api, signal }) {
    const credentials = api.credentials();
    const isAccount = credentials?.kind === "token";
    const whoHost = el("div", {}, el("p", { class: "muted" }, "Loading…"));
    const keysStatus = el("div", { class: "status" });
    const keysHost = el("div", {});
    const secretHost = el("div", { class: "keys-secret-host", "aria-live": "polite" });
    const confirmHost = el("div", {});
    const usageHost = el("div", { class: "keys-usage" });
    const usageStatus = el("div", { class: "status" });
    let keys = [];

    const keyFilter = field("Key", "select", { name: "api_key_id" }, [["", "All keys of the tenant"]]);
    const days = field("Window", "select", { name: "days", value: "7" }, [
      ["1", "today"],
      ["7", "7 days"],
      ["14", "14 days"],
      ["30", "30 days"],
      ["90", "90 days"],
    ]);
    const usageForm = el("form", { class: "row" }, days, keyFilter, el("button", { type: "submit" }, "Show usage"));
    usageForm.addEventListener("submit", (event) => {
      event.preventDefault();
      loadUsage();
    });

    // --- the account's keys ----------------------------------------------------------------
    function keysTable() {
      return table(
        [
          ["Name", (k) => k.name],
          ["Prefix", (k) => el("code", {}, k.prefix)],
          ["Role", (k) => k.role],
          ["State", (k) => stateBadge(k.state)],
          ["Requests / limit", (k) => limitText(k)],
          ["Created", (k) => when(k.created_at)],
          ["Expires", (k) => (k.expires_at ? when(k.expires_at) : "never")],
          ["Last used", (k) => when(k.last_used_at)],
          [
            "",
            (k) =>
              isAccount && k.state !== "revoked"
                ? el("button", { type: "button", class: "danger", onclick: () => confirmRevoke(k) }, `Revoke ${k.name}`)
                : null,
          ],
        ],
        keys,
        { caption: "The account's API keys", empty: "This account has no API keys yet." },
      );
    }

    function fillKeyFilter() {
      const selected = keyFilter.control.value;
      replace(
        keyFilter.control,
        el("option", { value: "" }, "All keys of the tenant"),
        keys.map((k) => el("option", { value: k.id }, `${k.name} (${k.prefix}…)`)),
      );
      keyFilter.control.value = keys.some((k) => k.id === selected) ? selected : "";
    }

    async function loadKeys() {
      const answer = await api.get(KEYS, {}, { signal, probe: true });
      keys = answer.keys || [];
      replace(keysHost, keysTable());
      fillKeyFilter();
    }

    function confirmRevoke(key) {
      const status = el("div", { class: "status" });
      const yes = el("button", { type: "button", class: "danger" }, `Yes, revoke ${key.name}`);
      const no = el("button", { type: "button", class: "secondary" }, "Cancel");
      const box = el(
        "div",
        { class: "card", role: "group", "aria-label": `Confirm revoking ${key.name}` },
        el("p", {}, `Revoke ${key.name} (${key.prefix}…)? Every program using it is refused from its next request. This cannot be undone.`),
        el("div", { class: "row" }, yes, no),
        status,
      );
      no.addEventListener("click", () => box.remove());
      yes.addEventListener("click", () =>
        busy(box, status, async () => {
          const answer = await api.del(`${KEYS}/${key.id}`, { signal });
          box.remove();
          toast(`${answer.key.name} is ${answer.key.state}`);
          await loadKeys();
        }),
      );
      replace(confirmHost, box);
      yes.focus();
    }

    function createForm() {
      const name = field("Key name", "text", { name: "name", required: true, maxlength: 100 });
      const limit = field("Request limit", "number", {
        name: "request_limit",
        min: 1,
        step: 1,
        "data-hint": "Requests the key may make; empty: the server's default (1000).",
      });
      const expires = field("Expires", "datetime-local", {
        name: "expires_at",
        "data-hint": "Your local time; empty: never.",
      });
      const status = el("div", { class: "status" });
      const form = el(
        "form",
        { class: "stack" },
        el("div", { class: "grid three" }, name, limit, expires),
        el("button", { type: "submit" }, "Create key"),
        status,
      );
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        busy(form, status, async () => {
          const body = { name: name.control.value.trim() };
          if (limit.control.value) body.request_limit = Number(limit.control.value);
          if (expires.control.value) body.expires_at = new Date(expires.control.value).toISOString();
          const answer = await api.post(KEYS, { json: body, signal });
          showSecret(answer.api_key, answer.key);
          form.reset();
          await loadKeys();
        });
      });
      return form;
    }

    /** The new secret, once: it lives only in this box (never stored, gone when dismissed). */
    function showSecret(secret, key) {
      const code = el("code", { class: "keys-secret" }, secret);
      const done = el("button", { type: "button", class: "secondary" }, "I have saved it — hide");
      const box = el(
        "div",
        { class: "alert ok keys-new", role: "status" },
        el("p", {}, el("strong", {}, `New key ${key.name}. `), "Copy it now: the secret is shown only this once and cannot be recovered."),
        el("p", {}, code),
        el(
          "div",
          { class: "row" },
          el("button", { type: "button", onclick: () => copy(secret, code) }, "Copy key"),
          done,
        ),
      );
      done.addEventListener("click", () => box.remove());
      replace(secretHost, box);
    }

    // --- usage ------------------------------------------------------------------------------
    async function loadUsage() {
      await busy(usageForm, usageStatus, async () => {
        const report = await api.get(
          USAGE,
          { days: days.control.value, api_key_id: keyFilter.control.value || undefined },
          { signal },
        );
        renderUsage(report);
        return report;
      });
    }

    function renderUsage(report) {
      const t = report.totals;
      replace(
        usageHost,
        facts([
          ["Window", `${when(report.start)} – ${when(report.end)} (${report.days} days)`],
          ["Requests", String(t.requests)],
          ["Client errors (4xx)", String(t.errors_4xx)],
          ["Server errors (5xx)", String(t.errors_5xx)],
          ["Mean time (ms)", ms(t.mean_ms)],
          ["p95 time (ms)", ms(t.p95_ms)],
        ]),
        usageChart(report.per_day),
        table(
          [
            ["Endpoint", (e) => el("code", {}, e.endpoint)],
            ...FIGURES,
          ],
          report.per_endpoint,
          {
            caption:
              report.endpoints_total > report.endpoint_limit
                ? `Per endpoint (the ${report.endpoint_limit} most called of ${report.endpoints_total}; the rest summed as "other")`
                : "Per endpoint",
            empty: "No calls in this window.",
          },
        ),
        el(
          "div",
          { class: "usage-by-day" },
          table(
            [
              ["Day", (e) => e.date],
              ["Endpoint", (e) => el("code", {}, e.endpoint)],
              ...FIGURES,
            ],
            [...report.per_day_endpoint].reverse(),
            { caption: "Per day and endpoint, newest day first", empty: "No calls in this window." },
          ),
        ),
      );
    }

    // --- who is logged in -------------------------------------------------------------------
    function renderWho(caller) {
      const key = caller.key;
      replace(
        whoHost,
        facts([
          ["Logged in with", caller.kind === "jwt" ? `the account ${credentials.username}` : "an API key"],
          ["Role", caller.role],
          ["Tenant", el("code", {}, caller.tenant_id)],
          key ? ["Key", `${key.name} (${key.prefix}…)`] : null,
          key ? ["State", stateBadge(key.state)] : null,
          key ? ["Requests / limit", limitText(key)] : null,
          key ? ["Expires", key.expires_at ? when(key.expires_at) : "never"] : null,
          key ? ["Last used", when(key.last_used_at)] : null,
        ].filter(Boolean)),
      );
    }

    root.append(
      section("Who you are", whoHost),
      section(
        "API keys",
        isAccount
          ? el("p", { class: "muted" }, "Keys act for this account with the role user; revoked keys stay listed for their usage history.")
          : el(
              "p",
              { class: "alert warn", role: "note" },
              "Creating and revoking keys needs the account's login (log out, then use the Account form): a key cannot make or remove keys, so a leaked key cannot mint new ones.",
            ),
        keysStatus,
        secretHost,
        confirmHost,
        keysHost,
        isAccount ? el("h3", {}, "New key") : null,
        isAccount ? createForm() : null,
      ),
      section("Usage", usageForm, usageStatus, usageHost),
    );

    (async () => {
      try {
        await loadKeys();
      } catch (error) {
        if (error.name === "AbortError") return;
        if (error.status === 403 && !isAccount) {
          replace(
            keysHost,
            el(
              "p",
              {},
              "This key belongs to no account (it was made on the server). Server keys are managed with ",
              el("code", {}, "facesocial keys list | create | revoke"),
              "; account keys from the account's login.",
            ),
          );
        } else showError(keysStatus, error);
      }
      try {
        const report = await api.get(USAGE, { days: 7 }, { signal });
        renderWho(report.caller);
        renderUsage(report);
      } catch (error) {
        if (error.name === "AbortError") return;
        showError(whoHost, error);
        showError(usageStatus, error);
      }
    })();
  },
};
