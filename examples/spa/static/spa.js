// The SPA demo: signs in through the 2FA JSON API (/_mfa/api). No framework, no build step.
"use strict";

const API = "/_mfa/api";
let csrf = "";
let method = "totp";

const $ = (id) => document.getElementById(id);
const SECTIONS = ["login", "unlock", "enroll", "codes", "challenge", "done"];

// Show one step; its heading takes the focus, so a screen reader starts there and a stray
// Enter presses nothing.
function show(name) {
  for (const id of SECTIONS) $(id).hidden = id !== name;
  $(`${name}-title`).focus();
}

function say(text) { $("status").textContent = text; }
function fail(text) { $("error").textContent = text || ""; }

// A problem's words (RFC 9457: detail, else title), with what it adds.
function problemText(data) {
  let text = data.detail || data.title || "Something went wrong. Try again.";
  if (data.attempts_left !== undefined) {
    text += data.attempts_left === 1 ? " 1 try left." : ` ${data.attempts_left} tries left.`;
  }
  return text;
}

async function call(verb, path, body) {
  const options = { method: verb, credentials: "same-origin", headers: { accept: "application/json" } };
  if (verb === "POST") {
    options.headers["content-type"] = "application/json";
    options.headers["x-csrf-token"] = csrf;
    options.body = JSON.stringify(body || {});
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch {
    return { ok: false, status: 0, data: { detail: "The site cannot be reached. Try again." } };
  }
  let data = {};
  try {
    data = await response.json();
  } catch {
    data = { detail: `The site answered ${response.status}. Try again in a moment.` };
  }
  if (data.csrf_token) csrf = data.csrf_token; // a new session after a verification
  return { ok: response.ok, status: response.status, data };
}

// A refusal: a lockout disables the form until it ends; an ended login goes back to it.
function refused(answer, form) {
  const { status, data } = answer;
  if (status === 401 && (data.code === "session_expired" || data.code === "login_required")) {
    show("login");
    return fail("Your session has ended. Log in again.");
  }
  fail(problemText(data));
  if (data.code === "locked" && form) {
    const button = form.querySelector("button");
    button.disabled = true;
    if (data.retry_after) setTimeout(() => { button.disabled = false; }, data.retry_after * 1000);
  }
}

// What the session needs next, as the API says.
async function refresh() {
  const answer = await call("GET", `${API}/state`);
  if (answer.status === 401) return show("login");
  if (!answer.ok) return refused(answer);
  const state = answer.data;
  csrf = state.csrf_token;
  if (state.state === "enroll") return state.enroll_code_required ? show("unlock") : startEnrolling(state);
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
  if (!answer.ok) return refused(answer);
  $("qr").src = answer.data.qr_data_uri;
  $("secret").textContent = answer.data.secret.replace(/(.{4})/g, "$1 ").trim();
  say("Two-step verification is not set up yet.");
  show("enroll");
}

async function startChallenge(state) {
  method = state.method;
  const codeSent = method === "sms" || method === "email";
  let hint = "Enter the code your authenticator app shows.";
  if (codeSent) {
    const sent = await call("GET", `${API}/challenge?method=${method}`);
    if (!sent.ok) return refused(sent);
    hint = `We sent a code to ${sent.data.masked}.`;
  } else if (method !== "totp") {
    hint = "Your way to sign in is a passkey: use the sign-in page, or a recovery code below.";
  }
  $("challenge-hint").textContent = hint;
  $("challenge-form").hidden = method === "webauthn";
  $("resend").hidden = !codeSent;
  say("");
  show("challenge");
}

function onSubmit(id, handler) {
  $(id).addEventListener("submit", async (event) => {
    event.preventDefault();
    fail("");
    await handler(event.target);
  });
}

onSubmit("login-form", async () => {
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

onSubmit("unlock-form", async (form) => {
  const answer = await call("POST", `${API}/enroll/unlock`, { code: $("unlock-code").value.trim() });
  $("unlock-code").value = "";
  if (!answer.ok) return refused(answer, form);
  await refresh();
});

onSubmit("enroll-form", async (form) => {
  const answer = await call("POST", `${API}/enroll/totp`, { code: $("enroll-code").value.trim() });
  $("enroll-code").value = "";
  if (!answer.ok) return refused(answer, form);
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

onSubmit("challenge-form", async (form) => {
  const answer = await call("POST", `${API}/challenge`, { code: $("challenge-code").value.trim() });
  $("challenge-code").value = "";
  if (!answer.ok) return refused(answer, form);
  await refresh();
});

onSubmit("recovery-form", async (form) => {
  const answer = await call("POST", `${API}/recovery`, { code: $("recovery-code").value.trim() });
  $("recovery-code").value = "";
  if (!answer.ok) return refused(answer, form);
  await refresh();
  say(`Signed in with a recovery code: ${answer.data.recovery_codes_left} left.`);
});

$("resend").addEventListener("click", async () => {
  fail("");
  const answer = await call("POST", `${API}/challenge/send`, { method });
  if (!answer.ok) return refused(answer);
  say(`A new code is on its way to ${answer.data.masked}.`);
});

$("logout").addEventListener("click", async () => {
  const answer = await call("POST", `${API}/logout`);
  if (!answer.ok && answer.status !== 401) return refused(answer);
  say("You are logged out.");
  show("login");
});

refresh();
