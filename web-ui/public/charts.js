// Small inline-SVG drawings for the admin page: the space allocation bar, the
// sats-over-time chart and QR codes (whose modules the box computes, see
// POST /api/qr). Built with DOM calls, never from HTML strings, so nothing
// the box or a peer sends can become markup.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function htmlEl(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) el.append(c);
  return el;
}

/// A horizontal stacked bar of `parts` ([{label, value, cls}]) with a legend.
/// `describe` gives the chart's accessible name.
function drawStackedBar(figure, parts, describe) {
  const total = parts.reduce((s, p) => s + p.value, 0);
  const width = 320, height = 28;
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": describe, class: "stack" });
  let x = 0;
  for (const p of parts) {
    const w = total > 0 ? (p.value / total) * width : 0;
    if (w > 0) svg.append(svgEl("rect", { x: x.toFixed(2), y: 0, width: Math.max(w, 1).toFixed(2), height, class: p.cls }));
    x += w;
  }
  if (total === 0) svg.append(svgEl("rect", { x: 0, y: 0, width, height, class: "empty" }));
  const legend = htmlEl("ul", { class: "legend" });
  for (const p of parts) {
    const pct = total > 0 ? Math.round((p.value / total) * 100) : 0;
    legend.append(htmlEl("li", {}, htmlEl("span", { class: `swatch ${p.cls}`, "aria-hidden": "true" }),
      `${p.label}: ${formatBytes(p.value)} (${pct}%)`));
  }
  figure.replaceChildren(svg, legend);
}

/// Bars of sats earned (up) and spent (down) per day, from payments
/// ([{created_at, amount_msat, direction, state}]); only succeeded ones count.
function drawSatsChart(figure, payments, days = 14) {
  const dayMs = 86400 * 1000;
  const today = Math.floor(Date.now() / dayMs);
  const earned = new Array(days).fill(0), spent = new Array(days).fill(0);
  for (const p of payments) {
    if (p.state !== "succeeded") continue;
    const i = days - 1 - (today - Math.floor((p.created_at * 1000) / dayMs));
    if (i < 0 || i >= days) continue;
    (p.direction === "incoming" ? earned : spent)[i] += p.amount_msat / 1000;
  }
  const max = Math.max(1, ...earned, ...spent);
  const width = 320, height = 140, mid = 70, barW = width / days;
  const svg = svgEl("svg", {
    viewBox: `0 0 ${width} ${height + 16}`, role: "img", class: "bars",
    "aria-label": `sats earned and spent per day over the last ${days} days: ` +
      `${Math.round(earned.reduce((a, b) => a + b, 0))} earned, ${Math.round(spent.reduce((a, b) => a + b, 0))} spent`,
  });
  svg.append(svgEl("line", { x1: 0, x2: width, y1: mid, y2: mid, class: "axis" }));
  for (let i = 0; i < days; i++) {
    const hE = (earned[i] / max) * (mid - 4), hS = (spent[i] / max) * (mid - 4);
    const x = i * barW + 2;
    if (hE > 0) svg.append(svgEl("rect", { x, y: mid - hE, width: barW - 4, height: Math.max(hE, 1), class: "earned" },));
    if (hS > 0) svg.append(svgEl("rect", { x, y: mid, width: barW - 4, height: Math.max(hS, 1), class: "spent" }));
  }
  if (max === 1 && earned.every((v) => v === 0) && spent.every((v) => v === 0)) {
    svg.append(svgEl("text", { x: width / 2, y: mid - 8, class: "tick", "text-anchor": "middle" }, `no payments in the last ${days} days`));
  }
  const first = new Date((today - days + 1) * dayMs), last = new Date(today * dayMs);
  const fmt = (d) => d.toLocaleDateString(undefined, { month: "short", day: "numeric" });
  svg.append(svgEl("text", { x: 0, y: height + 12, class: "tick" }, fmt(first)));
  svg.append(svgEl("text", { x: width, y: height + 12, class: "tick", "text-anchor": "end" }, fmt(last)));
  const legend = htmlEl("ul", { class: "legend" },
    htmlEl("li", {}, htmlEl("span", { class: "swatch earned", "aria-hidden": "true" }), "earned (up)"),
    htmlEl("li", {}, htmlEl("span", { class: "swatch spent", "aria-hidden": "true" }), "spent (down)"));
  figure.replaceChildren(svg, legend);
}

/// Draws a QR code ({size, rows: ["0101…"]}) as one SVG path with a quiet
/// zone of 4 modules; `label` is its accessible name.
function drawQr(figure, qr, label) {
  const q = 4, n = qr.size + 2 * q;
  let d = "";
  qr.rows.forEach((row, y) => {
    for (let x = 0; x < row.length; x++) if (row[x] === "1") d += `M${x + q} ${y + q}h1v1h-1z`;
  });
  const svg = svgEl("svg", { viewBox: `0 0 ${n} ${n}`, role: "img", "aria-label": label, "shape-rendering": "crispEdges" });
  svg.append(svgEl("rect", { width: n, height: n, fill: "#fff" }), svgEl("path", { d, fill: "#000" }));
  figure.replaceChildren(svg);
  figure.hidden = false;
}
