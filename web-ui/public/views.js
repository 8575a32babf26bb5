// The app's views, each an object with `refresh()` (reads the API and draws)
// and `every` (milliseconds between refreshes, if it polls). Everything shown
// comes from the box's API; what the API cannot tell yet is said so, never
// filled in with a made-up number.
"use strict";

// ---- formatting ----
function formatDuration(secs) {
  const d = Math.floor(secs / 86400), h = Math.floor((secs % 86400) / 3600);
  const m = Math.floor((secs % 3600) / 60), s = secs % 60;
  if (d) return `${d} d ${h} h`;
  if (h) return `${h} h ${m} min`;
  if (m) return `${m} min ${s} s`;
  return `${s} s`;
}

function formatBytes(n) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n >= 100 || i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}

function formatSat(sat) {
  return `${Math.round(sat).toLocaleString("en-US")} sat`;
}

function formatMsat(msat) {
  if (msat % 1000 === 0) return formatSat(msat / 1000);
  return `${(msat / 1000).toLocaleString("en-US", { maximumFractionDigits: 3 })} sat`;
}

function formatTime(unix) {
  if (!unix) return "never";
  const ago = Date.now() / 1000 - unix;
  if (ago >= 0 && ago < 60) return "just now";
  if (ago >= 0 && ago < 3600) return `${Math.floor(ago / 60)} min ago`;
  if (ago >= 0 && ago < 86400) return `${Math.floor(ago / 3600)} h ago`;
  return new Date(unix * 1000).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/// A time that may be ahead ("in 5 min") or behind.
function formatWhen(unix) {
  const ahead = unix - Date.now() / 1000;
  if (ahead <= 0) return formatTime(unix);
  if (ahead < 60) return "in under a minute";
  if (ahead < 3600) return `in ${Math.round(ahead / 60)} min`;
  if (ahead < 86400) return `in ${Math.round(ahead / 3600)} h`;
  return new Date(unix * 1000).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function shortId(id) {
  return id && id.length > 20 ? `${id.slice(0, 10)}…${id.slice(-6)}` : id || "";
}

function setText(id, text) {
  $(id).textContent = text;
}

/// Says honestly that a part of the box cannot tell this yet: `el` shows why.
function notAvailable(el, err) {
  el.textContent = err.status === 404
    ? "Not available yet: this box's engine does not answer this yet."
    : `Not available: ${capitalize(err.message)}`;
  el.hidden = false;
}

/// `GET path`, or `null` with `el` showing why it is not available.
async function tryGet(path, el) {
  try {
    const data = await api("GET", path);
    if (el) el.hidden = true;
    return data;
  } catch (err) {
    if (err.status === 401) throw err;
    if (el) notAvailable(el, err);
    return null;
  }
}

function dl(target, pairs) {
  target.replaceChildren(...pairs.flatMap(([k, v, cls]) => [htmlEl("dt", { text: k }), htmlEl("dd", { text: v, class: cls || "" })]));
}

function row(title, details, ...actions) {
  const li = htmlEl("li");
  const main = htmlEl("div", { class: "row-main" }, htmlEl("span", { class: "row-title", text: title }));
  if (details) main.append(htmlEl("span", { class: "row-sub", text: details }));
  li.append(main);
  if (actions.length) li.append(htmlEl("div", { class: "row-actions" }, ...actions));
  return li;
}

function fill(listId, emptyId, items) {
  $(listId).replaceChildren(...items);
  if (emptyId) $(emptyId).hidden = items.length > 0;
}

// ---- dashboard ----
async function refreshDashboard() {
  try {
    const st = await api("GET", "/api/status");
    if ($("view-dashboard").hidden) return;
    $("state").textContent = st.state;
    $("state").dataset.state = st.state;
    $("state").hidden = false;
    setText("state-text", st.state);
    setText("uptime", formatDuration(st.uptime_secs));
    setText("peer-id", st.peer_id ?? "not known yet");
    setText("version", st.version);
    const space = st.data_dir_space;
    if (space && space.total_bytes > 0) {
      const used = space.total_bytes - space.free_bytes;
      const pct = Math.min(100, Math.max(0, (used / space.total_bytes) * 100));
      $("space-used").style.width = `${pct.toFixed(1)}%`;
      $("space-meter").classList.toggle("full", pct > 90);
      $("space-meter").setAttribute("aria-label", `${Math.round(pct)}% used`);
      setText("space-text", `${formatBytes(space.free_bytes)} free of ${formatBytes(space.total_bytes)}`);
    } else {
      setText("space-text", "The box could not read its storage.");
    }
    const alerts = st.alerts ?? [];
    $("alerts-card").hidden = alerts.length === 0;
    $("alerts").replaceChildren(...alerts.map((a) => htmlEl("li", { class: a.severity },
      htmlEl("strong", { text: a.short }), ` — ${a.text}`)));
    const disks = st.disks ?? [];
    $("disks").replaceChildren(...(disks.length === 0
      ? [htmlEl("li", { text: "not probed yet" })]
      : disks.map((d) => htmlEl("li", { class: d.state === "active" ? "" : "error" },
        htmlEl("strong", { text: d.label }),
        ` · ${d.state.replace(/_/g, " ")}`,
        d.total_bytes > 0 ? ` · ${formatBytes(d.free_bytes)} free of ${formatBytes(d.total_bytes)}` : "",
        d.on_system_device ? " · on the system SD card" : "",
        d.last_error ? ` — ${d.last_error}` : ""))));
    $("status-error").hidden = true;
  } catch (err) {
    if (err.status === 401) throw err;
    $("state").textContent = "offline";
    $("state").dataset.state = "offline";
    $("state").hidden = false;
    showError("status-error", err);
  }

  const node = await tryGet("/api/node", $("health-na"));
  $("health-list").hidden = !node;
  $("alloc-list").hidden = $("alloc-chart").hidden = !node;
  if (node) {
    $("alloc-na").hidden = true;
    setText("dash-files", `${node.files} (${formatBytes(node.stored_bytes)})`);
    setText("dash-under", node.under_replicated === 0 ? "none" : `${node.under_replicated} file(s) have fewer copies than wanted`);
    setText("dash-peers", String(node.connected_peers));
    setText("dash-audits", node.audits_total_24h === 0
      ? "no audits in the last 24 h"
      : `${Math.round((node.audits_passed_24h / node.audits_total_24h) * 100)}% passed (${node.audits_passed_24h} of ${node.audits_total_24h})`);
    setText("dash-ln", node.lightning);
    $("workers-title").hidden = node.workers.length === 0;
    $("dash-workers").replaceChildren(...node.workers.map((w) => htmlEl("li", { class: w.last_error ? "error" : "" },
      htmlEl("strong", { text: w.name.replace(/_/g, " ") }), `: ${w.state}`,
      w.next_run_at ? ` · next ${formatWhen(w.next_run_at)}` : "", w.last_error ? ` — last error: ${w.last_error}` : "")));
    setText("dash-stored", formatBytes(node.stored_bytes));
    setText("dash-hosted", formatBytes(node.hosted_bytes));
    setText("dash-offerable", formatBytes(node.offerable_bytes));
    drawStackedBar($("alloc-chart"), [
      { label: "Your files", value: node.stored_bytes, cls: "own" },
      { label: "Hosted for peers", value: node.hosted_bytes, cls: "hosted" },
      { label: "Free to offer", value: node.offerable_bytes, cls: "free" },
    ], `space allocation: ${formatBytes(node.stored_bytes)} your files, ${formatBytes(node.hosted_bytes)} hosted, ${formatBytes(node.offerable_bytes)} free to offer`);
    setText("dash-earned", formatMsat(node.earned_msat));
    setText("dash-spent", formatMsat(node.spent_msat));
  } else {
    notAvailable($("alloc-na"), { status: 404 });
    $("workers-title").hidden = true;
    $("dash-workers").replaceChildren();
    setText("dash-earned", "not available yet");
    setText("dash-spent", "not available yet");
  }

  let balance;
  try {
    balance = formatSat(lightningSat((await api("GET", "/api/wallet")).balances));
  } catch (err) {
    if (err.status === 401) throw err;
    balance = err.status === 404 ? "not available yet" : `not available: ${err.message}`;
  }
  setText("dash-balance", balance);
  const payments = await tryGet("/api/payments?limit=1000", $("sats-na"));
  $("sats-chart").hidden = !payments;
  if (payments) drawSatsChart($("sats-chart"), payments);
}

function lightningSat(b) {
  if (b.lightning_msat !== undefined) return b.lightning_msat / 1000;
  return b.lightning_sat ?? 0;
}

// ---- files ----
let folder = "/";
let detailPath = null;

/// The folder named in the address bar (#files=/photos), `/` by default.
function folderFromHash() {
  const [name, value] = location.hash.slice(1).split("=");
  if (name !== "files" || !value) return "/";
  try {
    return decodeURIComponent(value);
  } catch {
    return "/";
  }
}

function joinPath(dir, name) {
  return dir === "/" ? `/${name}` : `${dir}/${name}`;
}

function baseName(path) {
  return path.slice(path.lastIndexOf("/") + 1);
}

/// Why `name` cannot be a file or folder name, or null. The box judges
/// again (FilePath::parse); this only saves a round trip and says it plainly.
function badName(name) {
  if (!name) return "a name cannot be empty";
  if (name === "." || name === "..") return `"${name}" is not allowed as a name`;
  if (name.includes("/")) return "a name cannot contain /";
  if (name.includes("\0")) return "a name cannot contain a NUL character";
  if (new TextEncoder().encode(name).length > 255) return "a name can have at most 255 bytes";
  if (folder === "/" && name === "MANIFEST.db") return "/MANIFEST.db is the box's own database";
  return null;
}

function contentUrl(path) {
  return `/api/files/content?path=${encodeURIComponent(path)}`;
}

async function refreshFiles() {
  folder = folderFromHash();
  drawCrumbs();
  let listing;
  try {
    listing = await api("GET", `/api/files?folder=${encodeURIComponent(folder)}`);
    $("files-error").hidden = true;
    $("files-error").className = "error";
  } catch (err) {
    if (err.status === 401) throw err;
    if (err.status === 404 && /no such API/.test(err.message) || err.status === 503) {
      notAvailable($("files-error"), err);
      $("files-error").className = "na";
    } else {
      showError("files-error", err);
      $("files-error").className = "error";
    }
    fill("file-list", null, []);
    $("files-empty").hidden = true;
    return;
  }
  const items = [];
  for (const name of listing.folders) {
    const a = htmlEl("a", { href: `#files=${encodeURIComponent(joinPath(folder, name))}`, class: "row-title folder", text: `${name}/` });
    const li = htmlEl("li", {}, htmlEl("div", { class: "row-main" }, a, htmlEl("span", { class: "row-sub", text: "folder" })));
    items.push(li);
  }
  for (const f of listing.files) items.push(fileRow(f));
  fill("file-list", "files-empty", items);
  if (detailPath && !listing.files.some((f) => f.path === detailPath)) closeDetail();
}

function fileRow(f) {
  const name = baseName(f.path);
  const sub = f.is_manifest
    ? "the box's database · a consistent copy when downloaded"
    : `${formatBytes(f.size)} · ${f.active_replicas} of ${f.policy.copies} copies on peers${f.has_local ? " · on this box" : ""}`;
  const download = htmlEl("a", { href: contentUrl(f.path), download: name, class: "button small", text: "Download",
    "aria-label": `Download ${name}` });
  const details = htmlEl("button", { type: "button", class: "small secondary", text: "Details", "aria-label": `Details of ${name}` });
  details.addEventListener("click", () => openDetail(f));
  const li = row(name, sub, download, details);
  li.dataset.path = f.path;
  if (f.is_manifest) li.querySelector(".row-title").append(" ", htmlEl("span", { class: "tag", text: "box database" }));
  return li;
}

function drawCrumbs() {
  const parts = folder.split("/").filter(Boolean);
  const crumbs = [htmlEl("a", { href: "#files=%2F", text: "Box" })];
  let path = "";
  for (const p of parts) {
    path += `/${p}`;
    crumbs.push(htmlEl("span", { "aria-hidden": "true", text: " / " }), htmlEl("a", { href: `#files=${encodeURIComponent(path)}`, text: p }));
  }
  crumbs[crumbs.length - 1].setAttribute("aria-current", "location");
  $("crumbs").replaceChildren(...crumbs);
}

function closeDetail() {
  detailPath = null;
  $("file-detail").hidden = true;
}

async function openDetail(f) {
  detailPath = f.path;
  const panel = $("file-detail");
  panel.hidden = false;
  setText("detail-title", baseName(f.path));
  $("detail-download").href = contentUrl(f.path);
  $("detail-download").setAttribute("download", baseName(f.path));
  for (const id of ["detail-error", "policy-error", "policy-ok"]) $(id).hidden = true;
  $("policy-form").hidden = $("detail-delete").hidden = f.is_manifest;
  dl($("detail-facts"), [["Path", f.path, "mono"], ["Size", f.is_manifest ? "taken when downloaded" : formatBytes(f.size)]]);
  $("policy-copies").value = f.policy.copies;
  $("policy-local").checked = f.policy.keep_local;
  fill("detail-replicas", null, []);
  fill("detail-audits", null, []);
  panel.scrollIntoView({ block: "start" });
  if (f.is_manifest) {
    dl($("detail-facts"), [["Path", f.path, "mono"], ["What", "The box's database: every file, replica, contract and payment. Its replication is on the Backup view."]]);
    return;
  }
  try {
    const d = await api("GET", `/api/files/detail?path=${encodeURIComponent(f.path)}`);
    if (detailPath !== f.path) return;
    dl($("detail-facts"), [
      ["Path", d.file.path, "mono"],
      ["Size", formatBytes(d.file.size)],
      ["Changed", formatTime(d.file.modified_at)],
      ["On this box", d.file.has_local ? "yes" : "no"],
      ["Copies on peers", `${d.file.active_replicas} active of ${d.file.policy.copies} wanted`],
      ["BLAKE3", d.blake3, "mono"],
    ]);
    fill("detail-replicas", null, d.replicas.length ? d.replicas.map((r) => row(`#${r.index} on ${shortId(r.host)}`,
      `${r.state} · audited ${formatTime(r.last_audit_at)} · full check ${formatTime(r.last_full_check_at)}` +
      (r.consecutive_failures ? ` · ${r.consecutive_failures} failures in a row` : ""))) : [htmlEl("li", { class: "muted", text: "No replicas on peers yet." })]);
    fill("detail-audits", null, d.audits.length ? d.audits.map(auditRow) : [htmlEl("li", { class: "muted", text: "No audits yet." })]);
  } catch (err) {
    if (err.status === 401) return show("login");
    showError("detail-error", err);
  }
}

function auditRow(a) {
  const li = row(`${a.outcome} · ${a.kind} audit of ${a.path} #${a.replica}`,
    `${formatTime(a.at)} · host ${shortId(a.host)} · ${a.latency_ms} ms${a.detail ? ` · ${a.detail}` : ""}`);
  li.classList.add(a.outcome === "passed" ? "good" : "bad");
  return li;
}

$("policy-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  $("policy-ok").hidden = true;
  busy(ev.target, "policy-error", async () => {
    const copies = Number($("policy-copies").value);
    const keepLocal = $("policy-local").checked;
    if (!Number.isInteger(copies) || copies < 0 || copies > 10) throw new Error("copies must be a whole number from 0 to 10");
    if (!keepLocal && copies < 2) {
      throw new Error("without a copy on this box, keep at least 2 copies on other boxes");
    }
    const path = detailPath;
    const f = await api("POST", "/api/files/policy", { path, copies, keep_local: keepLocal });
    $("policy-ok").hidden = false;
    await refreshFiles();
    if (detailPath === path) openDetail(f).then(() => ($("policy-ok").hidden = false));
  });
});

/// Asks in a modal dialog; resolves true when the owner confirms.
function confirmDialog(text, okLabel) {
  const dialog = $("confirm-dialog");
  setText("confirm-text", text);
  setText("confirm-ok", okLabel);
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true }));
}

