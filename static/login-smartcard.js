// eidgate login page, smartcard method (DESIGN "Smartcard login"): asks the server for a
// challenge, lets the Web eID browser extension have the card sign it after the PIN
// (`window.webeid.authenticate(nonce, options)`), and posts the token. Without the
// extension the page says what to install instead of failing silently.
"use strict";

(function () {
  const t = window.eidgateT;
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
        say(t("js-login-bad-redirect"));
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

  // The tab is shown by login.js when the requested level allows a card; without the
  // extension the panel says what to install.
  function show() {
    if (!webeid()) say(t("js-smartcard-install"));
  }

  $("smartcard-login").addEventListener("click", async () => {
    const api = webeid();
    if (!api) {
      say(t("js-smartcard-no-extension"));
      return;
    }
    $("smartcard-status").hidden = true;
    const challenge = await post("/smartcard/challenge", {});
    if (challenge.status !== 200 || !challenge.data.nonce) {
      say(challenge.status === 404 ? t("js-login-expired") : t("js-common-unavailable"));
      return;
    }
    let token;
    try {
      token = await api.authenticate(challenge.data.nonce, { lang: window.eidgateLang });
    } catch (error) {
      say(t("js-smartcard-not-signed"));
      return;
    }
    const result = await post("/smartcard/token", JSON.stringify(token));
    if (follow(result)) return;
    if (result.status === 429) say(t("js-login-too-many", { seconds: result.retryAfter || "60" }));
    else if (result.status === 503) say(t("js-common-unavailable"));
    else say(t("js-smartcard-refused"));
  });

  show();
})();
