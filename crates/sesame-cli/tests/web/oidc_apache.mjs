// Apache httpd with mod_auth_openidc as a relying party of Sesame: Chromium opens the
// application's protected page, is sent to Sesame's sign-in page, signs in, and sees the
// page with the user's claims; logging out at the application ends both sessions. Run by
// crates/sesame-cli/tests/oidc_apache.rs, which starts Sesame and Apache.

import { chromium } from "playwright-core";
import { BASE, PW, step, assert, newPage, heading, signUp, violations } from "./lib.mjs";

const APP = process.env.APP_URL;
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
PW.patrick = "saffron trellis beacon 64";

const browser = await chromium.launch({
  executablePath: CHROMIUM, headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
let failed = false;
try {
  const page = await newPage(browser);

  await step("apache: a Sesame user, signed out", async () => {
    await signUp(page, "patrick", PW.patrick);
    await page.getByTestId("sign-out").click();
    await heading(page, "Sign in");
  });

  await step("apache: the protected page sends the browser to Sesame, which signs it in", async () => {
    await page.goto(`${APP}/protected/`);
    await heading(page, "Sign in");
    assert(page.url().startsWith(`${BASE}/signin?next=`), page.url());
    await page.getByLabel("Username").fill("patrick");
    await page.getByLabel("Password", { exact: true }).fill(PW.patrick);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${APP}/protected/**`);
    await heading(page, "Hello, patrick");
    assert((await page.locator("#username").textContent()) === "patrick", "preferred_username");
    assert(/^[0-9a-f-]{36}$/.test(await page.locator("#sub").textContent()), "sub is the user id");
    assert((await page.locator("#iss").textContent()) === BASE, "iss");
  });

  await step("apache: logging out at the application ends both sessions", async () => {
    await page.goto(`${APP}/protected/redirect_uri?logout=${encodeURIComponent(`${APP}/loggedout.html`)}`);
    await page.waitForURL(`${APP}/loggedout.html**`);
    await heading(page, "Signed out of the application");
    await page.goto(`${BASE}/account`);
    await heading(page, "Sign in");
    await page.goto(`${APP}/protected/`);
    await heading(page, "Sign in");
    assert(page.url().startsWith(`${BASE}/signin?next=`), page.url());
  });

  await step("apache: no request carried a password", async () => {
    assert(violations.length === 0, violations.join("\n"));
  });
} catch {
  failed = true;
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
