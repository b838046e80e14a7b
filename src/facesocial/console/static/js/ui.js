// DOM helpers shared by every view. Text from the API only ever goes in through textContent
// (el()'s string children) or attributes — never innerHTML — so nothing it returns can run.

/**
 * Build an element. attrs: attributes, plus `class`, `on<Event>` handlers (functions),
 * `dataset` (object) and `style` (object); children: nodes, strings, numbers, null (skipped), arrays.
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2).toLowerCase(), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "style" && typeof value === "object") Object.assign(node.style, value);
    else if (name === "class") node.className = value;
    else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace a node's children. */
export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

let fieldCounter = 0;
/** A unique id for label/input pairs. */
export function uid(prefix = "f") {
  fieldCounter += 1;
  return `${prefix}-${fieldCounter}`;
}

/**
 * A labelled form control. kind: "text" | "number" | "password" | "file" | "checkbox" |
 * "select" | "textarea" | ... ; options for select: [[value, label], ...]. Extra attrs go on the
 * control (name, required, min, max, step, accept, value, ...). Returns the wrapper; the control
 * is wrapper.control.
 */
export function field(label, kind = "text", attrs = {}, options = []) {
  const id = attrs.id || uid();
  let control;
  if (kind === "select") {
    control = el("select", { ...attrs, id }, options.map(([value, text]) => el("option", { value }, text)));
    if (attrs.value !== undefined) control.value = String(attrs.value);
  } else if (kind === "textarea") {
    control = el("textarea", { ...attrs, id });
  } else {
    control = el("input", { type: kind, ...attrs, id });
  }
  const hint = attrs["data-hint"];
  const hintNode = hint ? el("small", { id: `${id}-hint`, class: "hint" }, hint) : null;
  if (hintNode) control.setAttribute("aria-describedby", hintNode.id);
  const wrapper =
    kind === "checkbox"
      ? el("div", { class: "field checkbox" }, control, el("label", { for: id }, label), hintNode)
      : el("div", { class: "field" }, el("label", { for: id }, label), control, hintNode);
  wrapper.control = control;
  return wrapper;
}

/** A page section with a heading (h2) and content. */
export function section(title, ...children) {
  const id = uid("s");
  return el("section", { class: "card", "aria-labelledby": id }, el("h2", { id }, title), ...children);
}

/** Show an API error (or any Error) inside `node` as an alert with its stable code. */
export function showError(node, error) {
  const code = error && error.code ? error.code : "ERROR";
  const message = error && error.message ? error.message : String(error);
  replace(node, el("div", { class: "alert error", role: "alert" }, el("strong", {}, code), " ", message));
}

/** Clear a status area. */
export function clear(node) {
  node.replaceChildren();
}

/** A short message announced to screen readers (aria-live) and shown for a few seconds. */
export function toast(message, kind = "info") {
  const host = document.getElementById("toasts");
  if (!host) return;
  const node = el("div", { class: `toast ${kind}` }, message);
  host.append(node);
  setTimeout(() => node.remove(), 6000);
}

/**
 * A progress bar (role=progressbar) with a text label; set(value 0..100, text?) updates both.
 */
export function progress(label) {
  const id = uid("p");
  const bar = el("div", {
    class: "progress",
    role: "progressbar",
    "aria-valuemin": "0",
    "aria-valuemax": "100",
    "aria-valuenow": "0",
    "aria-labelledby": id,
  }, el("div", { class: "progress-fill" }));
  const text = el("span", { class: "progress-text" }, "0 %");
  const node = el("div", { class: "progress-wrap" }, el("span", { id, class: "progress-label" }, label), bar, text);
  node.set = (value, note) => {
    const v = Math.max(0, Math.min(100, Number(value) || 0));
    bar.setAttribute("aria-valuenow", String(Math.round(v)));
    bar.firstChild.style.width = `${v}%`;
    text.textContent = `${Math.round(v)} %${note ? ` — ${note}` : ""}`;
  };
  return node;
}

/**
 * A table. columns: [[header, (row) => cell content (node or text)], ...]. caption: visible title
 * for screen readers. Empty rows show `empty`.
 */
export function table(columns, rows, { caption, empty = "Nothing yet." } = {}) {
  if (!rows || rows.length === 0) return el("p", { class: "muted" }, empty);
  return el(
    "div",
    { class: "table-wrap" },
    el(
      "table",
      {},
      caption ? el("caption", {}, caption) : null,
      el("thead", {}, el("tr", {}, columns.map(([header]) => el("th", { scope: "col" }, header)))),
      el("tbody", {}, rows.map((row) => el("tr", {}, columns.map(([, cell]) => el("td", {}, cell(row)))))),
    ),
  );
}

/** A horizontal bar for a score in 0..1 (value shown as text too: colour is never the only cue). */
export function scoreBar(label, value, { max = 1, suffix = "" } = {}) {
  const pct = Math.max(0, Math.min(100, (100 * Number(value || 0)) / max));
  return el(
    "div",
    { class: "score" },
    el("span", { class: "score-label" }, label),
    el("span", { class: "score-track", "aria-hidden": "true" }, el("span", { class: "score-fill", style: { width: `${pct}%` } })),
    el("span", { class: "score-value" }, `${Number(value ?? 0).toFixed(3)}${suffix}`),
  );
}

/** A definition list from [[term, value], ...] (null values skipped). */
export function facts(pairs) {
  return el(
    "dl",
    { class: "facts" },
    pairs.filter(([, v]) => v !== null && v !== undefined).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]),
  );
}

/** Disable a form's submit button while `work` runs; errors go to `status` as an alert. */
export async function busy(form, status, work) {
  const buttons = form ? [...form.querySelectorAll("button")] : [];
  // Disabling the focused button drops focus to <body>; it comes back afterwards, so a keyboard
  // user stays where they were (Enter again repeats the action).
  const focused = document.activeElement;
  buttons.forEach((b) => (b.disabled = true));
  form?.setAttribute("aria-busy", "true");
  clear(status);
  try {
    return await work();
  } catch (error) {
    if (error.name !== "AbortError") showError(status, error);
    return undefined;
  } finally {
    buttons.forEach((b) => (b.disabled = false));
    form?.removeAttribute("aria-busy");
    const lost = !document.activeElement || document.activeElement === document.body;
    if (lost && focused instanceof HTMLElement && focused.isConnected) focused.focus();
  }
}

/** Read a File into an HTMLImageElement (decoded), for drawing on a canvas. */
export function loadImage(file) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    const src = URL.createObjectURL(file);
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("The browser could not decode this image."));
    image.src = src;
  });
}

/** Format an ISO time for people (local time), or "—". */
export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

/** JSON shown in a collapsible block (the raw answer, for developers). */
export function rawJson(value, summary = "Raw response") {
  return el("details", { class: "raw" }, el("summary", {}, summary), el("pre", {}, JSON.stringify(value, null, 2)));
}

/**
 * Poll `load()` every `interval` ms until `done(result)` is true or `signal` aborts; `onUpdate`
 * sees each result. Resolves to the last result.
 */
export async function poll(load, { done, onUpdate, interval = 1000, signal } = {}) {
  for (;;) {
    if (signal?.aborted) throw new DOMException("aborted", "AbortError");
    const result = await load();
    onUpdate?.(result);
    if (done(result)) return result;
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}
