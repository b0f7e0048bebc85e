// End-to-end messaging in the page, byte-compatible with the CLI (docs/messaging.md): the
// identity restored from the server-side backup, keys pinned on first use, sealed and signed
// messages, safety numbers, and history kept encrypted under the wrap key.

import { api, ApiError } from "./api.mjs";
import { E } from "./contract.mjs";
import { sodium, unb64, b64, lp } from "./auth.mjs";
import { wrapKey, wrap, unwrap } from "./e2e.mjs";

const utf8 = (s) => new TextEncoder().encode(s);
const BACKUP_AAD = utf8("sesame/v1/key-backup");

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The identity's key pairs from its 64 secret bytes (Ed25519 seed || X25519 secret). */
async function keysFrom(secret) {
  const na = await sodium();
  const sign = na.crypto_sign_seed_keypair(secret.subarray(0, 32));
  const encSecret = secret.slice(32, 64);
  return { secret, sign, encSecret, encPublic: na.crypto_scalarmult_base(encSecret) };
}

/** The published form of `keys` (§2): the encryption key signed by the signing key. */
async function publicForm(keys) {
  const na = await sodium();
  const sig = na.crypto_sign_detached(concat(utf8("sesame/v1/identity-encryption-key"), keys.encPublic), keys.sign.privateKey);
  return { signing_key: await b64(keys.sign.publicKey), encryption_key: await b64(keys.encPublic), encryption_key_signature: await b64(sig) };
}

/** Checks a published identity (§2); returns its raw keys or throws. */
export async function verifyIdentity(pub) {
  const na = await sodium();
  const signing = await unb64(pub.signing_key);
  const enc = await unb64(pub.encryption_key);
  const sig = await unb64(pub.encryption_key_signature);
  if (signing.length !== 32 || enc.length !== 32 || sig.length !== 64
    || !na.crypto_sign_verify_detached(sig, concat(utf8("sesame/v1/identity-encryption-key"), enc), signing)) {
    throw new Error("invalid published keys");
  }
  return { signing, enc, signing_key: pub.signing_key, encryption_key: pub.encryption_key };
}

/** Restores the identity from the backup under `exportKey` or makes a new one, and makes sure
 * the directory publishes it and the backup holds it (§4.4). Returns `{ keys, wrapKey, replaced }`. */
export async function ensureIdentity(me, exportKey) {
  const key = await wrapKey(exportKey);
  let secret = null;
  try {
    const { blob } = await api("GET", "/api/keys/backup");
    secret = await unwrap(key, BACKUP_AAD, await unb64(blob));
  } catch (e) {
    if (!(e instanceof ApiError && e.code === E.BACKUP_NOT_FOUND) && e instanceof ApiError) throw e;
    secret = null; // none stored, or it no longer opens: new keys, announced below
  }
  const fresh = secret === null;
  if (fresh) secret = (await sodium()).randombytes_buf(64);
  const keys = await keysFrom(secret);
  const mine = await publicForm(keys);
  let published = null;
  try {
    published = await api("GET", `/api/keys/${encodeURIComponent(me)}`);
  } catch (e) {
    if (!(e instanceof ApiError && e.code === E.KEYS_NOT_FOUND)) throw e;
  }
  if (!published || published.signing_key !== mine.signing_key || published.encryption_key !== mine.encryption_key) {
    await api("PUT", "/api/keys", mine);
  }
  if (fresh) await api("PUT", "/api/keys/backup", { blob: await b64(await wrap(key, BACKUP_AAD, secret)) });
  // Replaced: other keys were published before (their backup is gone or no longer opens).
  return { keys, wrapKey: key, replaced: fresh && published !== null };
}

/** A new identity for a registration: `{ identity, key_backup }` for the finish body, so the
 * account is published with its keys (others can write to it at once). */
export async function registrationKeys(exportKey) {
  const na = await sodium();
  const secret = na.randombytes_buf(64);
  const key = await wrapKey(exportKey);
  try {
    const keys = await keysFrom(secret);
    return {
      identity: await publicForm(keys),
      key_backup: { blob: await b64(await wrap(key, BACKUP_AAD, secret)) },
    };
  } finally {
    na.memzero(secret);
    na.memzero(key);
  }
}

