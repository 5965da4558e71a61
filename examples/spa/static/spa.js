// The SPA demo: signs in through the 2FA JSON API (/_mfa/api). No framework, no build step.
"use strict";

const API = "/_mfa/api";
let csrf = "";

const $ = (id) => document.getElementById(id);
const SECTIONS = ["login", "enroll", "codes", "challenge", "done"];

function show(name) {
  for (const id of SECTIONS) $(id).hidden = id !== name;
  const first = $(name).querySelector("input, button");
  if (first) first.focus();
}

function say(text) { $("status").textContent = text; }

function fail(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

async function call(method, path, body) {
  const options = { method, credentials: "same-origin", headers: { accept: "application/json" } };
  if (method === "POST") {
    options.headers["content-type"] = "application/json";
    options.headers["x-csrf-token"] = csrf;
    options.body = JSON.stringify(body || {});
  }
  const response = await fetch(path, options);
  const data = await response.json();
  if (data.csrf_token) csrf = data.csrf_token; // a new session after a verification
  return { ok: response.ok, status: response.status, data };
}

// What the session needs next, as the API says.
async function refresh() {
  fail("");
  const answer = await call("GET", `${API}/state`);
  if (answer.status === 401) return show("login");
  if (!answer.ok) return fail(answer.data.detail || answer.data.title);
  const state = answer.data;
  csrf = state.csrf_token;
  if (state.state === "enroll") return startEnrolling(state);
  if (state.state === "challenge") return startChallenge(state);
  const me = await call("GET", "/api/me");
  $("welcome").textContent = me.ok
    ? `Signed in as ${me.data.user}. Second step: ${me.data.method || "not needed"}.`
    : "Signed in.";
  say("");
  show("done");
}

async function startEnrolling(state) {
  if (!state.enroll_methods.includes("totp")) {
    return fail("Set up two-step verification on the settings page first.");
  }
  const answer = await call("GET", `${API}/enroll/totp`);
  if (!answer.ok) return fail(answer.data.detail || answer.data.title);
  $("qr").src = answer.data.qr_data_uri;
  $("secret").textContent = answer.data.secret.replace(/(.{4})/g, "$1 ").trim();
  say("Two-step verification is not set up yet.");
  show("enroll");
}

async function startChallenge(state) {
  const method = state.method;
  let hint = "Enter the code your authenticator app shows.";
  if (method === "sms" || method === "email") {
    const sent = await call("GET", `${API}/challenge?method=${method}`);
    if (!sent.ok) return fail(sent.data.detail || sent.data.title);
    hint = `We sent a code to ${sent.data.masked}.`;
  } else if (method !== "totp") {
    hint = "Use the sign-in page for this method.";
  }
  $("challenge-hint").textContent = hint;
  say("");
  show("challenge");
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  fail("");
  const body = { username: $("username").value, password: $("password").value };
  const response = await fetch("/api/login", {
    method: "POST",
    credentials: "same-origin",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) return fail((await response.json()).error);
  $("password").value = "";
  await refresh();
});

$("enroll-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const answer = await call("POST", `${API}/enroll/totp`, { code: $("enroll-code").value.trim() });
  if (!answer.ok) return fail(answer.data.detail || answer.data.title);
  fail("");
  $("enroll-code").value = "";
  const codes = answer.data.recovery_codes || [];
  if (!codes.length) return refresh();
  $("code-list").replaceChildren(...codes.map((code) => {
    const item = document.createElement("li");
    item.textContent = code;
    return item;
  }));
  say("Two-step verification is on.");
  show("codes");
});

$("codes-saved").addEventListener("click", refresh);

$("challenge-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const answer = await call("POST", `${API}/challenge`, { code: $("challenge-code").value.trim() });
  $("challenge-code").value = "";
  if (!answer.ok) {
    const left = answer.data.attempts_left;
    const detail = answer.data.detail || answer.data.title;
    const tries = left === 1 ? "1 try left." : `${left} tries left.`;
    return fail(left === undefined ? detail : `${detail} ${tries}`);
  }
  await refresh();
});

$("logout").addEventListener("click", async () => {
  await call("POST", `${API}/logout`);
  say("You are logged out.");
  show("login");
});

refresh();