$("detail-delete").addEventListener("click", async () => {
  const path = detailPath;
  if (!path) return;
  if (!(await confirmDialog(`Delete ${path}? Its copies on other boxes are released too. This cannot be undone.`, "Delete"))) return;
  busy($("detail-delete"), "detail-error", async () => {
    await api("DELETE", contentUrl(path));
    closeDetail();
    await refreshFiles();
  });
});

$("folder-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  busy(ev.target, "folder-error", async () => {
    const name = $("folder-name").value.trim();
    const bad = badName(name);
    if (bad) throw new Error(bad);
    $("folder-name").value = "";
    location.hash = `#files=${encodeURIComponent(joinPath(folder, name))}`;
  });
});

/// PUTs `file` as the raw body to `path`; `onProgress(sentBytes)` follows the upload.
function putFile(path, file, copies, keepLocal, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", `${contentUrl(path)}&copies=${copies}&keep_local=${keepLocal}`);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (e) => onProgress(e.loaded));
    xhr.addEventListener("load", () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        data = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(new ApiError(xhr.status, (data && data.error) || `the box answered ${xhr.status}`));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "the upload was cut off: is the box still reachable?")));
    xhr.addEventListener("abort", () => reject(new ApiError(0, "the upload was stopped")));
    xhr.send(file);
  });
}

