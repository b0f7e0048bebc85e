// Helpers of the browser tests (flows.mjs runs them, steps.mjs has the flows).

export * as OTPAuth from "otpauth";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const BASE = process.env.SESAME_URL;
export const BIN = process.env.SESAME_BIN;
export const DATA_DIR = process.env.SESAME_DATA_DIR;
export const SHOTS = process.env.SESAME_SCREENSHOTS ?? join(tmpdir(), "sesame-web-shots");
mkdirSync(SHOTS, { recursive: true });

export const PW = { alice: "violet kettle orbit 42", alice2: "new lantern harbour 17", bob: "granite meadow falcon 8", carol: "copper willow signal 5", dana: "amber river lantern 9" };
export const violations = [];
export const pages = [];
export const T = 30_000;

/** Fails the run if any request carries one of the passwords (URL, headers or body). */
export function guard(context) {
  context.on("request", (req) => {
    const parts = [req.url(), JSON.stringify(req.headers()), req.postData() ?? ""];
    for (const pw of Object.values(PW)) {
      if (parts.some((p) => p.includes(pw) || p.includes(encodeURIComponent(pw)))) {
        violations.push(`${req.method()} ${req.url()} carried a password`);
      }
    }
  });
}

export function assert(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

export async function step(name, fn) {
  const started = Date.now();
  try {
    await fn();
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    console.log(`FAIL ${name}: ${e.stack ?? e}`);
    for (const [i, p] of pages.entries()) {
      await p.screenshot({ path: join(SHOTS, `fail-${name.replace(/\W+/g, "-")}-${i}.png`), fullPage: true }).catch(() => {});
    }
    throw e;
  }
}

export async function newPage(browser, viewport = { width: 1100, height: 900 }) {
  const context = await browser.newContext({ viewport, baseURL: BASE });
  guard(context);
  const page = await context.newPage();
  page.setDefaultTimeout(T);
  pages.push(page);
  return page;
}

export const heading = (page, text) => page.getByRole("heading", { name: text, level: 1 }).waitFor();

export async function signIn(page, user, password, code) {
  await page.goto("/signin");
  await page.getByLabel("Username").fill(user);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  if (code) {
    await page.getByLabel("Authenticator code or backup code").fill(code);
    await page.getByRole("button", { name: "Continue" }).click();
  }
  await heading(page, "Your account");
}

export async function signOut(page) {
  await page.getByTestId("sign-out").click();
  await heading(page, "Sign in");
}

export async function signUp(page, user, password) {
  await page.goto("/signup");
  await page.getByLabel("Username").fill(user);
  await page.getByRole("button", { name: "Continue" }).click();
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByLabel("Password again").fill(password);
  await page.getByRole("button", { name: "Create account" }).click();
  await heading(page, "Your account is ready");
  const codes = await page.getByTestId("backup-codes").locator("code").allTextContents();
  assert(codes.length >= 8, `backup codes shown: ${codes.length}`);
  await page.getByRole("link", { name: /go to my account/ }).click();
  await heading(page, "Your account");
  return codes;
}

/** Runs the `sesame` CLI with its own profile. */
export function cli(home, args, input = "") {
  return execFileSync(BIN, args, { input, env: { ...process.env, SESAME_HOME: home, SESAME_SERVER: BASE }, encoding: "utf8", timeout: 60_000 });
}

/** Fills the fresh-authentication dialog if the page asks for it. */
export async function confirmIfAsked(page, password) {
  const dialog = page.getByRole("dialog", { name: "Confirm it's you" });
  if (await dialog.isVisible().catch(() => false)) {
    await dialog.getByLabel("Password").fill(password);
    await dialog.getByRole("button", { name: "Confirm" }).click();
  }
}

