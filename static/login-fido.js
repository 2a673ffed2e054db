// eidgate login page, FIDO2 step (DESIGN "FIDO2 login"): /authn/flows/{flow}/webauthn/start|finish.
// Without an identifier the authenticator offers its passkeys (discoverable login); with
// one, the holder's registered keys are asked for (identifier first).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const t = window.eidgateT;
  const form = $("webauthn-form");
  if (!form) return;

  function explain(result) {
    const type = (result.data && result.data.type) || "";
    if (result.status === 401) return t("js-fido-not-accepted");
    if (type.endsWith("means-not-active")) return t("js-fido-means-not-active");
    return window.eidgateLogin.explain(result);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const login = window.eidgateLogin;
    $("error").hidden = true;
    if (!window.eidgateWebauthn.supported()) {
      login.showError(t("js-webauthn-unsupported"));
      return;
    }
    const identifier = $("webauthn-identifier").value.trim();
    $("webauthn-login").disabled = true;
    $("webauthn-status").textContent = t("js-webauthn-waiting");
    try {
      const start = await login.api("/webauthn/start", identifier ? { identifier } : {});
      if (start.status !== 200) {
        login.showError(explain(start));
        return;
      }
      let credential;
      try {
        credential = await window.eidgateWebauthn.get(start.data.publicKey);
      } catch (e) {
        login.showError(window.eidgateWebauthn.explain(e));
        return;
      }
      $("webauthn-status").textContent = t("js-webauthn-checking");
      const result = await login.api("/webauthn/finish", credential);
      if (!login.follow(result)) login.showError(explain(result));
    } finally {
      $("webauthn-status").textContent = "";
      $("webauthn-login").disabled = false;
    }
  });
})();
