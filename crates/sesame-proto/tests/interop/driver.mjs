// Line-oriented JSON driver around @serenity-kit/opaque, spawned by interop_node.rs.
// Each input line is {"op": "...", "params": {...}}; each output line is {"ok": ...} or
// {"error": "..."}. The two `*Confirmation` ops implement Sesame's login confirmation
// (docs/protocol.md, "Step 4") with nothing but node:crypto, to prove the spec is enough.
import * as opaque from "@serenity-kit/opaque";
import { createHash, hkdfSync, createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { createInterface } from "node:readline";

const b64 = (buf) => Buffer.from(buf).toString("base64url");
const unb64 = (s) => Buffer.from(s, "base64url");

function transcriptHash(loginId, ke1, ke2, ke3) {
  const h = createHash("sha256");
  for (const part of [Buffer.from("sesame/v1/login"), Buffer.from(loginId), unb64(ke1), unb64(ke2), unb64(ke3)]) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(part.length);
    h.update(len);
    h.update(part);
  }
  return h.digest();
}

function confirmationKey(p) {
  const th = transcriptHash(p.loginId, p.ke1, p.ke2, p.ke3);
  const key = Buffer.from(hkdfSync("sha256", unb64(p.sessionKey), th, Buffer.from("sesame/v1/login-confirmation"), 32));
  return { th, key };
}

const ops = {
  createServerSetup: () => opaque.server.createSetup(),
  getServerPublicKey: (p) => opaque.server.getPublicKey(p.serverSetup),
  clientStartRegistration: (p) => opaque.client.startRegistration(p),
  clientFinishRegistration: (p) => opaque.client.finishRegistration(p),
  serverCreateRegistrationResponse: (p) => opaque.server.createRegistrationResponse(p),
  clientStartLogin: (p) => opaque.client.startLogin(p),
  clientFinishLogin: (p) => opaque.client.finishLogin(p) ?? null,
  serverStartLogin: (p) => opaque.server.startLogin(p),
  serverFinishLogin: (p) => opaque.server.finishLogin(p),
  openConfirmation: (p) => {
    const { th, key } = confirmationKey(p);
    const sealed = unb64(p.sealed);
    const nonce = sealed.subarray(0, 12);
    const tag = sealed.subarray(sealed.length - 16);
    const ct = sealed.subarray(12, sealed.length - 16);
    const d = createDecipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
    d.setAAD(th, { plaintextLength: ct.length });
    d.setAuthTag(tag);
    return Buffer.concat([d.update(ct), d.final()]).toString("utf8");
  },
  sealConfirmation: (p) => {
    const { th, key } = confirmationKey(p);
    const nonce = randomBytes(12);
    const c = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
    c.setAAD(th, { plaintextLength: Buffer.byteLength(p.payload) });
    const ct = Buffer.concat([c.update(Buffer.from(p.payload)), c.final()]);
    return b64(Buffer.concat([nonce, ct, c.getAuthTag()]));
  },
};

await opaque.ready;
const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  let out;
  try {
    const { op, params } = JSON.parse(line);
    if (!(op in ops)) throw new Error(`unknown op ${op}`);
    out = { ok: ops[op](params ?? {}) };
  } catch (e) {
    out = { error: String(e && e.message ? e.message : e) };
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}