$("upload-start").addEventListener("click", () => {
  const files = [...$("upload-input").files];
  busy($("upload-start"), "upload-error", async () => {
    if (!files.length) throw new Error("choose one or more files first");
    const copies = Number($("upload-copies").value);
    const keepLocal = $("upload-local").checked;
    if (!Number.isInteger(copies) || copies < 0 || copies > 10) throw new Error("copies must be a whole number from 0 to 10");
    if (!keepLocal && copies < 2) throw new Error("without a copy on this box, keep at least 2 copies on other boxes");
    const list = $("upload-list");
    list.replaceChildren();
    const target = folder;
    let failed = 0;
    for (const file of files) {
      const bar = htmlEl("progress", { max: String(Math.max(file.size, 1)), value: "0", "aria-label": `Uploading ${file.name}` });
      const note = htmlEl("span", { class: "row-sub", text: "waiting" });
      const li = htmlEl("li", { class: "upload" }, htmlEl("span", { class: "row-title", text: file.name }), bar, note);
      li.dataset.name = file.name;
      list.append(li);
      const bad = badName(file.name);
      if (bad) {
        li.classList.add("bad");
        note.textContent = `refused: ${bad}`;
        failed++;
        continue;
      }
      try {
        await putFile(joinPath(target, file.name), file, copies, keepLocal, (sent) => {
          bar.value = sent;
          note.textContent = `${formatBytes(sent)} of ${formatBytes(file.size)}`;
        });
        bar.value = Math.max(file.size, 1);
        note.textContent = `uploaded (${formatBytes(file.size)})`;
        li.classList.add("good");
      } catch (err) {
        if (err.status === 401) return show("login");
        li.classList.add("bad");
        note.textContent = `failed: ${err.message}`;
        failed++;
      }
    }
    $("upload-input").value = "";
    await refreshFiles();
    if (failed) throw new Error(`${failed} of ${files.length} file(s) were not uploaded; see the list below`);
  });
});

