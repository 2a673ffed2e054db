// eidgate login page, smartcard method (DESIGN "Smartcard login"): asks the server for a
// challenge, lets the Web eID browser extension have the card sign it after the PIN
// (`window.webeid.authenticate(nonce, options)`), and posts the token. Without the
// extension the page says what to install instead of failing silently.
"use strict";

(function () {
  const flow = new URLSearchParams(window.location.search).get("flow");
  const $ = (id) => document.getElementById(id);
  if (!flow || !$("method-smartcard")) return;

  function say(text) {
    const el = $("smartcard-status");
    el.textContent = text;
    el.hidden = false;
  }

  async function post(path, body) {
    const response = await fetch("/authn/flows/" + encodeURIComponent(flow) + path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: typeof body === "string" ? body : JSON.stringify(body || {}),
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
        say("The service returned an address this page will not open.");
      }
      return true;
    }
    const show = (text) => say(text);
    return result.status === 200 && window.eidgateSteps &&
      window.eidgateSteps.show(result.data, (path, body) => post(path, body), follow, show);
  }

  function webeid() {
    const api = window.webeid;
    return api && typeof api.authenticate === "function" ? api : null;
  }

  async function show() {
    const response = await fetch("/authn/flows/" + encodeURIComponent(flow), { credentials: "same-origin" });
    const info = await response.json().catch(() => ({}));
    if (response.status !== 200 || !Array.isArray(info.methods) || !info.methods.includes("smartcard")) return;
    $("method-smartcard").hidden = false;
    if (!webeid()) {
      say("To log in with your ID card, install the Web eID browser extension and the card reader " +
        "software (see web-eid.eu), connect the reader with your card, then reload this page.");
    }
  }

  $("smartcard-login").addEventListener("click", async () => {
    const api = webeid();
    if (!api) {
      say("The Web eID browser extension was not found. Install it (web-eid.eu), then reload this page.");
      return;
    }
    $("smartcard-status").hidden = true;
    const challenge = await post("/smartcard/challenge", {});
    if (challenge.status !== 200 || !challenge.data.nonce) {
      say(challenge.status === 404 ? "This login has expired. Go back to the service and start again."
        : "The service is temporarily unavailable. Try again shortly.");
      return;
    }
    let token;
    try {
      token = await api.authenticate(challenge.data.nonce, { lang: document.documentElement.lang || "en" });
    } catch (error) {
      say("The card did not sign in (" + ((error && error.code) || "cancelled") + "). Check the reader and the PIN, then try again.");
      return;
    }
    const result = await post("/smartcard/token", JSON.stringify(token));
    if (follow(result)) return;
    if (result.status === 429) say("Too many attempts. Try again in " + (result.retryAfter || "a few") + " seconds.");
    else if (result.status === 503) say("The service is temporarily unavailable. Try again shortly.");
    else say("The ID card could not be used to log in. If it was suspended or has expired, contact the helpdesk.");
  });

  show();
})();
