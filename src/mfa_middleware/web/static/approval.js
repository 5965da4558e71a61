// Approving sign-ins (issue 24), loaded by two pages (same origin: the pages allow no other
// script). On the approvers page: register the service worker, subscribe to Web Push with the
// server's VAPID key, and post the subscription with the form. On the login screen waiting for
// an approval: ask the server for the state every two seconds and go on once it is decided.
"use strict";
(function () {
  function show(name) {
    document.querySelectorAll("[data-approver-message]").forEach(function (el) {
      el.hidden = el.getAttribute("data-approver-message") !== name;
    });
  }
  function keyBytes(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    b64 += "===".slice((b64.length + 3) % 4);
    var raw = atob(b64), out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }
  var form = document.querySelector("form[data-approver=subscribe]");
  if (form) {
    show("");
    form.addEventListener("submit", function (event) {
      var field = form.querySelector("input[name=subscription]");
      if (field.value) return; // already subscribed (or given one): post it as it is
      event.preventDefault();
      if (!("serviceWorker" in navigator) || !("PushManager" in window)) return show("unsupported");
      navigator.serviceWorker
        .register(form.getAttribute("data-worker"), { scope: form.getAttribute("data-scope") })
        .then(function () { return navigator.serviceWorker.ready; })
        .then(function (registration) {
          return Notification.requestPermission().then(function (permission) {
            if (permission !== "granted") throw new Error("denied");
            return registration.pushManager.subscribe({
              userVisibleOnly: true,
              applicationServerKey: keyBytes(form.getAttribute("data-key")),
            });
          });
        })
        .then(function (subscription) {
          field.value = JSON.stringify(subscription.toJSON());
          form.submit();
        })
        .catch(function (error) { show(error && error.message === "denied" ? "denied" : "unsupported"); });
    });
  }
  var waiting = document.querySelector("[data-approval=wait]");
  var finish = document.querySelector("form[data-approval=finish]");
  if (waiting && finish) {
    var url = waiting.getAttribute("data-status");
    var poll = function () {
      fetch(url, { credentials: "same-origin", headers: { accept: "application/json" } })
        .then(function (response) { return response.json(); })
        .then(function (body) {
          if (body.state === "pending") return setTimeout(poll, 2000);
          finish.submit();
        })
        .catch(function () { finish.submit(); });
    };
    setTimeout(poll, 1000);
  }
})();
