// First-run setup, login and logout in a real browser against a real bunkerd:
// what a person with a phone does the first time they plug the box in.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { startBox, startBrowser, screenshot, PHONE } from "./harness.mjs";

const PASSWORD = "correct horse battery";
const NEW_PASSWORD = "staple battery horse";
const FIRST_VIEW_BUDGET = 300 * 1024;

describe("a new box, set up from a phone", { timeout: 240_000 }, () => {
  let box, browser, page;
  const pageErrors = [];
  let words = [];
  // Labels repeat across views (two "New password" fields): look inside one.
  const view = (name) => page.locator(`#view-${name}`);

  before(async () => {
    box = await startBox();
    browser = await startBrowser();
    page = browser.context.pages()[0] ?? (await browser.context.newPage());
    page.on("pageerror", (err) => pageErrors.push(`page error: ${err.message}`));
    page.on("console", (msg) => {
      // A blocked script or style (CSP) or a script error is a defect; a 4xx
      // answer the page handles (wrong password, a part not connected) is not.
      if (msg.type() === "error" && !/status of (4\d\d|503)/.test(msg.text())) pageErrors.push(msg.text());
    });
  });

  after(async () => {
    await browser?.close();
    await box?.stop();
  });

  it("loads the first view in under 300 KiB and offers the claim form", async () => {
    const responses = [];
    const collect = (res) => responses.push(res);
    page.on("response", collect);
    await page.goto(box.url, { waitUntil: "networkidle" });
    page.off("response", collect);
    let bytes = 0;
    for (const res of responses) bytes += (await res.body().catch(() => Buffer.alloc(0))).length;
    assert.ok(bytes > 1000 && bytes <= FIRST_VIEW_BUDGET, `first view transferred ${bytes} bytes`);
    console.log(`first view: ${responses.length} responses, ${bytes} bytes (budget ${FIRST_VIEW_BUDGET})`);
    await page.getByRole("heading", { name: "Claim this box" }).waitFor();
    assert.equal(await page.getByRole("button", { name: "Log out" }).isVisible(), false);
    await screenshot(page, "1-claim");
  });

  it("refuses a wrong pairing code with a clear message", async () => {
    const code = await box.pairingCode();
    assert.match(code, /^[0-9A-Z]{4}-[0-9A-Z]{4}$/);
    const wrong = code.startsWith("A") ? "BBBB-BBBB" : "AAAA-AAAA";
    await view("claim").getByLabel("Pairing code").fill(wrong);
    await view("claim").getByLabel("New password").fill(PASSWORD);
    await view("claim").getByLabel("Repeat the password").fill(PASSWORD);
    await page.getByRole("button", { name: "Claim this box" }).click();
    const error = page.locator("#claim-error");
    await error.waitFor();
    assert.match(await error.textContent(), /pairing code is not right/);
    await screenshot(page, "1b-claim-wrong-code");
  });

  it("claims the box with the code from the screen and a new password", async () => {
    await view("claim").getByLabel("Pairing code").fill((await box.pairingCode()).toLowerCase());
    await view("claim").getByLabel("New password").fill(PASSWORD);
    await view("claim").getByLabel("Repeat the password").fill(PASSWORD + "x");
    await page.getByRole("button", { name: "Claim this box" }).click();
    assert.match(await page.locator("#claim-error").textContent(), /not the same/);
    await view("claim").getByLabel("Repeat the password").fill(PASSWORD);
    await page.getByRole("button", { name: "Claim this box" }).click();
    await page.getByRole("heading", { name: "Write down your 24 words" }).waitFor();
    const cookies = await browser.context.cookies(box.url);
    const session = cookies.find((c) => c.name === "bunker_session");
    assert.ok(session, "a session cookie");
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, "Strict");
    await screenshot(page, "2-words-before");
  });

  it("offers restore from words beside the words (restore.test.mjs drives it)", async () => {
    await page.getByText("Replacing a lost box? Restore from your 24 words").click();
    const field = view("words").getByLabel("Your 24 words, in order");
    await field.fill("1. abandon 2. ability able about above absent absorb abstract absurd abuse access accident");
    assert.equal(await page.locator("#restore-count").textContent(), "12 of 24 words");
    const button = page.getByRole("button", { name: "Restore from these words" });
    assert.equal(await button.isDisabled(), false);
    await screenshot(page, "2b-restore");
    await field.fill("");
    await page.getByText("Replacing a lost box? Restore from your 24 words").click();
  });

  it("shows the 24 words once, the box's own words", async () => {
    await page.getByRole("button", { name: "Show my 24 words" }).click();
    const items = page.locator("#words-list li");
    await items.first().waitFor();
    words = await items.allTextContents();
    assert.equal(words.length, 24);
    assert.deepEqual(words, await box.seedWords());
    assert.ok(!box.log().includes(words.slice(0, 3).join(" ")), "the log must not show the words");
    await screenshot(page, "3-words");
  });

  it("never shows them again, even after a reload", async () => {
    await page.reload({ waitUntil: "networkidle" });
    await page.getByRole("heading", { name: "Check your words" }).waitFor();
    assert.equal(await page.locator("#words-list li").count(), 0);
    const answer = await page.evaluate(async () => {
      const res = await fetch("/api/setup/words", { method: "POST" });
      return { status: res.status, body: await res.json() };
    });
    assert.equal(answer.status, 409);
    assert.match(answer.body.error, /already shown once/);
  });

  it("asks three words back and refuses wrong ones", async () => {
    const labels = await page.locator("#quiz-fields label").allTextContents();
    assert.equal(labels.length, 3);
    const positions = labels.map((l) => Number(l.replace("Word ", "")));
    const inputs = page.locator("#quiz-fields input");
    for (let i = 0; i < 3; i++) await inputs.nth(i).fill(words[positions[i] - 1]);
    await inputs.nth(1).fill("zzzz");
    await page.getByRole("button", { name: "Check" }).click();
    const error = page.locator("#quiz-error");
    await error.waitFor();
    assert.match(await error.textContent(), /do not match/);
    await screenshot(page, "4-quiz-wrong");
    await inputs.nth(1).fill(words[positions[1] - 1]);
    await page.getByRole("button", { name: "Check" }).click();
    await page.getByRole("heading", { name: "This box" }).waitFor();
  });

  it("lands on the dashboard with what the daemon knows", async () => {
    await page.locator("#peer-id", { hasText: "12D3KooW" }).waitFor();
    assert.equal(await page.locator("#state-text").textContent(), "running");
    assert.match(await page.locator("#version").textContent(), /^\d+\.\d+\.\d+$/);
    assert.match(await page.locator("#space-text").textContent(), /free of/);
    await screenshot(page, "5-dashboard");
    // The same page on a desktop: one centred column, nothing cut off.
    await page.setViewportSize({ width: 1280, height: 900 });
    await screenshot(page, "5b-dashboard-desktop");
    await page.setViewportSize(PHONE);
  });

  it("logs out, refuses a wrong password, logs in again", async () => {
    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByRole("heading", { name: "Log in" }).waitFor();
    const status = await page.evaluate(async () => (await fetch("/api/status")).status);
    assert.equal(status, 401, "after logout the API must not answer");
    assert.equal(await page.locator("#state").isVisible(), false, "a logged-out page shows nothing of the box");

    await view("login").getByLabel("Password", { exact: true }).fill("not my password");
    await page.getByRole("button", { name: "Log in" }).click();
    const error = page.locator("#login-error");
    await error.waitFor();
    assert.equal(await error.textContent(), "Wrong password");
    await screenshot(page, "6-login-wrong-password");

    await view("login").getByLabel("Password", { exact: true }).fill(PASSWORD);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("heading", { name: "This box" }).waitFor();
  });

  it("changes the password only with the current one", async () => {
    await page.getByRole("navigation", { name: "Sections" }).getByRole("link", { name: "Settings" }).click();
    await page.getByRole("heading", { name: "Change password" }).waitFor();
    await view("settings").getByLabel("Current password").fill("wrong current");
    await view("settings").getByLabel("New password", { exact: true }).fill(NEW_PASSWORD);
    await view("settings").getByLabel("Repeat the new password").fill(NEW_PASSWORD);
    await page.getByRole("button", { name: "Change password" }).click();
    await page.locator("#password-error").waitFor();
    assert.match(await page.locator("#password-error").textContent(), /current password is not right/);
    await view("settings").getByLabel("Current password").fill(PASSWORD);
    await page.getByRole("button", { name: "Change password" }).click();
    await page.locator("#password-ok").waitFor();
    await page.getByRole("button", { name: "Log out" }).click();
    await view("login").getByLabel("Password", { exact: true }).fill(NEW_PASSWORD);
    await page.getByRole("button", { name: "Log in" }).click();
    // Back where the owner was (the address bar keeps the view).
    await page.getByRole("heading", { name: "Change password" }).waitFor();
  });

  it("had no script errors or blocked resources", () => {
    assert.deepEqual(pageErrors, []);
  });
});
