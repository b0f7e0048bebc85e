// OPAQUE in the page (@serenity-kit/opaque, docs/protocol.md): registration, login,
// re-authentication and password change. The password is normalised, stretched and used
// here; no request the page makes carries it.

import * as opaque from "../vendor/opaque.mjs";
import { api, pub, request, setAccess, clearAccess, ApiError } from "./api.mjs";
import { E, POLICY } from "./contract.mjs";
import { paint } from "./ui.mjs";

/** libsodium, loaded by the page's classic scripts (vendor/libsodium*.js). */
export async function sodium() {
  await globalThis.sodium.ready;
  return globalThis.sodium;
}

/** base64url without padding ↔ bytes. */
export async function unb64(s) {
  const na = await sodium();
  return na.from_base64(s, na.base64_variants.URLSAFE_NO_PADDING);
}
export async function b64(bytes) {
  const na = await sodium();
  return na.to_base64(bytes, na.base64_variants.URLSAFE_NO_PADDING);
}

const utf8 = (s) => new TextEncoder().encode(s);

/** A client-side failure, with the same codes the Rust client uses. */
function fail(code, message) {
  return new ApiError(0, code, message, null);
}

/** Refuses key-stretching parameters outside the policy before spending time on them (§3). */
function checkKeyStretching(ks) {
  const p = ks?.["argon2id-custom"];
  const k = POLICY.ksf;
  const ok = p && p.memory >= k.minMemory && p.memory <= k.maxMemory
    && p.memory * p.iterations >= k.minCost && p.iterations >= 1 && p.iterations <= k.maxIterations
    && p.parallelism >= 1 && p.parallelism <= k.maxParallelism;
  if (!ok) throw fail(E.KEY_STRETCHING_REJECTED, "The server asked for unsafe password-stretching parameters; refusing to continue.");
}

/** `u32be(len) || bytes` for each part, concatenated (the protocols' `lp`). */
export function lp(...parts) {
  const total = parts.reduce((n, p) => n + 4 + p.length, 0);
  const buf = new Uint8Array(total);
  const view = new DataView(buf.buffer);
  let at = 0;
  for (const p of parts) {
    view.setUint32(at, p.length);
    buf.set(p, at + 4);
    at += 4 + p.length;
  }
  return buf;
}

/** Length-prefixed parts, hashed with SHA-256. */
async function transcript(parts) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", lp(...parts)));
}

/** Opens the server's login confirmation (docs/protocol.md §5.5): proof that the server
 * verified this very exchange. Throws `confirmation_invalid` if it does not open. */
async function openConfirmation(loginId, ke1, ke2, ke3, sessionKey, sealedB64) {
  const na = await sodium();
  const th = await transcript([utf8("sesame/v1/login"), utf8(loginId),
    await unb64(ke1), await unb64(ke2), await unb64(ke3)]);
  const ikm = await crypto.subtle.importKey("raw", await unb64(sessionKey), "HKDF", false, ["deriveBits"]);
  const key = new Uint8Array(await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: th, info: utf8("sesame/v1/login-confirmation") }, ikm, 256));
  const sealed = await unb64(sealedB64);
  if (sealed.length < 28) throw fail(E.CONFIRMATION_INVALID ?? null, "The server's confirmation is invalid.");
  try {
    const plain = na.crypto_aead_chacha20poly1305_ietf_decrypt(null, sealed.subarray(12), th, sealed.subarray(0, 12), key);
    return JSON.parse(new TextDecoder().decode(plain));
  } catch {
    throw fail(null, "The server could not prove it is the server you registered with. Signing in was stopped.");
  } finally {
    na.memzero(key);
  }
}

/** The OPAQUE exchange of a login (`/api/login/*`) or a re-authentication (`/api/reauth/*`).
 * Returns the confirmation's payload and the export key. */
