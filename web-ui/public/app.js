// Bunker admin page: the status card. Polls the daemon's status API every
// few seconds and shows it; shows a plain message when the box is unreachable.
"use strict";

const $ = (id) => document.getElementById(id);

function formatDuration(secs) {
  const d = Math.floor(secs / 86400), h = Math.floor((secs % 86400) / 3600);
  const m = Math.floor((secs % 3600) / 60), s = secs % 60;
  if (d) return `${d} d ${h} h`;
  if (h) return `${h} h ${m} min`;
  if (m) return `${m} min ${s} s`;
  return `${s} s`;
}

async function refresh() {
  try {
    const res = await fetch("/api/status", { headers: { Accept: "application/json" } });
    if (!res.ok) throw new Error(`the box answered ${res.status}`);
    const st = await res.json();
    $("state").textContent = st.state;
    $("state").dataset.state = st.state;
    $("state-text").textContent = st.state;
    $("uptime").textContent = formatDuration(st.uptime_secs);
    $("peer-id").textContent = st.peer_id ?? "not known yet";
    $("version").textContent = st.version;
    $("error").hidden = true;
  } catch (err) {
    $("state").textContent = "offline";
    $("state").dataset.state = "offline";
    $("error").textContent = `Cannot reach the box: ${err.message}`;
    $("error").hidden = false;
  }
}

refresh();
setInterval(refresh, 5000);
