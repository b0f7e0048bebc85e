// End-to-end encryption material in the page, in the CLI's formats (docs/messaging.md §2, §4):
// the wrap key derived from OPAQUE's export key, wrapped blobs (XChaCha20-Poly1305), and the
// identity-key backup kept on the server. All primitives are libsodium's and Web Crypto's.

import { api, ApiError } from "./api.mjs";
import { E } from "./contract.mjs";
import { sodium, unb64, b64 } from "./auth.mjs";

const utf8 = (s) => new TextEncoder().encode(s);
const BACKUP_AAD = utf8("sesame/v1/key-backup");
const WRAP_VERSION = 1;

/** WrapKey = HKDF-SHA256(salt = "sesame/v1/key-backup", IKM = export key, info = "identity-keys"). */
export async function wrapKey(exportKeyB64) {
  const ikm = await crypto.subtle.importKey("raw", await unb64(exportKeyB64), "HKDF", false, ["deriveBits"]);
  return new Uint8Array(await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: BACKUP_AAD, info: utf8("identity-keys") }, ikm, 256));
}

/** `0x01 || nonce (24) || XChaCha20-Poly1305(key, nonce, aad, plaintext)`. */
export async function wrap(key, aad, plaintext) {
  const na = await sodium();
  const nonce = na.randombytes_buf(24);
  const sealed = na.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, aad, null, nonce, key);
  const out = new Uint8Array(1 + 24 + sealed.length);
  out[0] = WRAP_VERSION;
  out.set(nonce, 1);
  out.set(sealed, 25);
  return out;
}

/** Opens a wrapped blob; throws if the key is wrong or a byte was changed. */
export async function unwrap(key, aad, blob) {
  const na = await sodium();
  if (blob.length < 1 + 24 + 16 || blob[0] !== WRAP_VERSION) throw new Error("not a wrapped blob");
  return na.crypto_aead_xchacha20poly1305_ietf_decrypt(null, blob.subarray(25), aad, blob.subarray(1, 25), key);
}

/** After a password change: re-wraps the server-side identity backup from the old export key
 * to the new one, so the CLI (and this page) still restore the keys with the new password.
 * Returns "none" (no backup), "rewrapped", or "unreadable" (the backup did not open under the
 * old password: left as it is). */
export async function rewrapBackup(oldExportKey, newExportKey) {
  let stored;
  try {
    stored = await api("GET", "/api/keys/backup");
  } catch (e) {
    if (e instanceof ApiError && e.code === E.BACKUP_NOT_FOUND) return "none";
    throw e;
  }
  const na = await sodium();
  const oldKey = await wrapKey(oldExportKey);
  const newKey = await wrapKey(newExportKey);
  let secret;
  try {
    secret = await unwrap(oldKey, BACKUP_AAD, await unb64(stored.blob));
  } catch {
    return "unreadable";
  } finally {
    na.memzero(oldKey);
  }
  try {
    const blob = await wrap(newKey, BACKUP_AAD, secret);
    await api("PUT", "/api/keys/backup", { blob: await b64(blob) });
    return "rewrapped";
  } finally {
    na.memzero(secret);
    na.memzero(newKey);
  }
}
