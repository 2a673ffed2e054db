// eidgate login page: talks to the JSON login API (DESIGN "Login API").
"use strict";

(function () {
  const flow = new URLSearchParams(window.location.search).get("flow");
  const $ = (id) => document.getElementById(id);

  function showError(text) {
    const el = $("error");
    el.textContent = text;
    el.hidden = false;
  }

  async function api(path, body) {
    const response = await fetch("/authn/flows/" + encodeURIComponent(flow) + path, {
      method: body === undefined ? "GET" : "POST",
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
    const data = await response.json().catch(() => ({}));
    return { status: response.status, data, retryAfter: response.headers.get("Retry-After") };
  }

  // Defence in depth: whatever the server says, navigate only to http(s) URLs or to a
  // native app's reverse-domain private-use scheme (RFC 8252 §7.1, the forms allowed at
  // registration); never javascript:, data:, vbscript:, file: or blob:.
  function safeRedirect(to) {
    let url;
    try {
      url = new URL(to, window.location.href);
    } catch (e) {
      return false;
    }
    const scheme = url.protocol.toLowerCase();
    if (scheme !== "https:" && scheme !== "http:" && !/^[a-z0-9-]+(\.[a-z0-9-]+)+:$/.test(scheme)) return false;
    window.location.assign(url.href);
    return true;
  }

  function follow(result) {
    if (result.data && result.data.next === "done" && result.data.redirect_to) {
      if (!safeRedirect(result.data.redirect_to)) {
        showError("The service returned an address this page will not open.");
      }
      return true;
    }
    // Steps after the ceremony (legal person, consent): login-steps.js.
    if (result.status === 200 && window.eidgateSteps && window.eidgateSteps.show(result.data, api, follow, showError)) {
      return true;
    }
    return false;
  }

  function explain(result) {
    const type = (result.data && result.data.type) || "";
    if (result.status === 401 && !$("method-totp").hidden) return "The code is wrong or was already used. Wait for the next code.";
    if (result.status === 401) return "The identifier or password is wrong.";
    if (type.endsWith("unknown-device-locked")) return "There were too many wrong passwords for this account from " +
      "browsers it was never used on, so this browser may not try a password for it any more. Your account is not " +
      "blocked: log in from a browser or device you have logged in with before, then change your password if you " +
      "did not make these attempts, or contact the helpdesk to lift the block.";
    if (result.status === 429) return "Too many wrong attempts for this account or from your network. For your " +
      "protection, wait " + (result.retryAfter || "a few") + " seconds before trying again. A browser you have " +
      "logged in with before is not held up by attempts made elsewhere.";
    if (type.endsWith("means-not-active")) return "This means cannot be used to log in. Contact the helpdesk.";
    if (result.status === 404) return "This login has expired. Go back to the service and start again.";
    if (result.status === 503) return "The service is temporarily unavailable. Try again shortly.";
    return "Login failed.";
  }

  async function start() {
    if (!flow) {
      $("context").textContent = "No login in progress. Start from the service you want to use.";
      return;
    }
    const info = await api("");
    if (info.status !== 200) {
      $("context").textContent = explain(info);
      return;
    }
    $("context").textContent = "Log in to " + info.data.client_name +
      " (required level: " + info.data.requested_loa + ").";
    if (info.data.next && follow(info)) return;
    const methods = info.data.methods;
    if (methods.includes("webauthn") && $("method-webauthn")) $("method-webauthn").hidden = false;
    if (methods.includes("password") || methods.includes("password_totp")) $("method-password").hidden = false;
    if (methods.includes("password_totp")) {
      $("password-title").textContent = methods.includes("password") ? "Password (and one-time code)" : "Password and one-time code";
    }
  }

  $("password-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("error").hidden = true;
    const result = await api("/password", {
      identifier: $("identifier").value.trim(),
      password: $("password").value,
    });
    $("password").value = "";
    if (result.status === 200 && result.data.next === "totp") {
      $("method-password").hidden = true;
      $("method-totp").hidden = false;
      $("totp-code").focus();
      return;
    }
    if (!follow(result)) showError(explain(result));
  });

  $("totp-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("error").hidden = true;
    const result = await api("/totp", { code: $("totp-code").value.trim() });
    $("totp-code").value = "";
    if (!follow(result)) showError(explain(result));
  });

  $("cancel").addEventListener("click", async () => {
    const result = await api("/cancel", {});
    if (!follow(result)) showError(explain(result));
  });

  async function maintenance() {
    const r = await fetch("/maintenance").catch(() => null);
    if (!r || r.status !== 200) return;
    const data = await r.json().catch(() => ({}));
    const w = data.maintenance;
    if (!w) return;
    const el = $("maintenance");
    const from = new Date(w.starts_at * 1000).toLocaleString();
    const to = new Date(w.ends_at * 1000).toLocaleString();
    el.textContent = "Planned maintenance from " + from + " to " + to + ": " + w.message;
    el.hidden = false;
  }

  // Shared with the FIDO2 step (login-fido.js).
  window.eidgateLogin = { api, follow, showError, explain };

  maintenance();
  start();
})();
