// Bunker admin page. One page, one view at a time:
//   claim (pairing code + password) → words (shown once) → quiz (3 words) → the app,
//   and login whenever there is no session. Every view is chosen from what the
//   daemon says, never assumed: reloading the page lands where setup really stands.
// The app's views (dashboard, files, hosting, peers, wallet, backup, settings,
// panel) live in views.js; each is a `#name` in the address bar, so the phone's
// back button and a reload keep the place.
"use strict";

const $ = (id) => document.getElementById(id);
const SETUP_VIEWS = ["claim", "words", "quiz", "login"];
const APP_VIEWS = ["dashboard", "files", "hosting", "peers", "wallet", "backup", "settings", "panel"];
let pollTimer = null;
let loggedIn = false;

function show(view) {
  $("loading").hidden = true;
  for (const v of [...SETUP_VIEWS, ...APP_VIEWS]) $(`view-${v}`).hidden = v !== view;
  const inApp = APP_VIEWS.includes(view);
  loggedIn = inApp || view === "words" || view === "quiz";
  $("logout").hidden = !loggedIn;
  $("nav").hidden = !inApp;
  for (const a of $("nav").querySelectorAll("a")) {
    if (a.dataset.view === view) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  // The state badge is the app's: a logged-out page shows nothing of the box.
  if (!inApp) $("state").hidden = true;
  clearInterval(pollTimer);
  pollTimer = null;
  if (inApp) {
    if ($("state").hidden) refreshBadge();
    const v = VIEWS_APP[view];
    const refresh = () => v.refresh().catch((err) => {
      if (err.status === 401) return show("login");
      console.warn(`${view}: ${err.message}`);
    });
    refresh();
    if (v.every) pollTimer = setInterval(refresh, v.every);
  }
  const first = $(`view-${view}`).querySelector("input");
  if (first && !inApp && window.matchMedia("(min-width: 700px)").matches) first.focus();
}

/// The header's state badge, on every app view (the dashboard keeps it fresh).
async function refreshBadge() {
  try {
    const st = await api("GET", "/api/status");
    $("state").textContent = st.state;
    $("state").dataset.state = st.state;
    $("state").hidden = $("nav").hidden;
  } catch {
    // The view's own refresh says what is wrong.
  }
}

/// Opens app view `name` (from the address bar's #name), the dashboard by default.
function openApp() {
  const name = location.hash.slice(1).split("=")[0];
  show(APP_VIEWS.includes(name) ? name : "dashboard");
}

window.addEventListener("hashchange", () => {
  if (loggedIn && !$("nav").hidden) openApp();
});

class ApiError extends Error {
  constructor(status, message, retryAfter) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

// Calls the admin API; throws ApiError with the daemon's own message.
async function api(method, path, body) {
  const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "Cannot reach the box. Is it on, and is this phone on the same network?");
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch (err) {
    data = null;
  }
  if (!res.ok) {
    const msg = (data && data.error) || `the box answered ${res.status}`;
    throw new ApiError(res.status, msg, res.headers.get("Retry-After"));
  }
  return data;
}

function showError(id, err) {
  const el = $(id);
  el.textContent = err instanceof ApiError || err instanceof Error ? capitalize(err.message) : String(err);
  el.hidden = false;
}


function capitalize(s) {
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}

// Runs `work` with the form's button disabled and its error line cleared.
async function busy(form, errorId, work) {
  const button = form.querySelector("button[type=submit]") || form;
  $(errorId).hidden = true;
  button.disabled = true;
  try {
    await work();
  } catch (err) {
    if (err.status === 401 && errorId !== "login-error") return route();
    showError(errorId, err);
  } finally {
    button.disabled = false;
  }
}

// Where does the page start? Asks the daemon.
async function route() {
  try {
    const claim = await api("GET", "/api/setup/claim");
    if (!claim.claimed) return show("claim");
    const session = await api("GET", "/api/session");
    return goToStage(session.setup);
  } catch (err) {
    if (err.status === 401) return show("login");
    $("loading").textContent = capitalize(err.message);
    $("loading").className = "error";
  }
}

async function goToStage(stage) {
  if (stage === "show_words") return show("words");
  if (stage === "confirm_words") return startQuiz();
  return openApp();
}

// ---- step 1: claim ----
$("claim-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  busy(ev.target, "claim-error", async () => {
    const code = $("claim-code").value.trim();
    const password = $("claim-password").value;
    if (!code) throw new Error("enter the pairing code from the box's screen");
    if (password.length < 8) throw new Error("the password must have at least 8 characters");
    if (password !== $("claim-password2").value) throw new Error("the two passwords are not the same");
    const answer = await api("POST", "/api/setup/claim", { pairing_code: code, password });
    $("claim-password").value = $("claim-password2").value = "";
    goToStage(answer.setup);
  });
});

// ---- step 2: the words, once ----
$("words-show").addEventListener("click", (ev) => {
  busy(ev.target, "words-error", async () => {
    const answer = await api("POST", "/api/setup/words");
    const list = $("words-list");
    list.replaceChildren(...answer.words.map((w) => {
      const li = document.createElement("li");
      li.textContent = w;
      return li;
    }));
    $("words-intro").hidden = true;
    $("words-shown").hidden = false;
  });
});

$("words-done").addEventListener("click", () => {
  // The words leave the page before the quiz: it must be answered from paper.
  $("words-list").replaceChildren();
  $("words-shown").hidden = true;
  startQuiz();
});

// ---- step 3: three words back ----
async function startQuiz() {
  try {
    const quiz = await api("GET", "/api/setup/quiz");
    const fields = $("quiz-fields");
    fields.replaceChildren();
    for (const pos of quiz.positions) {
      const label = document.createElement("label");
      label.htmlFor = `quiz-${pos}`;
      label.textContent = `Word ${pos}`;
      const input = document.createElement("input");
      input.id = `quiz-${pos}`;
      input.autocomplete = "off";
      input.autocapitalize = "none";
      input.spellcheck = false;
      input.required = true;
      input.maxLength = 16;
      fields.append(label, input);
    }
    show("quiz");
  } catch (err) {
    if (err.status === 401) return show("login");
    show("quiz");
    showError("quiz-error", err);
  }
}

$("quiz-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  busy(ev.target, "quiz-error", async () => {
    const words = [...$("quiz-fields").querySelectorAll("input")].map((i) => i.value.trim());
    if (words.some((w) => !w)) throw new Error("fill in all three words");
    const answer = await api("POST", "/api/setup/quiz", { words });
    goToStage(answer.setup);
  });
});

// ---- login / logout ----
$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  busy(ev.target, "login-error", async () => {
    try {
      const answer = await api("POST", "/api/login", { password: $("login-password").value });
      $("login-password").value = "";
      goToStage(answer.setup);
    } catch (err) {
      if (err.status === 429 && err.retryAfter) {
        throw new Error(`too many attempts: wait ${err.retryAfter} seconds, then try again`);
      }
      throw err;
    }
  });
});

$("logout").addEventListener("click", async () => {
  try {
    await api("POST", "/api/logout");
  } catch (err) {
    // Already logged out on the box: the login view is right either way.
  }
  show("login");
});

// route() runs at the end of views.js, once every view is defined.
