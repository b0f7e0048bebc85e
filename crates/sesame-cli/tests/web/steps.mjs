// The flows of the web app, in the order a person would meet them. Run by flows.mjs.

import {
  step, newPage, signIn, signOut, signUp, cli, confirmIfAsked, heading, assert, PW, BASE, BIN,
  DATA_DIR, SHOTS, OTPAuth,
} from "./lib.mjs";
import { passkeys } from "./passkeys.mjs";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { existsSync, readdirSync, readFileSync } from "node:fs";

/** The TOTP code for `secret` at `at` (milliseconds). */
const totp = (secret, at) => new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret) }).generate({ timestamp: at });

export async function run({ browser, evilUrl, cliHome }) {
  const a = await newPage(browser);
  let codes;
  let secret;

  await step("every page and asset carries the security headers", async () => {
    const res = await fetch(`${BASE}/`);
    const csp = res.headers.get("content-security-policy");
    assert(csp.includes("script-src 'self' 'wasm-unsafe-eval'") && !csp.includes("unsafe-inline"), csp);
    assert(csp.includes("frame-ancestors 'none'"), csp);
    assert(res.headers.get("x-content-type-options") === "nosniff", "nosniff");
    assert(res.headers.get("referrer-policy") === "no-referrer", "referrer");
    assert(res.headers.get("cache-control") === "no-store", "page no-store");
    const html = await res.text();
    const asset = html.match(/src="(\/assets\/[0-9a-f]{16}\/js\/main\.mjs)"/)[1];
    const js = await fetch(`${BASE}${asset}`);
    assert(js.headers.get("cache-control").includes("immutable"), "assets immutable");
    assert(js.headers.get("content-security-policy") === csp, "assets carry the CSP");
  });

  await step("sign-up refuses bad input next to the field", async () => {
    await a.goto("/signup");
    await a.getByLabel("Username").fill("ab");
    await a.getByRole("button", { name: "Continue" }).click();
    await a.getByText("At least 3 characters.").waitFor();
    await a.getByLabel("Username").fill("alice");
    await a.getByRole("button", { name: "Continue" }).click();
    await a.getByText("Your password must be:").waitFor();
    const pw = a.getByLabel("Password", { exact: true });
    for (const [typed, shown] of [["short", "Too short"], ["alice-horse-9", "contains your username"], ["password1", "too common"]]) {
      await pw.fill(typed);
      await a.getByRole("button", { name: "Create account" }).click();
      await a.getByText(shown).waitFor();
    }
    await pw.fill(PW.alice);
    await a.getByLabel("Password again").fill("something else entirely");
    await a.getByRole("button", { name: "Create account" }).click();
    await a.getByText("The two passwords differ.").waitFor();
  });

  await step("sign up: client-side OPAQUE, backup codes shown once", async () => {
    await a.getByLabel("Password again").fill(PW.alice);
    await a.getByRole("button", { name: "Create account" }).click();
    await heading(a, "Your account is ready");
    codes = await a.getByTestId("backup-codes").locator("code").allTextContents();
    assert(codes.length >= 8, `${codes.length} backup codes`);
    await a.getByRole("link", { name: /go to my account/ }).click();
    await heading(a, "Your account");
    assert((await a.getByTestId("me-username").textContent()) === "alice", "username shown");
  });

  await step("no inline script runs (CSP)", async () => {
    const ran = await a.evaluate(() => {
      const s = document.createElement("script");
      s.textContent = "window.__inline = 1";
      document.body.append(s);
      return window.__inline;
    });
    assert(ran === undefined, "an inline script ran");
  });

  await step("enable the authenticator with the secret shown on the page", async () => {
    await a.getByRole("button", { name: "Turn on" }).click();
    secret = (await a.getByTestId("totp-secret").textContent()).trim();
    await a.getByLabel("Code from the app").fill(totp(secret, Date.now()));
    await a.getByRole("button", { name: "Turn on" }).click();
    await a.getByTestId("totp-state").waitFor();
  });

  await step("the account's and the recovery's forms refuse bad input next to the field", async () => {
    const form = a.locator("section.card", { has: a.getByRole("heading", { name: "Password" }) });
    await form.getByLabel("Current password").fill(PW.alice);
    await form.getByLabel("New password").fill("password1");
    await form.getByRole("button", { name: "Change password" }).click();
    await form.getByText("too common").waitFor();
    await form.getByLabel("Current password").fill("not my password at all");
    await form.getByLabel("New password").fill("a fine new passphrase 9");
    await form.getByRole("button", { name: "Change password" }).click();
    await form.getByText("That is not your password.").waitFor();
    await a.getByLabel("Current code (to turn it off)").fill("000000");
    await a.getByRole("button", { name: "Turn off" }).click();
    await a.getByText("That code is not right.").waitFor();
    const r = await newPage(browser);
    await r.goto("/recover");
    await r.getByLabel("Username").fill("ab");
    await r.getByRole("button", { name: "Continue" }).click();
    await r.getByText("At least 3 characters.").waitFor();
    await r.getByLabel("Username").fill("alice");
    await r.getByLabel("New password").fill("short");
    await r.getByRole("button", { name: "Continue" }).click();
    await r.getByText("Too short").waitFor();
    await r.context().close();
  });

  await step("sign out, sign in with an authenticator code", async () => {
    await signOut(a);
    // The code of the next 30-second step: the one just used cannot be used twice.
    await signIn(a, "alice", PW.alice, totp(secret, Date.now() + 30_000));
  });

  await step("sign in with a backup code; a wrong password gets the unknown-user message", async () => {
    await signOut(a);
    await a.getByLabel("Username").fill("alice");
    await a.getByLabel("Password", { exact: true }).fill("not the password at all");
    await a.getByRole("button", { name: "Sign in" }).click();
    await a.getByText("Wrong username or password.").waitFor();
    await a.getByLabel("Username").fill("nobody-here");
    await a.getByLabel("Password", { exact: true }).fill("not the password at all");
    await a.getByRole("button", { name: "Sign in" }).click();
    await a.getByText("Wrong username or password.").waitFor();
    await signIn(a, "alice", PW.alice, codes[0]);
  });

  const b = await newPage(browser);
  await step("revoke the other browser's session: it is signed out", async () => {
    await signIn(b, "alice", PW.alice, codes[1]);
    await a.reload();
    await heading(a, "Your account");
    const rows = a.locator("tr[data-session]");
    assert((await rows.count()) === 2, "two sessions listed");
    await rows.filter({ hasNot: a.getByText("this browser") }).getByRole("button", { name: "Sign out" }).click();
    await a.locator("tr[data-session]").nth(1).waitFor({ state: "detached" });
    await b.reload();
    await heading(b, "Sign in");
  });

  await step("the session cookie is HttpOnly and SameSite=Strict; a cross-site POST is refused", async () => {
    const cookie = (await a.context().cookies()).find((c) => c.name === "sesame_session");
    assert(cookie && cookie.httpOnly && cookie.sameSite === "Strict", JSON.stringify(cookie));
    const evil = await a.context().newPage();
    const answer = evil.waitForResponse((r) => r.url().endsWith("/web/logout"));
    await evil.goto(evilUrl);
    assert((await answer).status() === 403, "cross-site /web/logout refused");
    assert((await (await answer).json()).error.code === "cross_site_request", "its code");
    await evil.close();
    const own = await a.evaluate(async () => (await fetch("/web/refresh", { method: "POST" })).status);
    assert(own === 200, "the forged sign-out ended nothing; a same-origin refresh works");
  });

  let newCodes;
  await step("recover with a backup code, then sign in with the new password", async () => {
    await b.goto("/recover");
    await b.getByLabel("Username").fill("alice");
    await b.getByLabel("New password").fill(PW.alice2);
    await b.getByRole("button", { name: "Continue" }).click();
    await b.getByLabel("Backup code").fill(codes[2]);
    await b.getByRole("button", { name: "Reset password" }).click();
    await heading(b, "Your password was reset");
    newCodes = await b.getByTestId("backup-codes").locator("code").allTextContents();
    await a.reload();
    await heading(a, "Sign in");
    await signIn(a, "alice", PW.alice2, newCodes[0]);
  });

  const c = await newPage(browser, { width: 375, height: 800 });
  await step("chat between two browsers", async () => {
    await signUp(c, "bob", PW.bob);
    await c.getByRole("link", { name: "Chat" }).click();
    await heading(c, "Chat");
    await a.getByRole("link", { name: "Chat" }).click();
    await heading(a, "Chat");
    await a.getByText("Connected.").waitFor();
    await c.getByText("Connected.").waitFor();
    await a.getByLabel("Start a conversation with").fill("bob");
    await a.getByRole("button", { name: "Open" }).click();
    await a.getByLabel("Message").fill("hello bob, from a browser");
    await a.getByRole("button", { name: "Send" }).click();
    await c.getByTestId("messages").getByText("hello bob, from a browser").waitFor();
    await c.getByLabel("Message").fill("hi alice");
    await c.getByRole("button", { name: "Send" }).click();
    await a.getByTestId("messages").getByText("hi alice").waitFor();
  });

  await step("chat between a browser and the CLI (send, inbox, safety number)", async () => {
    const home = cliHome("carol");
    cli(home, ["register", "carol", "--password-stdin"], `${PW.carol}\n`);
    cli(home, ["login", "carol", "--password-stdin"], `${PW.carol}\n`);
    cli(home, ["send", "alice", "hello", "from", "the", "terminal"]);
    await a.getByRole("button", { name: "carol" }).click();
    await a.getByTestId("messages").getByText("hello from the terminal").waitFor();
    await a.getByLabel("Message").fill("hello carol, from a browser");
    await a.getByRole("button", { name: "Send" }).click();
    await a.getByText("sending…").waitFor({ state: "detached" });
    const inbox = cli(home, ["inbox", "--wait", "3"]);
    assert(inbox.includes("hello carol, from a browser"), inbox);
    await a.getByRole("button", { name: "Safety number" }).click();
    const shown = (await a.getByTestId("safety-number").innerText()).replace(/\s+/g, " ").trim();
    const printed = cli(home, ["keys", "verify", "alice"]);
    const digits = (s) => s.match(/\d{5}/g).join(" ");
    assert(digits(printed).includes(digits(shown)), `browser ${shown} vs CLI ${printed}`);
    await a.getByRole("button", { name: "Close" }).click();
  });

  await step("screenshots at 375 px and on a desktop, no horizontal scrolling", async () => {
    const wide = await c.evaluate(() => document.documentElement.scrollWidth);
    assert(wide <= 375, `page is ${wide} px wide at 375`);
    await c.screenshot({ path: join(SHOTS, "chat-375.png"), fullPage: true });
    await a.screenshot({ path: join(SHOTS, "chat-desktop.png") });
    await a.goto("/account");
    await heading(a, "Your account");
    await a.screenshot({ path: join(SHOTS, "account-desktop.png"), fullPage: true });
  });

  await step("keyboard only: sign in with Tab and Enter; dark mode", async () => {
    const k = await newPage(browser, { width: 1100, height: 900 });
    await k.emulateMedia({ colorScheme: "dark" });
    await k.goto("/signin");
    await heading(k, "Sign in");
    // The username field has focus on arrival.
    await k.keyboard.type("alice");
    await k.keyboard.press("Tab");
    await k.keyboard.type(PW.alice2);
    await k.keyboard.press("Enter");
    await k.getByLabel("Authenticator code or backup code").waitFor();
    await k.keyboard.type(newCodes[1]);
    await k.keyboard.press("Enter");
    await heading(k, "Your account");
    await k.screenshot({ path: join(SHOTS, "account-dark.png") });
    await k.context().close();
  });

  await step("throttled sign-in reads \"try again in N s\"", async () => {
    const t = await newPage(browser);
    await t.goto("/signin");
    const tooMany = t.getByText(/Too many attempts\. Try again in \d+ s\./);
    for (let i = 0; i < 12 && !(await tooMany.isVisible()); i++) {
      await t.getByLabel("Username").fill("mallory");
      await t.getByLabel("Password", { exact: true }).fill(`guess number ${i} here`);
      await t.getByRole("button", { name: "Sign in" }).click();
      await t.getByRole("button", { name: "Sign in" }).and(t.locator(":enabled")).waitFor();
    }
    await tooMany.waitFor();
    await t.context().close();
  });

  await step("an admin bans a user, whose next sign-in is refused", async () => {
    execFileSync(BIN, ["admin", "--data-dir", DATA_DIR, "user", "grant-admin", "alice"], { encoding: "utf8" });
    execFileSync(BIN, ["admin", "--data-dir", DATA_DIR, "group", "create", "players"], { encoding: "utf8" });
    execFileSync(BIN, ["admin", "--data-dir", DATA_DIR, "group", "add", "players", "bob"], { encoding: "utf8" });
    await a.reload();
    await a.getByRole("link", { name: "Admin" }).click();
    await heading(a, "Admin");
    await a.locator('button[data-user="bob"]').click();
    await a.getByTestId("admin-groups").getByText("players").waitFor();
    await a.getByRole("button", { name: "Ban" }).click();
    await confirmIfAsked(a, PW.alice2);
    await a.getByTestId("admin-status").getByText("banned").waitFor();
    await c.goto("/signin");
    await c.getByLabel("Username").fill("bob");
    await c.getByLabel("Password", { exact: true }).fill(PW.bob);
    await c.getByRole("button", { name: "Sign in" }).click();
    await c.getByText(/banned|suspended/i).waitFor();
  });

  await operatorOnboarding(browser);
  await passkeys({ browser });
}