/** The signing bytes of a message (§3.1). */
function signingBytes(from, to, id, sentAt, ciphertext) {
  const ts = new Uint8Array(8);
  new DataView(ts.buffer).setBigUint64(0, BigInt(sentAt));
  return concat(lp(utf8("sesame/v1/message"), utf8(from), utf8(to), utf8(id)), ts, lp(ciphertext));
}

/** Seals and signs `text` for `to` (whose verified keys are `peer`): a `send` frame. */
export async function seal(me, keys, to, peer, text) {
  const na = await sodium();
  const id = crypto.randomUUID();
  const sentAt = Date.now();
  const ciphertext = na.crypto_box_seal(utf8(text), peer.enc);
  const signature = na.crypto_sign_detached(signingBytes(me, to, id, sentAt, ciphertext), keys.sign.privateKey);
  return { type: "send", to, id, sent_at: sentAt, ciphertext: await b64(ciphertext), signature: await b64(signature) };
}

/** Checks the signature (with `to` = me) before opening the box (§3.2). Returns the text, or
 * null if the signature does not verify under `peer`. Throws if it verifies but won't open. */
export async function open(me, keys, frame, peer) {
  const na = await sodium();
  const ciphertext = await unb64(frame.ciphertext);
  const signature = await unb64(frame.signature);
  const ok = signature.length === 64 && na.crypto_sign_verify_detached(signature,
    signingBytes(frame.from, me, frame.id, frame.sent_at, ciphertext), peer.signing);
  if (!ok) return null;
  const plain = na.crypto_box_seal_open(ciphertext, keys.encPublic, keys.encSecret);
  return new TextDecoder("utf-8", { fatal: true }).decode(plain);
}

/** The 60-digit safety number of two identities (§5.2). */
export async function safetyNumber(a, b) {
  const tuple = async (t) => [utf8(t.username), await unb64(t.signing_key), await unb64(t.encryption_key)];
  const [x, y] = [await tuple(a), await tuple(b)];
  const cmp = (p, q) => {
    for (let i = 0; i < Math.min(p.length, q.length); i++) if (p[i] !== q[i]) return p[i] - q[i];
    return p.length - q.length;
  };
  const order = cmp(x[0], y[0]) || cmp(x[1], y[1]) || cmp(x[2], y[2]);
  const [first, second] = order <= 0 ? [x, y] : [y, x];
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-512",
    concat(utf8("sesame/v1/safety-number"), lp(...first, ...second))));
  const groups = [];
  for (let i = 0; i < 12; i++) {
    let n = 0n;
    for (const byte of digest.subarray(5 * i, 5 * i + 5)) n = (n << 8n) | BigInt(byte);
    groups.push(String(n % 100000n).padStart(5, "0"));
  }
  return groups.join(" ");
}

/** Contacts pinned in this browser (public keys only), per server origin and user. */
export function pins(me) {
  const key = `sesame.pins.${me}`;
  const read = () => JSON.parse(localStorage.getItem(key) ?? "{}");
  return {
    all: read,
    get: (user) => read()[user] ?? null,
    set(user, entry) {
      const all = read();
      all[user] = entry;
      localStorage.setItem(key, JSON.stringify(all));
    },
  };
}

/** The conversation with `peer`, encrypted at rest under the wrap key (the CLI's history aad). */
export function history(me, key, peer) {
  const storeKey = `sesame.history.${me}.${peer}`;
  const aad = lp(utf8(location.origin), utf8(me), utf8(peer));
  const fullAad = concat(utf8("sesame/v1/history"), aad);
  return {
    async load() {
      const stored = localStorage.getItem(storeKey);
      if (!stored) return [];
      try {
        return JSON.parse(new TextDecoder().decode(await unwrap(key, fullAad, await unb64(stored))));
      } catch {
        return [];
      }
    },
    async save(list) {
      const blob = await wrap(key, fullAad, utf8(JSON.stringify(list.slice(-2000))));
      localStorage.setItem(storeKey, await b64(blob));
    },
  };
}
