// The admin page after setup, on a 390 px phone, against a real bunkerd:
// every view shows what the box's API says (or says honestly that the API
// cannot tell yet), files go up with a progress bar and come back byte for
// byte, redundancy and deletion go through the box, and nothing answers
// without a session.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { startBox, startBrowser, screenshot, setUpBox, watchErrors, PHONE } from "./harness.mjs";

const PASSWORD = "correct horse battery";
const VIEWS = ["Dashboard", "Files", "Hosting", "Peers", "Wallet", "Backup", "Settings", "Panel"];
const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");

async function getJson(box, path, cookie) {
  const res = await fetch(`${box.url}${path}`, { headers: { Cookie: cookie } });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

async function waitFor(check, what, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting until ${what}`);
}

describe("the admin app on a phone", { timeout: 300_000 }, () => {
  // The box under test (a) and two peers: c, then b (which knows c), then a
  // (which knows both), all on loopback. a keeps copies of its files on b and
  // c; b keeps one of its files on a, so a hosts something real.
  let a, b, c, browser, page, cookie, errors;

  before(async () => {
    c = await startBox();
    b = await startBox({ bootstrap: [c.p2pAddr] });
    // Audits every few seconds and the manifest replicated a second after a
    // change, so the views show them within the test.
    a = await startBox({
      bootstrap: [b.p2pAddr, c.p2pAddr],
      set: ['intervals.audit="3s"', 'intervals.manifest_debounce="1s"'],
    });
    cookie = await setUpBox(a, PASSWORD);
    const cookieB = await setUpBox(b, PASSWORD);
    await waitFor(async () => (await getJson(a, "/api/node", cookie)).connected_peers >= 2, "a connected to b and c");
    await waitFor(async () => (await getJson(b, "/api/node", cookieB)).connected_peers >= 2, "b connected to a and c");
    const put = await fetch(`${b.url}/api/files/content?path=%2Ffrom-b.bin&copies=2&keep_local=true`, {
      method: "PUT", headers: { Cookie: cookieB, Origin: b.url }, body: randomBytes(200_000),
    });
    assert.equal(put.status, 201, await put.text());
    browser = await startBrowser();
    page = browser.context.pages()[0] ?? (await browser.context.newPage());
    errors = watchErrors(page);
  });

  after(async () => {
    await browser?.close();
    for (const box of [a, b, c]) await box?.stop();
  });

  const nav = (name) => page.getByRole("navigation", { name: "Sections" }).getByRole("link", { name, exact: true });
  const go = async (name) => {
    await nav(name).click();
    await page.locator(`#view-${name.toLowerCase()}`).waitFor();
    assert.equal(await nav(name).getAttribute("aria-current"), "page");
  };

  it("logs in and reaches every view from the navigation", async () => {
    await page.goto(a.url);
    await page.locator("#view-login").getByLabel("Password", { exact: true }).fill(PASSWORD);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("heading", { name: "This box" }).waitFor();
    for (const name of VIEWS) {
      await go(name);
      assert.ok(page.url().endsWith(`#${name.toLowerCase()}`), page.url());
      const others = VIEWS.filter((v) => v !== name).map((v) => page.locator(`#view-${v.toLowerCase()}`));
      for (const o of others) assert.equal(await o.isVisible(), false);
    }
    // The phone's back button returns to the view before.
    await page.goBack();
    await page.locator("#view-settings").waitFor();
    // A reload keeps the place.
    await page.reload();
    await page.locator("#view-settings").waitFor();
    // Nothing is wider than the phone.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(overflow <= PHONE.width, `page is ${overflow} px wide on a ${PHONE.width} px phone`);
  });

  it("the dashboard shows the box's own numbers, and says what is not available", async () => {
    await go("Dashboard");
    await page.locator("#peer-id", { hasText: a.peerId }).waitFor();
    assert.match(await page.locator("#space-text").textContent(), /free of/);
    const st = await getJson(a, "/api/node", cookie);
    await page.locator("#alloc-chart svg").waitFor();
    const label = await page.locator("#alloc-chart svg").getAttribute("aria-label");
    assert.match(label, /^space allocation: .* your files, .* hosted, .* free to offer$/);
    assert.equal(await page.locator("#dash-peers").textContent(), String(st.connected_peers));
    assert.equal(await page.locator("#dash-peers").textContent(), "2");
    assert.match(await page.locator("#dash-files").textContent(), new RegExp(`^${st.files} `));
    assert.equal(await page.locator("#dash-ln").textContent(), st.lightning);
    // Payments are real (none yet): the chart is drawn from the empty list, 0 and 0.
    await page.locator("#sats-chart svg").waitFor();
    assert.match(await page.locator("#sats-chart svg").getAttribute("aria-label"), /: 0 earned, 0 spent$/);
    // Lightning is off in this box: the balance says why instead of a number.
    await page.locator("#dash-balance", { hasText: /^not available: Lightning is off/ }).waitFor();
    // Data disks and alerts come from the daemon's own probe (bunker-disks).
    const status = await getJson(a, "/api/status", cookie);
    assert.ok(status.disks.length >= 1, JSON.stringify(status.disks));
    await page.locator("#disks li", { hasText: /active · .* free of / }).first().waitFor();
    if (status.alerts.length > 0) {
      await page.locator("#alerts li", { hasText: status.alerts[0].short }).waitFor();
    } else {
      assert.equal(await page.locator("#alerts-card").isHidden(), true);
    }
    await screenshot(page, "7-dashboard-engine");
  });

  it("lists the root with /MANIFEST.db first, marked as the box's database", async () => {
    await go("Files");
    const first = page.locator("#file-list > li").first();
    await first.waitFor();
    assert.equal(await first.getAttribute("data-path"), "/MANIFEST.db");
    assert.match(await first.textContent(), /box database/);
    assert.equal(await page.locator("#crumbs").textContent(), "Box");
    await screenshot(page, "8-files");
  });

  it("downloads /MANIFEST.db as an SQLite database", async () => {
    await go("Files");
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("link", { name: "Download MANIFEST.db" }).click(),
    ]);
    assert.equal(download.suggestedFilename(), "MANIFEST.db");
    const bytes = await readFile(await download.path());
    assert.equal(bytes.subarray(0, 16).toString("latin1"), "SQLite format 3\0");
  });

  it("uploads several files with a progress bar and downloads them byte for byte", async () => {
    await go("Files");
    // Into a new folder, as a person would make one.
    await page.getByLabel("New folder").fill("photos");
    await page.getByRole("button", { name: "Open new folder" }).click();
    await page.locator("#crumbs", { hasText: "Box / photos" }).waitFor();
    const big = randomBytes(3 * 1024 * 1024), small = randomBytes(1000);
    await page.getByLabel("Choose files").setInputFiles([
      { name: "cat.jpg", mimeType: "image/jpeg", buffer: big },
      { name: "note.txt", mimeType: "text/plain", buffer: small },
    ]);
    // Slow the upload down so the bar is seen between empty and full.
    const cdp = await browser.context.newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 1024 * 1024 });
    await page.getByRole("button", { name: "Upload", exact: true }).click();
    const bar = page.getByRole("progressbar", { name: "Uploading cat.jpg" });
    await page.waitForFunction(() => {
      const p = document.querySelector('#upload-list li[data-name="cat.jpg"] progress');
      return p && p.value > 0 && p.value < p.max;
    });
    await screenshot(page, "9-files-uploading");
    await page.locator('#upload-list li.good[data-name="note.txt"]').waitFor({ timeout: 60_000 });
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    assert.equal(await bar.getAttribute("value"), String(big.length));
    assert.equal(await page.locator('#upload-list li.good[data-name="cat.jpg"]').count(), 1);
    for (const [name, buf] of [["cat.jpg", big], ["note.txt", small]]) {
      const item = page.locator(`#file-list li[data-path="/photos/${name}"]`);
      await item.waitFor();
      const [download] = await Promise.all([page.waitForEvent("download"), item.getByRole("link", { name: `Download ${name}` }).click()]);
      assert.equal(download.suggestedFilename(), name);
      assert.equal(sha256(await readFile(await download.path())), sha256(buf), `${name} came back different`);
    }
  });

  it("shows a file's replicas on its two hosts in the detail panel", async () => {
    const item = page.locator('#file-list li[data-path="/photos/cat.jpg"]');
    await item.getByRole("button", { name: "Details of cat.jpg" }).click();
    await page.getByRole("heading", { name: "cat.jpg" }).waitFor();
    const replicas = page.locator("#detail-replicas > li");
    await replicas.nth(1).waitFor();
    const text = (await replicas.allTextContents()).join("\n");
    for (const host of [b.peerId, c.peerId]) assert.ok(text.includes(host.slice(0, 10)), `${host} in ${text}`);
    assert.match(text, /active/);
    assert.match(await page.locator("#detail-facts").textContent(), /2 active of 2 wanted/);
  });

  it("changes a file's redundancy through the box, refusing no local copy with fewer than 2 peers' copies", async () => {
    const item = page.locator('#file-list li[data-path="/photos/note.txt"]');
    await item.getByRole("button", { name: "Details of note.txt" }).click();
    await page.getByRole("heading", { name: "note.txt" }).waitFor();
    const detail = page.locator("#file-detail");
    await detail.getByLabel("Copies on other boxes").fill("1");
    await detail.getByLabel("Keep a copy on this box").uncheck();
    await detail.getByRole("button", { name: "Save redundancy" }).click();
    await page.locator("#policy-error", { hasText: "at least 2 copies" }).waitFor();
    // The UI refused; the box would too (it is the judge).
    const refused = await page.evaluate(async () => (await fetch("/api/files/policy", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ path: "/photos/note.txt", copies: 1, keep_local: false }),
    })).status);
    assert.ok(refused === 400 || refused === 409, `the box accepted keep_local off with 1 copy (${refused})`);
    // Two copies on b and c and none here: allowed, and the box drops its local copy.
    await detail.getByLabel("Copies on other boxes").fill("2");
    await detail.getByRole("button", { name: "Save redundancy" }).click();
    await page.locator("#policy-ok").waitFor();
    const d = await getJson(a, "/api/files/detail?path=%2Fphotos%2Fnote.txt", cookie);
    assert.deepEqual(d.file.policy, { copies: 2, keep_local: false });
    await page.locator("#detail-facts", { hasText: /On this box\s*no/ }).waitFor();
    assert.equal(await detail.getByLabel("Keep a copy on this box").isChecked(), false);
    await screenshot(page, "10-file-detail");
  });

  it("deletes a file only after confirmation", async () => {
    const detail = page.locator("#file-detail");
    await detail.getByRole("button", { name: "Delete this file" }).click();
    const dialog = page.locator("#confirm-dialog");
    await dialog.waitFor();
    assert.match(await dialog.textContent(), /Delete \/photos\/note\.txt\?/);
    await dialog.getByRole("button", { name: "Cancel" }).click();
    assert.equal(await page.locator('#file-list li[data-path="/photos/note.txt"]').count(), 1, "cancel keeps the file");
    await detail.getByRole("button", { name: "Delete this file" }).click();
    await dialog.getByRole("button", { name: "Delete" }).click();
    await page.locator('#file-list li[data-path="/photos/note.txt"]').waitFor({ state: "detached" });
    const gone = await fetch(`${a.url}/api/files/detail?path=%2Fphotos%2Fnote.txt`, { headers: { Cookie: cookie } });
    assert.equal(gone.status, 404);
  });

  it("refuses path traversal names in the page and at the box", async () => {
    await go("Files");
    for (const bad of ["..", "a/b"]) {
      await page.getByLabel("New folder").fill(bad);
      await page.getByRole("button", { name: "Open new folder" }).click();
      await page.locator("#folder-error").waitFor();
      assert.match(await page.locator("#folder-error").textContent(), /not allowed|cannot contain/);
    }
    assert.ok(!page.url().includes(".."), page.url());
    await page.getByLabel("Choose files").setInputFiles([{ name: "..", mimeType: "text/plain", buffer: Buffer.from("x") }]);
    await page.getByRole("button", { name: "Upload", exact: true }).click();
    await page.locator('#upload-list li.bad[data-name=".."]', { hasText: "refused" }).waitFor();
    // The box refuses them itself, whatever a page sends.
    const statuses = await page.evaluate(async () => {
      const out = [];
      for (const p of ["/../etc/passwd", "/a/../../b", "//double", "/nul\u0000name"]) {
        const q = encodeURIComponent(p);
        out.push((await fetch(`/api/files/content?path=${q}`, { method: "PUT", body: "x" })).status);
        out.push((await fetch(`/api/files/content?path=${q}`)).status);
      }
      out.push((await fetch(`/api/files?folder=${encodeURIComponent("/../..")}`)).status);
      return out;
    });
    assert.deepEqual(statuses, statuses.map(() => 400), `statuses ${statuses}`);
  });

  it("shows hosting, peers, wallet, backup and settings from the API, honestly when a part is not there", async () => {
    const shots = { Hosting: "11-hosting", Peers: "12-peers", Wallet: "13-wallet", Backup: "14-backup", Settings: "15-settings" };
    for (const [view, shot] of Object.entries(shots)) {
      await go(view);
      // Each view settles to real data or a "not available" note, never a blank.
      await page.waitForFunction((v) => {
        const el = document.getElementById(`view-${v}`);
        return !/–/.test([...el.querySelectorAll("dd")].map((d) => d.textContent).join("")) || el.querySelector(".na:not([hidden])");
      }, view.toLowerCase());
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= PHONE.width, `${view} is ${width} px wide on a ${PHONE.width} px phone`);
      await screenshot(page, shot);
    }
    // Hosting: a keeps b's file, and the contract is listed with b as the owner.
    await go("Hosting");
    const hosted = page.locator("#hosting-list > li");
    await hosted.first().waitFor();
    assert.ok((await hosted.allTextContents()).some((t) => t.includes(b.peerId.slice(0, 10))), "b's contract on a");
    assert.match(await page.locator("#offer-list").textContent(), /Price floor/);
    // Peers: b and c, connected.
    await go("Peers");
    const peers = page.locator("#peers-list > li");
    await peers.nth(1).waitFor();
    const peerText = (await peers.allTextContents()).join("\n");
    for (const p of [b.peerId, c.peerId]) assert.ok(peerText.includes(p.slice(0, 10)), peerText);
    assert.match(peerText, /● connected/);
    // The audits a ran on b and c, with their outcome (the view refreshes itself).
    await page.locator("#audits-list > li", { hasText: /^passed · segment audit of \/photos\/cat\.jpg/ }).first()
      .waitFor({ timeout: 60_000 });
    await screenshot(page, "12-peers");
    // Settings: the box's own (this test's listen address), with no secret.
    await go("Settings");
    await page.locator(".setting-group").first().waitFor();
    assert.match(await page.locator("#settings-groups").textContent(), /\/ip4\/127\.0\.0\.1\/tcp\/\d+/);
    // Wallet: Lightning is off in these boxes, and the page says why.
    await go("Wallet");
    await page.locator("#wallet-na", { hasText: "Lightning is off" }).waitFor();
    assert.equal(await page.getByRole("button", { name: "New deposit address" }).isDisabled(), true);
    // Backup: the recovery kit as a QR code of the box's own kit text and as a
    // file; the manifest's replication as the manifest worker reports it.
    await go("Backup");
    assert.equal(await page.getByRole("link", { name: "Download MANIFEST.db" }).getAttribute("href"), "/api/files/content?path=%2FMANIFEST.db");
    await page.locator("#kit-qr svg").waitFor();
    const kit = await getJson(a, "/api/backup/kit.txt", cookie);
    assert.match(kit.text, /^BUNKERKIT1:/);
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "Download the recovery kit" }).click()]);
    assert.equal(download.suggestedFilename(), "bunker-recovery-kit.bin");
    assert.ok((await readFile(await download.path())).length > 0);
    const worker = (await getJson(a, "/api/node", cookie)).workers.find((w) => w.name === "manifest");
    assert.ok(worker, "the engine reports a manifest worker");
    assert.match(await page.locator("#manifest-replication").textContent(), new RegExp(`^${worker.state}`));
    await screenshot(page, "14-backup");
  });

  it("mirrors the front panel live, with its buttons", async () => {
    await go("Panel");
    const res = await fetch(`${a.url}/api/panel.png`, { headers: { Cookie: cookie } });
    if (res.status === 503) {
      // The daemon did not connect its panel to the admin page: said so, no fake picture.
      await page.locator("#panel-na", { hasText: "front panel is not connected" }).waitFor();
      assert.equal(await page.locator("#panel-img").isVisible(), false);
      await screenshot(page, "16-panel");
      console.log("panel mirror: this bunkerd does not connect its panel to the admin page (503)");
      return;
    }
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "image/png");
    const img = page.locator("#panel-img");
    await img.waitFor();
    // It refreshes on its own.
    const frames = Number(await img.getAttribute("data-frames"));
    await page.waitForFunction((n) => Number(document.getElementById("panel-img").dataset.frames) >= n + 2, frames, { timeout: 10_000 });
    // A press changes what the screen shows.
    const before = await img.getAttribute("src");
    await page.getByRole("button", { name: "Next / select" }).click();
    await page.waitForFunction((b) => document.getElementById("panel-img").getAttribute("src") !== b, before, { timeout: 10_000 });
    await screenshot(page, "16-panel");
  });

  it("answers no API call without a session", async () => {
    const calls = [
      ["GET", "/api/status"], ["GET", "/api/node"], ["GET", "/api/files?folder=%2F"],
      ["GET", "/api/files/content?path=%2FMANIFEST.db"], ["GET", "/api/files/detail?path=%2FMANIFEST.db"],
      ["PUT", "/api/files/content?path=%2Fx"], ["DELETE", "/api/files/content?path=%2Fx"],
      ["POST", "/api/files/policy"], ["GET", "/api/peers"], ["GET", "/api/contracts"], ["GET", "/api/audits"],
      ["GET", "/api/payments"], ["GET", "/api/wallet"], ["POST", "/api/wallet/address"], ["POST", "/api/wallet/pay"],
      ["GET", "/api/backup/kit"], ["GET", "/api/backup/kit.txt"], ["GET", "/api/settings"], ["POST", "/api/qr"],
      ["GET", "/api/panel.png"], ["POST", "/api/panel/press"],
    ];
    // A fresh browser page without the owner's cookie, on the box's own origin.
    const other = await startBrowser();
    try {
      const p = other.context.pages()[0] ?? (await other.context.newPage());
      await p.goto(a.url);
      const statuses = await p.evaluate(async (calls) => {
        const out = [];
        for (const [method, path] of calls) {
          const init = { method, headers: { "Content-Type": "application/json" } };
          if (method !== "GET") init.body = method === "PUT" ? "x" : "{}";
          out.push([method, path, (await fetch(path, init)).status]);
        }
        return out;
      }, calls);
      for (const [method, path, status] of statuses) {
        assert.equal(status, 401, `${method} ${path} answered ${status} without a session`);
      }
    } finally {
      await other.close();
    }
  });

  it("had no script errors or blocked resources", () => {
    assert.deepEqual(errors, []);
  });
});
