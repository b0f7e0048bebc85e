// Passkeys in the browser, with Chromium's virtual authenticator (CDP `WebAuthn` domain): a
// passkey registered on the account page, passwordless sign-ins (the username field's autofill
// and the "Use a passkey" button), a password sign-in with the passkey as the second step, and
// deletion (the passkey then signs in no more).
//
// The server's relying party is `localhost` (its default for a loopback address), so these
// pages are opened at http://localhost:PORT in a context of their own; cookies are per host,
// so the person signs in there.

import { step, guard, pages, signUp, signOut, confirmIfAsked, heading, assert, PW, BASE, T } from "./lib.mjs";

PW.dave = "amber lighthouse quartz 31";

export async function passkeys({ browser }) {
  const local = BASE.replace("://127.0.0.1", "://localhost");
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 }, baseURL: local });
  guard(context);
  const page = await context.newPage();
  page.setDefaultTimeout(T);
  pages.push(page);
  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
  });
  const credentials = async () => (await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials;
  const card = page.locator("section.card", { has: page.getByRole("heading", { name: "Passkeys", exact: true }) });

  await step("a passkey is registered on the account page", async () => {
    await signUp(page, "dave", PW.dave);
    await card.getByLabel("Name for the new passkey").fill("Laptop");
    await card.getByRole("button", { name: "Add a passkey" }).click();
    await confirmIfAsked(page, PW.dave);
    await card.getByTestId("passkey-name").filter({ hasText: "Laptop" }).waitFor();
    const held = await credentials();
    assert(held.length === 1 && held[0].isResidentCredential, `authenticator holds ${JSON.stringify(held)}`);
  });

  // The virtual authenticator answers the username field's autofill at once, which signs the
  // page in as soon as it shows; steps that need the sign-in form turn autofill off first.
  const noAutofill = () => page.evaluate(() => {
    PublicKeyCredential.isConditionalMediationAvailable = async () => false;
  });

  await step("signed out, the username field's autofill signs in with the passkey", async () => {
    await noAutofill();
    await signOut(page);
    const autocomplete = await page.getByLabel("Username").getAttribute("autocomplete");
    assert(autocomplete === "username webauthn", `username autocomplete ${autocomplete}`);
    await page.reload();
    await heading(page, "Your account");
    assert((await page.getByTestId("me-username").textContent()) === "dave", "signed in as dave");
  });

  await step("the passkey button signs in without a password", async () => {
    await noAutofill();
    await signOut(page);
    await page.getByRole("button", { name: "Use a passkey" }).click();
    await heading(page, "Your account");
  });

  await step("with the password, the passkey is the second step", async () => {
    await noAutofill();
    await signOut(page);
    await page.getByLabel("Username").fill("dave");
    await page.getByLabel("Password", { exact: true }).fill(PW.dave);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await heading(page, "One more step");
    await page.getByRole("button", { name: "Use a passkey" }).click();
    await heading(page, "Your account");
    await card.getByText(/last used (?!never)/).waitFor();
  });

  await step("a deleted passkey signs in no more", async () => {
    await card.getByRole("button", { name: "Delete" }).click();
    await confirmIfAsked(page, PW.dave);
    await card.getByText("None yet.", { exact: false }).waitFor();
    await noAutofill();
    await signOut(page);
    await page.getByRole("button", { name: "Use a passkey" }).click();
    await page.getByText("That passkey is not accepted here.").waitFor();
    await context.close();
  });
}