async function exchange(kind, username, password, onStretch) {
  await opaque.ready;
  const pw = password.normalize("NFKC");
  const send = kind === "login" ? pub : api;
  const { clientLoginState, startLoginRequest } = opaque.client.startLogin({ password: pw });
  const ch = await send("POST", `/api/${kind}/start`, { username, ke1: startLoginRequest });
  checkKeyStretching(ch.key_stretching);
  onStretch?.();
  await paint();
  const r = opaque.client.finishLogin({
    clientLoginState, loginResponse: ch.ke2, password: pw, keyStretching: ch.key_stretching,
  });
  if (!r) throw fail(E.AUTHENTICATION_FAILED, "Wrong username or password.");
  if (r.serverStaticPublicKey !== ch.server_public_key) {
    throw fail(null, "The server's key does not match its answer. Signing in was stopped.");
  }
  const conf = await send("POST", `/api/${kind}/finish`, { login_id: ch.login_id, ke3: r.finishLoginRequest });
  if (conf.login_id !== ch.login_id) throw fail(E.UNKNOWN_LOGIN, "The server answered another login.");
  const payload = await openConfirmation(ch.login_id, startLoginRequest, ch.ke2, r.finishLoginRequest,
    r.sessionKey, conf.sealed);
  return { payload, exportKey: r.exportKey };
}

/** Keeps a session in the HttpOnly cookie and its access token in memory; the session token
 * is dropped here. */
export async function keepSession(session) {
  const grant = await request("POST", "/web/session", { session_token: session.session_token });
  setAccess(grant);
  return { userId: session.user_id, username: session.username };
}

/** Signs in. Returns `{ done: {userId, username}, exportKey }` or, when a second factor is
 * needed, `{ secondFactor: {mfa_token, methods}, exportKey }`. */
export async function signIn(username, password, onStretch) {
  const { payload, exportKey } = await exchange("login", username, password, onStretch);
  if (payload.second_factor_required) return { secondFactor: payload, exportKey };
  return { done: await keepSession(payload), exportKey };
}

/** Finishes a sign-in with an authenticator or backup code. */
export async function secondFactor(mfaToken, code) {
  const session = await pub("POST", "/api/login/second-factor", { mfa_token: mfaToken, code: code.trim() });
  return keepSession(session);
}

/** Proves the password again, for sensitive actions. Returns the export key. */
export async function reauthenticate(username, password, onStretch) {
  const { exportKey } = await exchange("reauth", username, password, onStretch);
  return exportKey;
}

/** The OPAQUE registration messages for `password` (routes `start` and `finish` given).
 * `keysFor(exportKey)`, if given, adds fields to the finish body (the messaging identity). */
async function registration(username, password, start, finish, keysFor, onStretch) {
  await opaque.ready;
  const pw = password.normalize("NFKC");
  const { clientRegistrationState, registrationRequest } = opaque.client.startRegistration({ password: pw });
  const ch = await start({ username, registration_request: registrationRequest });
  checkKeyStretching(ch.key_stretching);
  onStretch?.();
  await paint();
  const r = opaque.client.finishRegistration({
    clientRegistrationState, registrationResponse: ch.registration_response, password: pw,
    keyStretching: ch.key_stretching,
  });
  if (r.serverStaticPublicKey !== ch.server_public_key) {
    throw fail(null, "The server's key does not match its answer. Registration was stopped.");
  }
  const record = { username, registration_record: r.registrationRecord, key_stretching: ch.key_stretching };
  const keys = keysFor ? await keysFor(r.exportKey) : {};
  return { answer: await finish({ ...record, ...keys }), exportKey: r.exportKey };
}

/** Whether `username` can be registered: asks `/api/register/start` with a throwaway blinded
 * element (the server keeps no state between the two steps). Throws the server's error. */
export async function checkAvailable(username) {
  await opaque.ready;
  const { registrationRequest } = opaque.client.startRegistration({ password: crypto.randomUUID() });
  await pub("POST", "/api/register/start", { username, registration_request: registrationRequest });
}

/** Registers with client-side OPAQUE; `keysFor(exportKey)` adds the messaging identity. */
export function signUp(username, password, email, keysFor, onStretch) {
  return registration(username, password,
    (body) => pub("POST", "/api/register/start", body),
    (record) => pub("POST", "/api/register/finish", email ? { ...record, email } : record),
    keysFor, onStretch);
}

/** Changes the password with client-side OPAQUE (after `reauthenticate`). */
export function changePassword(username, password, revokeOthers, onStretch) {
  return registration(username, password,
    (body) => api("POST", "/api/password/start", body),
    (record) => api("POST", "/api/password/finish", { registration: record, revoke_other_sessions: revokeOthers }),
    null, onStretch);
}

/** Signs the browser out: ends the cookie's session and forgets the access token. */
export async function signOut() {
  try {
    await request("POST", "/web/logout");
  } finally {
    clearAccess();
  }
}
