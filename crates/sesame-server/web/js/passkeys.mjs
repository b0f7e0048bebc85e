// Passkeys (WebAuthn) in the page: the server's options (base64url in JSON) become the
// ArrayBuffers `navigator.credentials.create`/`get` want, and the credential they give back
// becomes JSON again. The server keeps each ceremony's state; the page only relays
// (docs/api.md §10.4).

import { api, pub } from "./api.mjs";
import { keepSession } from "./auth.mjs";

/** Whether this browser can use passkeys at all. */
export function supported() {
  return typeof window.PublicKeyCredential === "function" && !!navigator.credentials && !onIpAddress();
}

/** Whether the page was opened by IP address (`127.0.0.1`, `[::1]`): WebAuthn needs a domain
 * there, so passkeys are not offered (open `http://localhost:PORT` in development). */
export function onIpAddress() {
  const host = location.hostname;
  return /^[0-9.]+$/.test(host) || host.includes(":") || host.startsWith("[");
}

/** Whether the browser can offer passkeys in the username field's autofill. */
export async function autofillAvailable() {
  if (!supported() || typeof PublicKeyCredential.isConditionalMediationAvailable !== "function") return false;
  try {
    return await PublicKeyCredential.isConditionalMediationAvailable();
  } catch {
    return false;
  }
}

function toBuffer(b64url) {
  const b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0)).buffer;
}

function toB64url(buffer) {
  let bin = "";
  for (const byte of new Uint8Array(buffer)) bin += String.fromCharCode(byte);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const descriptors = (list) => (list ?? []).map((c) => ({ ...c, id: toBuffer(c.id) }));

/** `PublicKeyCredentialCreationOptions` from the server's JSON. */
function creationOptions(options) {
  const pk = options.publicKey;
  return {
    ...pk,
    challenge: toBuffer(pk.challenge),
    user: { ...pk.user, id: toBuffer(pk.user.id) },
    excludeCredentials: descriptors(pk.excludeCredentials),
  };
}

/** `PublicKeyCredentialRequestOptions` from the server's JSON. */
function requestOptions(options) {
  const pk = options.publicKey;
  return { ...pk, challenge: toBuffer(pk.challenge), allowCredentials: descriptors(pk.allowCredentials) };
}

/** A new credential as the server reads it. */
function registrationJSON(cred) {
  const r = cred.response;
  return {
    id: cred.id, rawId: toB64url(cred.rawId), type: cred.type,
    response: {
      attestationObject: toB64url(r.attestationObject),
      clientDataJSON: toB64url(r.clientDataJSON),
      transports: typeof r.getTransports === "function" ? r.getTransports() : [],
    },
    clientExtensionResults: {},
  };
}

/** An assertion as the server reads it. */
function assertionJSON(cred) {
  const r = cred.response;
  return {
    id: cred.id, rawId: toB64url(cred.rawId), type: cred.type,
    response: {
      authenticatorData: toB64url(r.authenticatorData),
      clientDataJSON: toB64url(r.clientDataJSON),
      signature: toB64url(r.signature),
      userHandle: r.userHandle ? toB64url(r.userHandle) : null,
    },
    clientExtensionResults: {},
  };
}

/** The pending autofill request: a browser runs one WebAuthn request at a time, so every other
 * ceremony aborts it first. */
let pending = null;

/** Aborts the pending autofill request, if any. */
export function abortAutofill() {
  pending?.abort();
  pending = null;
}

/** Registers a passkey named `name` for the signed-in account; the new `PasskeyView`. Throws
 * `ApiError` (`reauthentication_required` first, when the session is not fresh) or the
 * browser's `DOMException` (`NotAllowedError`: cancelled or timed out). */
export async function registerPasskey(name) {
  abortAutofill();
  const start = await api("POST", "/api/passkeys/register/start");
  const cred = await navigator.credentials.create({ publicKey: creationOptions(start.options) });
  return api("POST", "/api/passkeys/register/finish",
    { ceremony_id: start.ceremony_id, name, credential: registrationJSON(cred) });
}

/** The second step of a password sign-in, by passkey. Returns `{userId, username}`. */
export async function passkeySecondFactor(mfaToken) {
  abortAutofill();
  const start = await pub("POST", "/api/login/passkey/start", { mfa_token: mfaToken });
  const cred = await navigator.credentials.get({ publicKey: requestOptions(start.options) });
  const session = await pub("POST", "/api/login/passkey/finish",
    { mfa_token: mfaToken, ceremony_id: start.ceremony_id, credential: assertionJSON(cred) });
  return keepSession(session);
}

/** Signs in with a passkey alone. `conditional`: offer it in the username field's autofill
 * and wait (until `abortAutofill`); otherwise ask the browser to show its passkey picker now.
 * Returns `{userId, username}`. */
export async function passkeySignIn({ conditional = false } = {}) {
  abortAutofill();
  const controller = new AbortController();
  if (conditional) pending = controller;
  const start = await pub("POST", "/api/login/passkey/discoverable/start");
  const cred = await navigator.credentials.get({
    publicKey: requestOptions(start.options),
    ...(conditional ? { mediation: "conditional" } : {}),
    signal: controller.signal,
  });
  if (pending === controller) pending = null;
  const session = await pub("POST", "/api/login/passkey/discoverable/finish",
    { ceremony_id: start.ceremony_id, credential: assertionJSON(cred) });
  return keepSession(session);
}

/** Whether `e` is the browser saying the person cancelled (or the request was aborted). */
export function cancelled(e) {
  return e instanceof DOMException && (e.name === "NotAllowedError" || e.name === "AbortError");
}