// ---- hosting ----
async function refreshHosting() {
  const [contracts, node, settings] = await Promise.all([
    tryGet("/api/contracts", null), tryGet("/api/node", null), tryGet("/api/settings", null)]);
  if (!contracts) {
    notAvailable($("hosting-error"), { status: 404 });
    $("hosting-error").className = "na";
    fill("hosting-list", null, []);
    $("hosting-empty").hidden = true;
    for (const id of ["host-bytes", "host-earned", "host-owed"]) setText(id, "not available yet");
  } else {
    $("hosting-error").hidden = true;
    const ours = contracts.filter((c) => c.direction === "theirs_on_us");
    const live = ours.filter((c) => c.state === "active" || c.state === "ending");
    setText("host-bytes", `${formatBytes(live.reduce((s, c) => s + c.bytes, 0))} in ${live.length} contract(s)`);
    setText("host-earned", formatMsat(ours.reduce((s, c) => s + c.paid_msat, 0)));
    setText("host-owed", formatMsat(ours.reduce((s, c) => s + c.owed_msat, 0)));
    fill("hosting-list", "hosting-empty", ours.map((c) => row(`${formatBytes(c.bytes)} for ${shortId(c.peer)}`,
      `${c.state} · ${c.is_swap ? "swap (storage for storage)" : `${formatMsat(c.price_msat_per_gib_day)}/GiB-day`} · ` +
      `earned ${formatMsat(c.paid_msat)} · owed ${formatMsat(c.owed_msat)} · until ${formatTime(c.term_end_at)}`)));
  }
  const h = settings?.settings?.hosting;
  const pairs = [];
  if (node) pairs.push(["Free to offer now", formatBytes(node.offerable_bytes)]);
  if (h) for (const [k, v] of Object.entries(h)) pairs.push([settingLabel(k), settingValue(k, v)]);
  if (!pairs.length) pairs.push(["Offer", "not available yet"]);
  dl($("offer-list"), pairs);
}

