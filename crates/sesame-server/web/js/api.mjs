// The API client: JSON over fetch, typed errors, and the access token kept in memory only.
// The session itself lives in the HttpOnly cookie (docs/web.md); `refresh` trades it for an
// access token whenever the page has none or it is about to expire.

import { E } from "./contract.mjs";

/** An error answer of the API (`code` is one of `E`), or a network failure (`code` null). */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

let access = null; // { token, until } (milliseconds)

/** Keeps an access grant (`AccessGrant` or a login's session) in memory. */
export function setAccess(grant) {
  access = { token: grant.access_token, until: Date.now() + (grant.expires_in - 15) * 1000 };
}

/** Forgets the access token. */
export function clearAccess() {
  access = null;
}

/** One request; the body (if any) as JSON. Throws `ApiError`. */
export async function request(method, path, body, token) {
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (token) headers.authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin", cache: "no-store", redirect: "error",
    });
  } catch {
    throw new ApiError(0, null, "Can't reach the server. Check your connection and try again.", null);
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    const err = data?.error ?? {};
    const retry = Number(res.headers.get("retry-after")) || null;
    throw new ApiError(res.status, err.code ?? null, err.message ?? res.statusText, retry);
  }
  return data;
}

let refreshing = null;

/** Trades the cookie for a new access token (one request at a time). */
export function refresh() {
  refreshing ??= request("POST", "/web/refresh").then((grant) => {
    setAccess(grant);
    return grant;
  }).finally(() => {
    refreshing = null;
  });
  return refreshing;
}

/** Whether the browser holds a live session (refreshing the access token if needed). */
export async function signedIn() {
  if (access && access.until > Date.now()) return true;
  try {
    await refresh();
    return true;
  } catch (e) {
    if (e.code === E.SESSION_INVALID) return false;
    throw e;
  }
}

let ended = () => {};

/** Sets what happens when the session turns out to have ended (revoked, expired, banned). */
export function onSessionEnded(callback) {
  ended = callback;
}

async function refreshOrEnd() {
  try {
    await refresh();
  } catch (e) {
    if (e.code === E.SESSION_INVALID) {
      clearAccess();
      ended();
    }
    throw e;
  }
}

/** An authenticated request: refreshes the access token first when needed, and once more if
 * the server says it is no longer valid. */
export async function api(method, path, body) {
  if (!access || access.until <= Date.now()) await refreshOrEnd();
  try {
    return await request(method, path, body, access.token);
  } catch (e) {
    if (e.code !== E.UNAUTHORIZED) throw e;
    await refreshOrEnd();
    return request(method, path, body, access.token);
  }
}

/** A current access token (for the WebSocket, which cannot send headers). */
export async function accessToken() {
  if (!access || access.until <= Date.now()) await refreshOrEnd();
  return access.token;
}

/** A request needing no credentials. */
export function pub(method, path, body) {
  return request(method, path, body);
}

/** What to tell a person about an error. */
export function describe(e) {
  if (!(e instanceof ApiError)) return e?.message || "Something went wrong.";
  switch (e.code) {
    case E.TOO_MANY_ATTEMPTS:
    case E.RATE_LIMITED:
      return e.retryAfter
        ? `Too many attempts. Try again in ${e.retryAfter} s.`
        : "Too many attempts. Try again in a little while.";
    case E.BUSY:
    case E.UNAVAILABLE:
    case E.TOO_MANY_CONNECTIONS:
    case E.SHUTTING_DOWN:
      return "The server is busy right now. Try again in a moment.";
    case E.INTERNAL:
      return "The server ran into a problem. Try again; if it keeps happening, tell the administrator.";
    default:
      return e.message;
  }
}
