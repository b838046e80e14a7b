// The one module that talks to the API: credentials, JSON and multipart bodies, the platform's
// error envelope turned into ApiError, authenticated images, WebSocket URLs.
//
// Credentials live in sessionStorage (this tab only, gone when it closes): an API key, or the
// bearer token of an account login. A 401 anywhere logs the console out.

const STORE = "facesocial.console.credentials";

/** An error answer of the API: HTTP status, stable code (e.g. NO_FACE_DETECTED), message. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** {kind: "key", secret} | {kind: "token", token, username, expiresAt} | null */
export function credentials() {
  try {
    return JSON.parse(sessionStorage.getItem(STORE) || "null");
  } catch {
    return null;
  }
}

export function setCredentials(value) {
  sessionStorage.setItem(STORE, JSON.stringify(value));
}

export function clearCredentials() {
  sessionStorage.removeItem(STORE);
}

const listeners = new Set();
/** Called with no argument when the API answers 401 (the console then shows the login). */
export function onUnauthorized(callback) {
  listeners.add(callback);
}

function authHeaders() {
  const c = credentials();
  if (!c) return {};
  return c.kind === "key" ? { "X-API-Key": c.secret } : { Authorization: `Bearer ${c.token}` };
}

function url(path, query) {
  const u = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v === undefined || v === null || v === "") continue;
    if (Array.isArray(v)) v.forEach((item) => u.searchParams.append(k, String(item)));
    else u.searchParams.set(k, String(v));
  }
  return u;
}

async function failure(response, notify) {
  let code = `HTTP_${response.status}`;
  let message = response.statusText || "request failed";
  let details;
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
      details = body.error.details;
    }
  } catch {
    // not JSON (a proxy's page): keep the status line
  }
  if (response.status === 401 && notify) listeners.forEach((callback) => callback());
  return new ApiError(response.status, code, message, details);
}

/**
 * One API call.
 * @param {string} method GET, POST, PUT, PATCH or DELETE
 * @param {string} path e.g. "/api/v1/face-detection/detect"
 * @param {{json?: object, form?: FormData|object, query?: object, signal?: AbortSignal,
 *          as?: "json"|"blob"|"response", auth?: boolean, probe?: boolean}} options
 *   form: a FormData, or a plain object whose values are strings, numbers, booleans, Blobs/Files
 *   (arrays become repeated fields); as: what to return (JSON body by default); probe: a 401
 *   is only this call's answer (it does not log the console out).
 * @returns {Promise<any>} the parsed body; throws ApiError on a non-2xx answer.
 */
export async function request(method, path, options = {}) {
  const headers = options.auth === false ? {} : authHeaders();
  let body;
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.json);
  } else if (options.form !== undefined) {
    body = options.form instanceof FormData ? options.form : toFormData(options.form);
  }
  let response;
  try {
    response = await fetch(url(path, options.query), { method, headers, body, signal: options.signal });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "NETWORK_ERROR", `The server could not be reached (${error.message}).`);
  }
  if (!response.ok) throw await failure(response, options.auth !== false && !options.probe);
  if (options.as === "response") return response;
  if (options.as === "blob") return response.blob();
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

export function toFormData(fields) {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined || value === null || value === "") continue;
    const values = Array.isArray(value) ? value : [value];
    for (const item of values) {
      if (item instanceof Blob) form.append(name, item, item.name || `${name}.bin`);
      else form.append(name, String(item));
    }
  }
  return form;
}

export const get = (path, query, options = {}) => request("GET", path, { ...options, query });
export const post = (path, options = {}) => request("POST", path, options);
export const put = (path, options = {}) => request("PUT", path, options);
export const patch = (path, options = {}) => request("PATCH", path, options);
export const del = (path, options = {}) => request("DELETE", path, options);

/**
 * An image or video the API serves behind credentials (ELA, heatmaps, charts, previews), as an
 * object URL for <img>/<video> (which cannot send headers). Revoke it when the view goes away.
 */
export async function objectUrl(path, query) {
  const blob = await request("GET", path, { query, as: "blob" });
  return URL.createObjectURL(blob);
}

/**
 * A ws:// or wss:// URL of this origin for a socket path. With an API key login the key travels
 * as the api_key query parameter (browsers cannot set headers on a WebSocket).
 */
export function socketUrl(path, { withKey = true } = {}) {
  const u = url(path);
  u.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const c = credentials();
  if (withKey && c && c.kind === "key") u.searchParams.set("api_key", c.secret);
  return u.toString();
}

/** Log in with an account; stores the bearer token. Throws ApiError (e.g. INVALID_CREDENTIALS). */
export async function login(identifier, password) {
  const field = identifier.includes("@") ? "email" : "username";
  const answer = await request("POST", "/api/v1/auth/login", {
    json: { [field]: identifier, password },
    auth: false,
  });
  setCredentials({
    kind: "token",
    token: answer.access_token,
    username: answer.account?.username || identifier,
    expiresAt: Date.now() + 1000 * (answer.expires_in || 0),
  });
  return answer;
}

/** Log in with an API key: checked with one authenticated call before it is kept. */
export async function loginWithKey(secret) {
  setCredentials({ kind: "key", secret });
  try {
    await request("GET", "/api/v1/jobs", { query: { limit: 1 }, probe: true });
  } catch (error) {
    clearCredentials();
    throw error;
  }
}

/**
 * A WebSocket to a path of this origin carrying the console's credentials: an API key as the
 * api_key query parameter; an account's bearer token as the subprotocol after
 * "facesocial.bearer" (a browser cannot set headers on a WebSocket; the server selects
 * "facesocial.bearer" and never echoes the token).
 */
export function openSocket(path) {
  const c = credentials();
  if (c && c.kind === "token") return new WebSocket(socketUrl(path, { withKey: false }), ["facesocial.bearer", c.token]);
  return new WebSocket(socketUrl(path));
}
