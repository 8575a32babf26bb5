// Restore from the 24 words on the setup page, in a real browser against a
// real bunkerd: the form checks the words before sending them (count, word
// list, checksum), shows the box's own refusal (a box holding a file is never
// restored over), and, once the box is empty again, hands real words to the
// daemon, which swaps its seed, restarts its engine and runs the restore; the
// page follows it (no peer holds a manifest for these words here, so it ends
// failed, with the reason and a way to try again) and the session survives.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { startBox, startBrowser, screenshot, watchErrors } from "./harness.mjs";

const PASSWORD = "correct horse battery";

/// Valid BIP39 words (24) for fresh random entropy, from the page's own list.
function newWords(list) {
  const entropy = randomBytes(32);
  const check = createHash("sha256").update(entropy).digest()[0];
  const bits = [...entropy, check].map((b) => b.toString(2).padStart(8, "0")).join("");
  return Array.from({ length: 24 }, (_, i) => list[parseInt(bits.slice(i * 11, i * 11 + 11), 2)]);
}

describe("restore from the 24 words during setup", { timeout: 300_000 }, () => {
  let box, browser, page, errors, list;
  const view = () => page.locator("#view-words");
  const submit = async (text) => {
    await page.locator("#restore-words").fill(text);
    await page.getByRole("button", { name: "Restore from these words" }).click();
  };
  const errorText = async () => {
    await page.locator("#restore-error").waitFor();
    return page.locator("#restore-error").textContent();
  };

  before(async () => {
    box = await startBox();
    browser = await startBrowser();
    page = browser.context.pages()[0] ?? (await browser.context.newPage());
    errors = watchErrors(page);
    await page.goto(box.url);
    const claim = page.locator("#view-claim");
    await claim.getByLabel("Pairing code").fill(await box.pairingCode());
    await claim.getByLabel("New password").fill(PASSWORD);
    await claim.getByLabel("Repeat the password").fill(PASSWORD);
    await page.getByRole("button", { name: "Claim this box" }).click();
    await page.getByRole("heading", { name: "Write down your 24 words" }).waitFor();
    list = await page.evaluate(() => BIP39_WORDS);
    assert.equal(list.length, 2048);
  });

  after(async () => {
    await browser?.close();
    await box?.stop();
  });

  it("checks the words in the page before sending anything", async () => {
    const sent = [];
    page.on("request", (r) => r.url().endsWith("/api/setup/restore") && sent.push(r));
    await view().getByText("Replacing a lost box?").click();
    const words = newWords(list);
    await page.locator("#restore-words").fill(words.slice(0, 23).map((w, i) => `${i + 1}. ${w}`).join("\n"));
    assert.equal(await page.locator("#restore-count").textContent(), "23 of 24 words");
    await page.getByRole("button", { name: "Restore from these words" }).click();
    assert.match(await errorText(), /exactly 24 words.*got 23/);

    const typo = [...words];
    typo[4] = "zebraa";
    await submit(typo.join(" "));
    assert.match(await errorText(), /Word 5 \("zebraa"\) is not in the list/);

    // 24 list words whose checksum does not match (a different last word).
    let bad;
    for (const last of list) {
      const w = [...words.slice(0, 23), last];
      if (!(await page.evaluate((w) => restoreProblem(w) === null, w))) {
        bad = w;
        break;
      }
    }
    await submit(bad.join(" "));
    assert.match(await errorText(), /checksum does not match/);
    await page.getByLabel("Recovery kit (optional)").fill("not a kit");
    await submit(words.join(" "));
    assert.match(await errorText(), /not a recovery kit's text/);
    await page.getByLabel("Recovery kit (optional)").fill("");
    assert.equal(sent.length, 0, "nothing left the page");
    await screenshot(page, "2c-restore-words-checked");
  });

  it("shows the box's refusal when it already holds a file", async () => {
    const put = await page.evaluate(async () => {
      const res = await fetch("/api/files/content?path=%2Fmine.txt&copies=0&keep_local=true", { method: "PUT", body: "mine" });
      return { status: res.status, body: await res.text() };
    });
    assert.equal(put.status, 201, put.body);
    await submit(newWords(list).join(" "));
    assert.match(await errorText(), /already holds data \(1 files\)/);
    assert.equal(await page.locator("#restore-progress").isVisible(), false);
  });

  it("once empty again, hands the words to the box and follows the restore", async () => {
    const removed = await page.evaluate(async () =>
      (await fetch("/api/files/content?path=%2Fmine.txt", { method: "DELETE" })).status);
    assert.ok(removed >= 200 && removed < 300, `delete answered ${removed}`);
    const words = newWords(list);
    await submit(words.map((w, i) => `${i + 1}) ${w.toUpperCase()}`).join("\n"));
    await page.getByRole("heading", { name: "Restoring your box" }).waitFor();
    assert.equal(await page.locator("#restore-progress").isVisible(), true);
    assert.equal(await page.locator("#restore-words").inputValue(), "", "the words left the form");
    await screenshot(page, "2d-restore-progress");
    // No peer anywhere holds a manifest for these words: the restore ends failed, and says so.
    await page.locator("#restore-failed-text").waitFor({ timeout: 240_000 });
    assert.match(await page.locator("#restore-failed-text").textContent(), /restore failed/i);
    assert.equal(await page.getByRole("button", { name: "Try again" }).isVisible(), true);
    await screenshot(page, "2e-restore-failed");
    // The seed was replaced by the words typed, and the session survived the engine's restart.
    assert.deepEqual(await box.seedWords(), words);
    const st = await page.evaluate(async () => (await fetch("/api/restore")).json());
    assert.equal(st.state, "failed");
    // A reload lands on the restore again, not on the words or the quiz.
    await page.reload();
    await page.getByRole("heading", { name: "Restoring your box" }).waitFor();
    assert.deepEqual(errors, []);
  });
});
