// eidgate login page: talks to the JSON login API (DESIGN "Login API"). The texts come
// from the page's message catalogue (i18n.js).
"use strict";

(function () {
  const flow = new URLSearchParams(window.location.search).get("flow");
  const $ = (id) => document.getElementById(id);
  const t = window.eidgateT;
  // The methods, in the order of the tabs; `password` stands for password and password_totp.
  const METHODS = ["webauthn", "password", "smartcard"];

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
      if (!safeRedirect(result.data.redirect_to)) showError(t("js-login-bad-redirect"));
      return true;
    }
    // Steps after the ceremony (legal person, consent): login-steps.js.
    if (result.status === 200 && window.eidgateSteps && window.eidgateSteps.show(result.data, api, follow, showError)) {
      $("method-tabs").hidden = true;
      return true;
    }
    return false;
  }

  function explain(result) {
    const type = (result.data && result.data.type) || "";
    if (result.status === 401 && !$("method-totp").hidden) return t("js-login-totp-wrong");
    if (result.status === 401) return t("js-login-credentials-wrong");
    if (type.endsWith("unknown-device-locked")) return t("js-login-unknown-device-locked");
    if (result.status === 429) return t("js-login-too-many", { seconds: result.retryAfter || "60" });
    if (type.endsWith("means-not-active")) return t("js-login-means-not-active");
    if (result.status === 404) return t("js-login-expired");
    if (result.status === 400) return t("js-login-bad-input");
    if (result.status === 503) return t("js-common-unavailable");
    return t("js-login-failed");
  }

  // One method at a time: the tab of `method` selected, its panel shown.
  function select(method, focus) {
    for (const m of METHODS) {
      const tab = $("tab-" + m);
      const on = m === method;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      tab.tabIndex = on ? 0 : -1;
      $("method-" + m).hidden = !on;
    }
    if (focus) $("tab-" + method).focus();
    $("error").hidden = true;
  }

  function showMethods(methods) {
    const offered = METHODS.filter((m) => m === "password"
      ? methods.includes("password") || methods.includes("password_totp")
      : methods.includes(m));
    if (offered.length === 0) {
      showError(t("js-login-no-method"));
      return;
    }
    for (const m of offered) $("tab-" + m).hidden = false;
    $("method-tabs").hidden = offered.length < 2;
    offered.forEach((m, i) => {
      $("tab-" + m).addEventListener("click", () => select(m, false));
      $("tab-" + m).addEventListener("keydown", (event) => {
        const step = event.key === "ArrowRight" ? 1 : event.key === "ArrowLeft" ? -1 : 0;
        if (step) select(offered[(i + step + offered.length) % offered.length], true);
      });
    });
    if (methods.includes("password_totp")) {
      $("password-title").textContent = t(methods.includes("password") ? "js-login-password-maybe-totp" : "js-login-password-totp");
    }
    select(offered[0], false);
  }

  async function start() {
    if (!flow) {
      $("context").textContent = t("js-login-no-flow");
      return;
    }
    const info = await api("");
    if (info.status !== 200) {
      $("context").textContent = explain(info);
      return;
    }
    $("heading").textContent = t("js-login-heading", { client: info.data.client_name });
    $("context").textContent = t("js-login-context", { client: info.data.client_name });
    const level = $("level");
    level.textContent = t("js-level-" + info.data.requested_loa);
    level.hidden = false;
    if (info.data.next && follow(info)) return;
    window.eidgateLogin.methods = info.data.methods || [];
    showMethods(window.eidgateLogin.methods);
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
      $("method-tabs").hidden = true;
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
    const format = new Intl.DateTimeFormat(window.eidgateLang, { dateStyle: "medium", timeStyle: "short" });
    el.textContent = t("js-login-maintenance", {
      from: format.format(new Date(w.starts_at * 1000)),
      to: format.format(new Date(w.ends_at * 1000)),
      message: w.message,
    });
    el.hidden = false;
  }

  // Shared with the FIDO2 step (login-fido.js) and the smartcard method.
  window.eidgateLogin = { api, follow, showError, explain, methods: [] };

  maintenance();
  start();
})();