// ---- peers ----
async function refreshPeers() {
  const peers = await tryGet("/api/peers", $("peers-error"));
  if (peers) {
    $("peers-error").className = "error";
    setText("peers-nat", peers.nat);
    setText("peers-listen", peers.listen_addrs.join("\n") || "nowhere");
    fill("peers-list", "peers-empty", peers.peers.map((p) => {
      const total = p.audit_successes + p.audit_failures;
      const record = total > 0 ? `${Math.round((p.audit_successes / total) * 100)}% of audits passed` : "no audits yet";
      const li = row(`${p.connected ? "● connected" : "○ known"} · ${shortId(p.peer)}`,
        `${record} · seen ${formatTime(p.last_seen_at)}${p.addresses.length ? ` · ${p.addresses[0]}` : ""}`);
      li.classList.add(p.connected ? "good" : "idle");
      li.title = p.peer;
      return li;
    }));
  } else {
    $("peers-error").className = "na";
    setText("peers-nat", "not available yet");
    setText("peers-listen", "not available yet");
    fill("peers-list", null, []);
    $("peers-empty").hidden = true;
  }
  const audits = await tryGet("/api/audits?limit=50", $("audits-error"));
  $("audits-error").className = audits ? "error" : "na";
  if (audits) fill("audits-list", "audits-empty", audits.map(auditRow));
  else {
    fill("audits-list", null, []);
    $("audits-empty").hidden = true;
  }
}

