// Sesame as an OpenID Connect provider for a real relying party: `openid-client` (a public
// client with PKCE) in this process, Debian's Chromium for the person. The browser is sent
// to Sesame's sign-in page, signs in with a password and an authenticator code, consents,
// and comes back with a code; then userinfo, refresh (rotation, and reuse revoking the
// family), revocation and RP-initiated logout. Run by crates/sesame-cli/tests/oidc_web.rs.

import * as oidc from "openid-client";
import { chromium } from "playwright-core";
import { createServer } from "node:http";
import { execFileSync } from "node:child_process";
import { BASE, BIN, DATA_DIR, PW, step, assert, newPage, heading, signUp, violations, OTPAuth } from "./lib.mjs";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
PW.olivia = "amber lighthouse comet 31";

const totp = (secret, at) => new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret) }).generate({ timestamp: at });

/** The relying party's own pages: the redirect URI and the post-logout page. */
const rp = createServer((req, res) => {
  res.setHeader("content-type", "text/html");
  res.end(`<!doctype html><title>rp</title><h1>${req.url.startsWith("/bye") ? "Signed out" : "Back at the app"}</h1>`);
});
await new Promise((resolve) => rp.listen(0, "127.0.0.1", resolve));
// `localhost` is another site than Sesame's `127.0.0.1`: the browser does not send Sesame's
// `SameSite=Strict` cookie on the navigations the relying party starts, as in production.
const RP = `http://localhost:${rp.address().port}`;

const admin = (...args) => execFileSync(BIN, ["admin", "--data-dir", DATA_DIR, "--json", ...args], { encoding: "utf8" });

/** The error code of an OAuth error answer openid-client threw. */
const oauthError = async (promise) => {
  try {
    await promise;
  } catch (e) {
    return e.error ?? e.cause?.error ?? e.code;
  }
  return null;
};

const browser = await chromium.launch({
  executablePath: CHROMIUM, headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
let failed = false;
try {
  const page = await newPage(browser);
  let secret;
  let config;
  let tokens;
  let first;
  const clientId = JSON.parse(admin("oidc", "client", "add", "Node app", "--redirect-uri", `${RP}/cb`,
    "--post-logout-redirect-uri", `${RP}/bye`, "--public")).client_id;

  /** Starts an authorization in the browser; answers what openid-client needs to finish it. */
  const begin = async () => {
    const verifier = oidc.randomPKCECodeVerifier();
    const nonce = oidc.randomNonce();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: `${RP}/cb`, scope: "openid profile email groups", nonce, state,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256",
    });
    await page.goto(url.href);
    return { verifier, nonce, state };
  };
  const finish = async ({ verifier, nonce, state }) => {
    await page.waitForURL(`${RP}/cb?**`);
    return oidc.authorizationCodeGrant(config, new URL(page.url()), {
      pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state,
    });
  };

  await step("oidc: a user with an authenticator, then signed out", async () => {
    await signUp(page, "olivia", PW.olivia);
    await page.getByRole("button", { name: "Turn on" }).click();
    secret = (await page.getByTestId("totp-secret").textContent()).trim();
    await page.getByLabel("Code from the app").fill(totp(secret, Date.now()));
    await page.getByRole("button", { name: "Turn on" }).click();
    await page.getByTestId("totp-state").waitFor();
    await page.getByTestId("sign-out").click();
    await heading(page, "Sign in");
  });

  await step("oidc: discovery", async () => {
    config = await oidc.discovery(new URL(BASE), clientId, undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    assert(config.serverMetadata().issuer === BASE, config.serverMetadata().issuer);
  });

  await step("oidc: sign in through Sesame with a password and an authenticator code, consent", async () => {
    const pending = await begin();
    await heading(page, "Sign in");
    await page.getByText("An application asked you to sign in with Sesame.").waitFor();
    await page.getByLabel("Username").fill("olivia");
    await page.getByLabel("Password", { exact: true }).fill(PW.olivia);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByLabel("Authenticator code or backup code").fill(totp(secret, Date.now() + 30_000));
    await page.getByRole("button", { name: "Continue" }).click();
    await heading(page, "Sign in to Node app");
    await page.getByRole("button", { name: "Allow" }).click();
    tokens = await finish(pending);
    first = tokens;
    const claims = tokens.claims();
    assert(/^[0-9a-f-]{36}$/.test(claims.sub), `sub ${claims.sub}`);
    assert(claims.amr.includes("otp") && claims.amr.includes("mfa"), `amr ${claims.amr}`);
    assert(claims.preferred_username === "olivia", "preferred_username");
    assert(claims.acr === "urn:sesame:acr:mfa", `acr ${claims.acr}`);
  });

  await step("oidc: userinfo", async () => {
    const info = await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims().sub);
    assert(info.preferred_username === "olivia" && Array.isArray(info.groups), JSON.stringify(info));
  });

  await step("oidc: refresh rotates; reusing a spent refresh token revokes the family", async () => {
    const next = await oidc.refreshTokenGrant(config, tokens.refresh_token);
    assert(next.refresh_token && next.refresh_token !== tokens.refresh_token, "rotated");
    assert((await oauthError(oidc.refreshTokenGrant(config, tokens.refresh_token))) === "invalid_grant", "reuse refused");
    assert((await oauthError(oidc.refreshTokenGrant(config, next.refresh_token))) === "invalid_grant", "family revoked");
    assert((await oauthError(oidc.fetchUserInfo(config, next.access_token, tokens.claims().sub))) !== null, "access token revoked");
  });

  await step("oidc: signed in and consented, the next authorization comes back through the sign-in page", async () => {
    tokens = await finish(await begin());
    assert(tokens.claims().sub === first.claims().sub, "same subject");
  });

  await step("oidc: revocation", async () => {
    await oidc.tokenRevocation(config, tokens.refresh_token);
    assert((await oauthError(oidc.refreshTokenGrant(config, tokens.refresh_token))) === "invalid_grant", "revoked");
  });

  await step("oidc: RP-initiated logout ends the Sesame session", async () => {
    const url = oidc.buildEndSessionUrl(config, {
      id_token_hint: tokens.id_token, post_logout_redirect_uri: `${RP}/bye`, state: "bye-1",
    });
    await page.goto(url.href);
    await page.waitForURL(`${RP}/bye?state=bye-1`);
    await page.goto(`${BASE}/account`);
    await heading(page, "Sign in");
  });

  await step("oidc: no request carried a password", async () => {
    assert(violations.length === 0, violations.join("\n"));
  });
} catch {
  failed = true;
} finally {
  rp.close();
  await browser.close();
}
process.exit(failed ? 1 : 0);
