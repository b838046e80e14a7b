// The console's shell: login, navigation between views (the URL fragment names the view), and
// each view's lifetime (its AbortSignal aborts and its cleanup runs when another view opens, so
// cameras, sockets and polls stop).
import * as api from "./api.js";
import { el, field, replace, showError, busy } from "./ui.js";
import detect from "./pages/detect.js";
import recognition from "./pages/recognition.js";
import liveness from "./pages/liveness.js";
import forensics from "./pages/forensics.js";
import jobs from "./pages/jobs.js";
import attention from "./pages/attention.js";
import counting from "./pages/counting.js";
import models from "./pages/models.js";
import keys from "./pages/keys.js";

/** Every view: {path, title, render(main, ctx) -> cleanup?}; ctx = {signal, api, navigate}. */
const VIEWS = [detect, recognition, liveness, forensics, jobs, attention, counting, models, keys];

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const menu = document.querySelector(".menu-toggle");
let current = { controller: null, cleanup: null };

function navigate(path) {
  location.hash = `#/${path}`;
}

function stopCurrent() {
  current.controller?.abort();
  try {
    current.cleanup?.();
  } catch (error) {
    console.error(error);
  }
  current = { controller: null, cleanup: null };
}

function buildNav(active) {
  replace(
    nav,
    el(
      "ul",
      {},
      VIEWS.map((view) =>
        el(
          "li",
          {},
          el("a", { href: `#/${view.path}`, "aria-current": view.path === active ? "page" : null }, view.title),
        ),
      ),
    ),
  );
}

function showLogin(message) {
  stopCurrent();
  nav.hidden = true;
  menu.hidden = true;
  document.getElementById("who").hidden = true;
  document.title = "Log in — FaceSocial console";
  const status = el("div", { class: "status" });
  if (message) showError(status, { code: "LOGGED_OUT", message });

  const keyField = field("API key", "password", { name: "api_key", autocomplete: "off", required: true, spellcheck: "false" });
  const keyForm = el(
    "form",
    { class: "stack" },
    keyField,
    el("button", { type: "submit" }, "Log in with key"),
  );
  keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(keyForm, status, async () => {
      await api.loginWithKey(keyField.control.value.trim());
      start();
    });
  });

  const userField = field("Username or email", "text", { name: "username", autocomplete: "username", required: true });
  const passField = field("Password", "password", { name: "password", autocomplete: "current-password", required: true });
  const accountForm = el(
    "form",
    { class: "stack" },
    userField,
    passField,
    el("button", { type: "submit" }, "Log in"),
  );
  accountForm.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(accountForm, status, async () => {
      await api.login(userField.control.value.trim(), passField.control.value);
      start();
    });
  });

  // Sign-up: POST /api/v1/auth/register (no credentials), then the same login as the Account card.
  const newUser = field("New username", "text", { name: "new_username", autocomplete: "username", required: true, minlength: "3", maxlength: "50",
    "data-hint": "3–50 letters, digits, _ . or -" });
  const newEmail = field("Email", "email", { name: "new_email", autocomplete: "email", required: true, maxlength: "100" });
  // Labelled "Passphrase" so the Account card's "Password" stays the only control of that name.
  const newPass = field("Passphrase", "password", { name: "new_password", autocomplete: "new-password", required: true, minlength: "10",
    "data-hint": "The new account's password: at least 10 characters, not the username or email." });
  const signupStatus = el("div", { class: "status", "aria-live": "polite" });
  const signupForm = el("form", { class: "stack", "aria-label": "Create an account" }, newUser, newEmail, newPass,
    el("button", { type: "submit" }, "Create account"));
  signupForm.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(signupForm, signupStatus, async () => {
      const username = newUser.control.value.trim();
      const password = newPass.control.value;
      // REGISTRATION_CLOSED, ACCOUNT_EXISTS, WEAK_PASSWORD ... are shown with their code.
      await api.request("POST", "/api/v1/auth/register", {
        json: { username, email: newEmail.control.value.trim(), password },
        auth: false,
      });
      replace(signupStatus, el("p", { class: "alert ok", role: "status" }, `Account ${username} created; logging in…`));
      await api.login(username, password);
      start();
    });
  });

  replace(
    main,
    el("h1", { tabindex: "-1" }, "Log in"),
    el("p", {}, "Use an API key or an account of this server, or create an account."),
    status,
    el("div", { class: "grid three login-cards" },
      el("section", { class: "card" }, el("h2", {}, "API key"),
        el("p", { class: "hint" }, "The operator key printed by the first start of ", el("code", {}, "facesocial serve"),
          ", or a key made with ", el("code", {}, "facesocial keys create"), "."),
        keyForm),
      el("section", { class: "card" }, el("h2", {}, "Account"), accountForm),
      el("section", { class: "card" }, el("h2", {}, "Create an account"),
        signupForm, signupStatus)),
  );
  main.querySelector("h1").focus();
}

function route(focusHeading = true) {
  const credentials = api.credentials();
  if (!credentials) {
    showLogin();
    return;
  }
  if (credentials.kind === "token" && credentials.expiresAt && credentials.expiresAt < Date.now()) {
    api.clearCredentials();
    showLogin("Your session expired; log in again.");
    return;
  }
  const path = location.hash.replace(/^#\/?/, "").split("?")[0] || VIEWS[0].path;
  const view = VIEWS.find((v) => v.path === path);
  if (!view) {
    navigate(VIEWS[0].path);
    return;
  }
  stopCurrent();
  nav.hidden = false;
  menu.hidden = false;
  document.getElementById("who").hidden = false;
  document.getElementById("who-name").textContent =
    credentials.kind === "key" ? `key ${credentials.secret.slice(0, 8)}…` : credentials.username;
  buildNav(view.path);
  closeMenu();
  document.title = `${view.title} — FaceSocial console`;
  const controller = new AbortController();
  current.controller = controller;
  const heading = el("h1", { tabindex: "-1" }, view.title);
  const body = el("div", { class: "view" });
  replace(main, heading, body);
  try {
    current.cleanup = view.render(body, { signal: controller.signal, api, navigate }) || null;
  } catch (error) {
    showError(body, error);
  }
  // After a navigation, focus moves to the new view's heading so keyboard and screen-reader users
  // land on it; on a fresh page load it stays at the top (the skip link comes first).
  if (focusHeading) heading.focus();
}

function closeMenu() {
  menu.setAttribute("aria-expanded", "false");
  nav.classList.remove("open");
}

function start(focusHeading = true) {
  if (!location.hash || location.hash === "#") navigate(VIEWS[0].path);
  route(focusHeading);
}

menu.addEventListener("click", () => {
  const open = menu.getAttribute("aria-expanded") !== "true";
  menu.setAttribute("aria-expanded", String(open));
  nav.classList.toggle("open", open);
});
document.getElementById("logout").addEventListener("click", () => {
  api.clearCredentials();
  showLogin();
});
api.onUnauthorized(() => {
  api.clearCredentials();
  showLogin("The server no longer accepts these credentials; log in again.");
});
window.addEventListener("hashchange", () => route());
window.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && nav.classList.contains("open")) {
    closeMenu();
    menu.focus();
  }
});
start(false);