// ---- wallet ----
async function refreshWallet() {
  const wallet = await tryGet("/api/wallet", $("wallet-na"));
  $("wallet-balances").hidden = !wallet;
  for (const id of ["deposit-new", "open-form", "invoice-form", "pay-form"]) {
    for (const b of ($(id).tagName === "FORM" ? $(id).querySelectorAll("button") : [$(id)])) b.disabled = !wallet;
  }
  if (wallet) {
    const b = wallet.balances;
    setText("wallet-onchain", formatSat(b.onchain_sat ?? b.onchain_total_sat ?? 0));
    setText("wallet-spendable", formatSat(b.onchain_spendable_sat ?? 0));
    setText("wallet-ln", formatSat(lightningSat(b)));
    setText("wallet-node", wallet.node_id);
    fill("channels-list", "channels-empty", wallet.channels.map((c) => {
      const close = htmlEl("button", { type: "button", class: "small danger", text: "Close", "aria-label": `Close channel with ${shortId(c.counterparty)}` });
      close.addEventListener("click", () => closeChannel(c));
      return row(`${formatSat(c.value_sat)} with ${shortId(c.counterparty)}`,
        `${c.usable ? "usable" : c.ready ? "ready, peer offline" : "waiting for confirmation"} · can send ${formatMsat(c.outbound_msat)} · can receive ${formatMsat(c.inbound_msat)}`, close);
    }));
  } else {
    fill("channels-list", null, []);
    $("channels-empty").hidden = true;
  }
  const payments = await tryGet("/api/payments?limit=100", $("payments-error"));
  $("payments-error").className = payments ? "error" : "na";
  if (payments) {
    fill("payments-list", "payments-empty", payments.map((p) => {
      const li = row(`${p.direction === "incoming" ? "+" : "−"}${formatMsat(p.amount_msat)} · ${p.state}`,
        `${formatTime(p.created_at)}${p.fee_msat ? ` · fee ${formatMsat(p.fee_msat)}` : ""}${p.contract ? ` · contract ${shortId(p.contract)}` : ""}`);
      li.classList.add(p.state === "failed" ? "bad" : p.direction === "incoming" ? "good" : "idle");
      return li;
    }));
  } else {
    fill("payments-list", null, []);
    $("payments-empty").hidden = true;
  }
  const settings = await tryGet("/api/settings", null);
  const ln = settings?.settings?.ln;
  const lsp = ln?.lsps2;
  const pairs = !ln ? [["Liquidity provider", "not available yet"]]
    : lsp?.node_id
      ? [["Provider (LSPS2)", lsp.node_id, "mono-v"], ["Address", lsp.address, "mono-v"], ["Token", lsp.token ? lsp.token : "(none)"]]
      : [["Liquidity provider", "none set: a new box without inbound capacity cannot be paid until a channel is opened to it (ln.lsps2 in the config file)"]];
  for (const [k, v] of Object.entries(ln ?? {})) if (/chain|network|settle/.test(k)) pairs.push([settingLabel(k), settingValue(k, v)]);
  dl($("lsp-list"), pairs);
}

async function showQr(figureId, text, label) {
  const qr = await api("POST", "/api/qr", { text });
  drawQr($(figureId), qr, label);
}

$("deposit-new").addEventListener("click", (ev) => {
  busy(ev.target, "deposit-error", async () => {
    const { address } = await api("POST", "/api/wallet/address");
    setText("deposit-address", address);
    $("deposit-address").hidden = false;
    await showQr("deposit-qr", `bitcoin:${address}`, `QR code of the deposit address ${address}`);
  });
});

async function closeChannel(c) {
  if (!(await confirmDialog(`Close the ${formatSat(c.value_sat)} channel with ${shortId(c.counterparty)}? The funds return on-chain.`, "Close channel"))) return;
  try {
    await api("DELETE", `/api/wallet/channels/${encodeURIComponent(c.user_channel_id)}?node_id=${encodeURIComponent(c.counterparty)}`);
    await refreshWallet();
  } catch (err) {
    if (err.status === 401) return show("login");
    showError("channels-error", err);
  }
}

$("open-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  $("open-ok").hidden = true;
  busy(ev.target, "open-error", async () => {
    const nodeId = $("open-node").value.trim().toLowerCase();
    const address = $("open-addr").value.trim();
    const sat = Number($("open-sat").value), push = Number($("open-push").value || 0);
    if (!/^(02|03)[0-9a-f]{64}$/.test(nodeId)) throw new Error("a node ID is 66 hex characters starting with 02 or 03");
    if (!/^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(address)) throw new Error("give the address as host:port");
    if (!Number.isInteger(sat) || sat <= 0) throw new Error("the amount must be a whole number of sats");
    if (!Number.isInteger(push) || push < 0) throw new Error("the push amount must be a whole number of msat");
    const answer = await api("POST", "/api/wallet/channels", { node_id: nodeId, address, sat, push_msat: push });
    setText("open-ok", `Channel opening (id ${answer.user_channel_id}); it is usable after the funding confirms.`);
    $("open-ok").hidden = false;
    await refreshWallet();
  });
});

