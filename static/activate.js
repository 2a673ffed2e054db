// eidgate activation page: talks to the activation API (DESIGN "Activation API"). The texts
// come from the page's message catalogue (i18n.js).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const t = window.eidgateT;
  let activation = null;
  let versions = null;

  function show(step) {
    for (const id of ["step-code", "step-accept", "step-password", "step-totp", "step-fido"]) {
      if ($(id)) $(id).hidden = id !== step;
    }
    clearError();
  }

  function clearError() {
    $("error").textContent = "";
    $("error").hidden = true;
  }

  function say(text) {
    const el = $("error");
    el.textContent = text;
    el.hidden = false;
  }

  // A plain-language message for a refusal of the activation API.
  function fail(result) {
    const type = (result.data && result.data.type) || "";
    const detail = (result.data && result.data.detail) || "";
    if (result.message) return say(result.message);
    if (result.status === 401) return say(t("js-activate-code-wrong"));
    if (result.status === 404) return say(t("js-activate-expired"));
    if (result.status === 429) return say(t("js-login-too-many", { seconds: result.retryAfter || "60" }));
    if (result.status === 503) return say(t("js-common-unavailable"));
    if (type.endsWith("unprocessable") || result.status === 422) {
      if (/common/.test(detail)) return say(t("js-activate-password-common"));
      if (/identifier|personal code/.test(detail)) return say(t("js-activate-password-identifier"));
      if (/short|at least/.test(detail)) return say(t("js-activate-password-short"));
      return say(t("js-activate-password-weak"));
    }
    return say(t("js-activate-failed"));
  }

  async function post(path, body) {
    const r = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    return { status: r.status, data: await r.json().catch(() => ({})), retryAfter: r.headers.get("Retry-After") };
  }

  // The full text of the terms and the advice, from their own readable URL.
  async function loadText(kind, version, box, link) {
    const url = "/terms/" + window.eidgateLang + "/" + kind + "-" + encodeURIComponent(version) + ".txt";
    link.href = url;
    const r = await fetch(url).catch(() => null);
    box.textContent = r && r.status === 200 ? await r.text() : t("js-activate-terms-missing");
  }

  // A hint while typing: length and variety, never a substitute for the server's check.
  function strength(password) {
    if (password.length === 0) return "";
    if (password.length < 12) return t("js-activate-strength-short", { count: 12 - password.length });
    const kinds = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((re) => re.test(password)).length;
    if (password.length >= 16 && kinds >= 3) return t("js-activate-strength-strong");
    if (password.length >= 14 || kinds >= 3) return t("js-activate-strength-good");
    return t("js-activate-strength-fair");
  }

  $("new-password").addEventListener("input", () => {
    $("password-strength").textContent = strength($("new-password").value);
  });

  $("code-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    clearError();
    const r = await post("/activation/start", { identifier: $("identifier").value.trim(), activation_code: $("code").value.trim() });
    if (r.status !== 200) return fail(r);
    activation = r.data.activation;
    versions = r.data;
    $("terms-version").textContent = t("js-activate-version", { version: r.data.terms_version });
    $("advice-version").textContent = t("js-activate-version", { version: r.data.security_advice_version });
    show("step-accept");
    await Promise.all([
      loadText("terms", r.data.terms_version, $("terms-text"), $("terms-link")),
      loadText("security-advice", r.data.security_advice_version, $("advice-text"), $("advice-link")),
    ]);
  });

  $("accept-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    clearError();
    const r = await post("/activation/" + encodeURIComponent(activation) + "/accept", {
      terms_version: versions.terms_version, security_advice_version: versions.security_advice_version,
    });
    if (r.status !== 200) return fail(r);
    if (versions.kind === "password" || versions.kind === "totp") {
      show("step-password");
      $("new-password").focus();
    } else if (versions.kind === "fido" && window.eidgateFidoActivation) window.eidgateFidoActivation(activation, show, fail);
    else fail({ message: t("js-activate-own-device") });
  });

  $("password-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    clearError();
    const password = $("new-password").value;
    if (password.length < 12) return fail({ message: t("js-activate-password-short") });
    if (password !== $("confirm-password").value) {
      $("confirm-password").focus();
      return fail({ message: t("js-activate-password-mismatch") });
    }
    const r = await post("/activation/" + encodeURIComponent(activation) + "/password", { password });
    if (r.status !== 200) return fail(r);
    $("new-password").value = "";
    $("confirm-password").value = "";
    $("password-strength").textContent = "";
    if (r.data.next === "totp") return enrol();
    show(null);
    $("done").hidden = false;
  });

  async function enrol() {
    const r = await fetch("/activation/" + encodeURIComponent(activation) + "/totp", { cache: "no-store" });
    const data = await r.json().catch(() => ({}));
    if (r.status !== 200) return fail({ status: r.status, data });
    // The SVG is shown as an image (data: URL), never inserted as markup.
    $("totp-qr").src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(data.qr_svg);
    $("totp-uri").textContent = new URL(data.otpauth_uri).searchParams.get("secret") || "";
    show("step-totp");
  }

  $("totp-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    clearError();
    const r = await post("/activation/" + encodeURIComponent(activation) + "/totp/confirm", { code: $("totp-code").value.trim() });
    $("totp-code").value = "";
    if (r.status === 401) return fail({ message: t("js-activate-totp-wrong") });
    if (r.status !== 200) return fail(r);
    show(null);
    $("done").hidden = false;
  });
})();