/** The code in the newest outbox message to `to`, waiting (bounded) for the background hand-over. */
async function mailedCode(to) {
  const dir = join(DATA_DIR, "outbox");
  for (let i = 0; i < 200; i++) {
    // The outbox directory appears with the first mail, which is handed over in the background.
    const files = existsSync(dir) ? readdirSync(dir) : [];
    const texts = files.map((f) => readFileSync(join(dir, f), "utf8")).filter((t) => t.includes(`To: ${to}`));
    const code = texts.map((t) => t.match(/\b(\d{6})\b/)?.[1]).find(Boolean);
    if (code) return code;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no code mailed to ${to}`);
}

/** An account the operator created is claimed in the browser with its one-time code; its owner then sets an email address. */
async function operatorOnboarding(browser) {
  const d = await newPage(browser, { width: 1024, height: 800 });
  await step("an operator's one-time code lets a new user set their password in the browser", async () => {
    const made = JSON.parse(execFileSync(BIN, ["admin", "--data-dir", DATA_DIR, "--json", "user", "create", "dana"], { encoding: "utf8" }));
    assert(made.username === "dana" && made.code.length === 23, `created: ${JSON.stringify(made)}`);
    await d.goto("/recover");
    await d.getByLabel("Username").fill("dana");
    await d.getByLabel("New password").fill(PW.dana);
    await d.getByRole("button", { name: "Continue" }).click();
    await d.getByRole("tab", { name: "Code from an administrator" }).click();
    await d.getByLabel("Reset code").fill(made.code.toUpperCase());
    await d.getByRole("button", { name: "Reset password" }).click();
    await heading(d, "Your password was reset");
    await signIn(d, "dana", PW.dana);
  });
  await step("the account page changes the email address only with the code mailed to it", async () => {
    await d.getByLabel("New email address").fill("dana@example.com");
    await d.getByRole("button", { name: "Send a code" }).click();
    await confirmIfAsked(d, PW.dana);
    await d.getByLabel("Code from the email").fill(await mailedCode("dana@example.com"));
    await d.getByRole("button", { name: "Confirm the new address" }).click();
    await d.getByText("Your email address is now dana@example.com.").waitFor();
    await d.reload();
    await heading(d, "Your account");
    await d.getByText("dana@example.com", { exact: true }).waitFor();
  });
  await d.context().close();
}