$("invoice-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  busy(ev.target, "invoice-error", async () => {
    const msat = Number($("invoice-msat").value);
    if (!Number.isInteger(msat) || msat <= 0) throw new Error("the amount must be a whole number of msat");
    const { invoice } = await api("POST", "/api/wallet/invoice", { msat, description: $("invoice-desc").value });
    setText("invoice-text", invoice);
    $("invoice-text").hidden = false;
    await showQr("invoice-qr", invoice.toUpperCase(), "QR code of the invoice");
  });
});

$("pay-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  $("pay-ok").hidden = true;
  busy(ev.target, "pay-error", async () => {
    const invoice = $("pay-invoice").value.trim();
    if (!/^ln/i.test(invoice)) throw new Error("paste a Lightning invoice (it starts with ln)");
    const { payment_id } = await api("POST", "/api/wallet/pay", { invoice });
    setText("pay-ok", `Payment sent (id ${shortId(payment_id)}); its outcome shows under Payments.`);
    $("pay-ok").hidden = false;
    $("pay-invoice").value = "";
    await refreshWallet();
  });
});

// ---- backup ----
async function refreshBackup() {
  const kit = await tryGet("/api/backup/kit.txt", $("kit-error"));
  $("kit-error").className = "na";
  $("kit-download").hidden = !kit;
  if (kit) await showQr("kit-qr", kit.text, "QR code of the recovery kit");
  else $("kit-qr").hidden = true;
  await refreshReplication();
}

/// The state words of `/api/backup` as the row colour of the state line.
const REPLICATION_CLASS = { up_to_date: "ok", behind: "error", too_few_holders: "warn", not_replicated: "warn" };

async function refreshReplication() {
  const r = await tryGet("/api/backup", $("repl-na"));
  for (const id of ["repl-state", "repl-facts"]) $(id).hidden = !r;
  if (!r) {
    fill("repl-holders", null, []);
    $("repl-empty").hidden = true;
    return;
  }
  setText("repl-state", r.summary);
  $("repl-state").className = REPLICATION_CLASS[r.state] || "";
  $("repl-state").dataset.state = r.state;
  const facts = [
    ["Newest snapshot", r.latest_version ? `version ${r.latest_version}` : "none made yet"],
    ["Holders with it", `${r.current_holders} of ${r.target_holders} wanted`],
    ["Last replicated", r.last_replicated_at ? formatTime(r.last_replicated_at) : "never"],
  ];
  if (r.last_round_at) facts.push(["Last round", `${formatTime(r.last_round_at)}: ${r.last_round}`]);
  facts.push(["Next round", r.next_due_at ? formatWhen(r.next_due_at) : "not scheduled yet"]);
  dl($("repl-facts"), facts);
  fill("repl-holders", "repl-empty", r.holders.map((h) => {
    const a = h.last_audit;
    const audit = a
      ? `last check ${formatTime(a.at)}: ${a.outcome}${a.served_version != null ? ` (served version ${a.served_version})` : ""}${a.detail ? ` — ${a.detail}` : ""}`
      : "not checked since the box started";
    const li = row(shortId(h.peer), `version ${h.confirmed_version} confirmed ${formatTime(h.confirmed_at)} · ${audit}`);
    li.title = h.peer;
    li.dataset.peer = h.peer;
    li.classList.add(a && a.outcome !== "passed" ? "bad" : h.confirmed_version >= r.latest_version ? "good" : "idle");
    return li;
  }));
  const node = await tryGet("/api/node", null);
  const worker = node?.workers.find((w) => /manifest/.test(w.name));
  $("repl-worker").hidden = !worker;
  if (worker) setText("manifest-replication", `${worker.state}${worker.last_error ? ` — last error: ${worker.last_error}` : ""}`);
}

for (const [id, path, done] of [
  ["repl-now", "/api/backup/replicate", (a) => `Snapshot ${a.round.version} stored on ${a.round.stored.length} peer(s)${a.round.failed.length ? `; ${a.round.failed.length} did not take it` : ""}.`],
  ["repl-check", "/api/backup/audit", (a) => `${a.audits.filter((x) => x.outcome === "passed").length} of ${a.audits.length} holder(s) passed the check.`],
]) {
  $(id).addEventListener("click", (ev) => {
    $("repl-ok").hidden = true;
    busy(ev.target, "repl-error", async () => {
      const answer = await api("POST", path);
      setText("repl-ok", done(answer));
      $("repl-ok").hidden = false;
      await refreshReplication();
    });
  });
}

