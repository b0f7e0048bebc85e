// OPAQUE registration and login against a running Sesame server over its REST API, with
// @serenity-kit/opaque and Node's own fetch: `node https_login.mjs BASE_URL USERNAME PASSWORD`.
// Trust for a private CA comes from NODE_EXTRA_CA_CERTS. Prints the opened login confirmation
// (SessionIssued JSON) on success; exits non-zero with the reason otherwise.
import * as opaque from "@serenity-kit/opaque";
import { createHash, hkdfSync, createDecipheriv } from "node:crypto";

const [base, username, password] = process.argv.slice(2);
const unb64 = (s) => Buffer.from(s, "base64url");

async function post(path, body) {
  const res = await fetch(new URL(path, base), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

// Sesame's login confirmation (docs/protocol.md, "Step 4"), as in driver.mjs.
function openConfirmation(loginId, ke1, ke2, ke3, sessionKey, sealedB64) {
  const h = createHash("sha256");
  for (const part of [Buffer.from("sesame/v1/login"), Buffer.from(loginId), unb64(ke1), unb64(ke2), unb64(ke3)]) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(part.length);
    h.update(len);
    h.update(part);
  }
  const th = h.digest();
  const key = Buffer.from(hkdfSync("sha256", unb64(sessionKey), th, Buffer.from("sesame/v1/login-confirmation"), 32));
  const sealed = unb64(sealedB64);
  const d = createDecipheriv("chacha20-poly1305", key, sealed.subarray(0, 12), { authTagLength: 16 });
  d.setAAD(th, { plaintextLength: sealed.length - 28 });
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  return Buffer.concat([d.update(sealed.subarray(12, sealed.length - 16)), d.final()]).toString("utf8");
}

try {
  await opaque.ready;
  const reg = opaque.client.startRegistration({ password });
  const challenge = await post("/api/register/start", { username, registration_request: reg.registrationRequest });
  const finished = opaque.client.finishRegistration({
    password,
    clientRegistrationState: reg.clientRegistrationState,
    registrationResponse: challenge.registration_response,
    keyStretching: challenge.key_stretching,
  });
  await post("/api/register/finish", {
    username,
    registration_record: finished.registrationRecord,
    key_stretching: challenge.key_stretching,
  });

  const start = opaque.client.startLogin({ password });
  const ch = await post("/api/login/start", { username, ke1: start.startLoginRequest });
  const login = opaque.client.finishLogin({
    clientLoginState: start.clientLoginState,
    loginResponse: ch.ke2,
    password,
    keyStretching: ch.key_stretching,
  });
  if (!login) throw new Error("the login did not verify");
  const confirmation = await post("/api/login/finish", { login_id: ch.login_id, ke3: login.finishLoginRequest });
  process.stdout.write(
    openConfirmation(ch.login_id, start.startLoginRequest, ch.ke2, login.finishLoginRequest, login.sessionKey, confirmation.sealed) + "\n",
  );
} catch (e) {
  process.stderr.write(`https_login: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
}
