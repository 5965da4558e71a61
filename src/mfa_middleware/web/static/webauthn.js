// Passkeys and security keys on the 2FA pages: the one script they load (same origin, so the
// pages keep their strict Content-Security-Policy: no inline script, no eval).
//
// A form marked data-webauthn="create" (adding a passkey) or "get" (signing in) carries the
// server's options as JSON in data-options. The page shows "Passkeys need JavaScript" until
// this script hides it. On submit the browser's WebAuthn call runs, its
// answer goes into the form's hidden "credential" field as JSON, and the form is posted. Every
// message is in the page (translated there); this script only shows or hides them.
(function () {
  "use strict";

  function bytes(b64url) {
    var b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(b64 + "===".slice((b64.length + 3) % 4));
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out.buffer;
  }

  function b64url(buffer) {
    var view = new Uint8Array(buffer), raw = "";
    for (var i = 0; i < view.length; i++) raw += String.fromCharCode(view[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (d) {
      return Object.assign({}, d, { id: bytes(d.id) });
    });
  }

  // Older browsers lack parseCreationOptionsFromJSON / toJSON (WebAuthn level 3): the same
  // conversions by hand.
  function creationOptions(json) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    return Object.assign({}, json, {
      challenge: bytes(json.challenge),
      user: Object.assign({}, json.user, { id: bytes(json.user.id) }),
      excludeCredentials: descriptors(json.excludeCredentials)
    });
  }

  function requestOptions(json) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    return Object.assign({}, json, {
      challenge: bytes(json.challenge),
      allowCredentials: descriptors(json.allowCredentials)
    });
  }

  function asJSON(credential) {
    if (typeof credential.toJSON === "function") return credential.toJSON();
    var r = credential.response, response = { clientDataJSON: b64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = b64url(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = b64url(r.authenticatorData);
      response.signature = b64url(r.signature);
      if (r.userHandle) response.userHandle = b64url(r.userHandle);
    }
    return {
      id: credential.id,
      rawId: b64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: response
    };
  }

  function show(form, name) {
    var notices = form.parentNode.querySelectorAll("[data-webauthn-message]");
    for (var i = 0; i < notices.length; i++) {
      notices[i].hidden = notices[i].getAttribute("data-webauthn-message") !== name;
    }
  }

  function prepare(form) {
    var button = form.querySelector("button[type=submit]");
    show(form, "");
    if (!window.PublicKeyCredential || !navigator.credentials) {
      show(form, "unsupported");
      if (button) button.disabled = true;
      return;
    }
    var busy = false;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (busy) return;
      busy = true;
      show(form, "waiting");
      var json = JSON.parse(form.getAttribute("data-options"));
      var creating = form.getAttribute("data-webauthn") === "create";
      var asked = creating
        ? navigator.credentials.create({ publicKey: creationOptions(json) })
        : navigator.credentials.get({ publicKey: requestOptions(json) });
      asked.then(function (credential) {
        form.elements.credential.value = JSON.stringify(asJSON(credential));
        form.submit();
      }, function (error) {
        busy = false;
        var known = ["NotAllowedError", "InvalidStateError", "SecurityError"];
        show(form, known.indexOf(error && error.name) >= 0 ? error.name : "failed");
        if (button) button.focus();
      });
    });
  }

  var forms = document.querySelectorAll("form[data-webauthn]");
  for (var i = 0; i < forms.length; i++) prepare(forms[i]);
})();