// ---- settings ----
function settingLabel(key) {
  const s = key.replace(/_/g, " ").replace(/ msat per gib day$/, " (msat per GiB-day)").replace(/ msat per gib$/, " (msat per GiB)")
    .replace(/ msat$/, " (msat)").replace(/ bytes$/, " (bytes)");
  return capitalize(s);
}

function settingValue(key, v) {
  if (v === null || v === "") return "(not set)";
  if (Array.isArray(v)) return v.length ? v.join(", ") : "(none)";
  if (typeof v === "object") return Object.entries(v).map(([k, x]) => `${k.replace(/_/g, " ")}: ${settingValue(k, x)}`).join(" · ");
  if (typeof v === "number" && /bytes$/.test(key)) return `${formatBytes(v)} (${v.toLocaleString("en-US")} B)`;
  if (typeof v === "number") return v.toLocaleString("en-US");
  return String(v);
}

async function refreshSettings() {
  const answer = await tryGet("/api/settings", $("settings-na"));
  if (!answer) return $("settings-groups").replaceChildren();
  const groups = [];
  const top = [];
  for (const [section, value] of Object.entries(answer.settings)) {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      const list = htmlEl("dl");
      dl(list, Object.entries(value).map(([k, v]) => [settingLabel(k), settingValue(k, v), "mono-v"]));
      groups.push(htmlEl("section", { class: "setting-group", "aria-label": section }, htmlEl("h3", { text: capitalize(section) }), list));
    } else top.push([settingLabel(section), settingValue(section, value), "mono-v"]);
  }
  if (top.length) {
    const list = htmlEl("dl");
    dl(list, top);
    groups.unshift(htmlEl("section", { class: "setting-group", "aria-label": "general" }, htmlEl("h3", { text: "General" }), list));
  }
  $("settings-groups").replaceChildren(...groups);
}

$("password-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  $("password-ok").hidden = true;
  busy(ev.target, "password-error", async () => {
    const newPassword = $("pw-new").value;
    if (newPassword.length < 8) throw new Error("the new password must have at least 8 characters");
    if (newPassword !== $("pw-new2").value) throw new Error("the two new passwords are not the same");
    await api("POST", "/api/password", { old_password: $("pw-old").value, new_password: newPassword });
    for (const id of ["pw-old", "pw-new", "pw-new2"]) $(id).value = "";
    $("password-ok").hidden = false;
  });
});

// ---- panel ----
let panelFrames = 0;

async function refreshPanel() {
  let res;
  try {
    res = await fetch("/api/panel.png", { credentials: "same-origin", cache: "no-store" });
  } catch {
    return notAvailable($("panel-na"), new Error("cannot reach the box"));
  }
  if (res.status === 401) throw new ApiError(401, "not logged in");
  if (!res.ok) {
    const data = await res.json().catch(() => null);
    notAvailable($("panel-na"), new ApiError(res.status, (data && data.error) || `the box answered ${res.status}`));
    $("panel-img").hidden = true;
    return;
  }
  // A data: URL (the page's CSP allows no blob: images).
  const blob = await res.blob();
  const url = await new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(r.result);
    r.onerror = () => reject(r.error);
    r.readAsDataURL(blob);
  });
  if ($("view-panel").hidden) return;
  $("panel-img").src = url;
  $("panel-img").hidden = false;
  $("panel-na").hidden = true;
  panelFrames++;
  $("panel-img").dataset.frames = String(panelFrames);
}

for (const id of ["panel-next", "panel-back", "panel-long"]) {
  $(id).addEventListener("click", (ev) => {
    const b = ev.currentTarget;
    busy(b, "panel-error", async () => {
      await api("POST", "/api/panel/press", { button: Number(b.dataset.button), hold_ms: Number(b.dataset.hold) });
      // Show the press's effect without waiting for the next tick.
      setTimeout(() => refreshPanel().catch(() => {}), 250);
    });
  });
}

const VIEWS_APP = {
  dashboard: { refresh: refreshDashboard, every: 5000 },
  files: { refresh: refreshFiles },
  hosting: { refresh: refreshHosting, every: 15000 },
  peers: { refresh: refreshPeers, every: 10000 },
  wallet: { refresh: refreshWallet, every: 5000 },
  backup: { refresh: refreshBackup },
  settings: { refresh: refreshSettings },
  panel: { refresh: refreshPanel, every: 1500 },
};

route();
