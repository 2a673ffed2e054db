// eidgate activation page, FIDO2 step: registers the holder's authenticator for the
// issued `fido` means (DESIGN "Activation API": /activation/{id}/webauthn/start|finish).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const t = window.eidgateT;

  async function post(path, body) {
    const r = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) });
    return { status: r.status, data: await r.json().catch(() => ({})) };
  }

  window.eidgateFidoActivation = function (activation, show, fail) {
    const base = "/activation/" + encodeURIComponent(activation) + "/webauthn/";
    show("step-fido");
    if (!window.eidgateWebauthn.supported()) {
      fail({ message: t("js-webauthn-unsupported") });
      $("fido-register").disabled = true;
      return;
    }
    $("fido-register").focus();
    $("fido-register").addEventListener("click", async () => {
      $("error").hidden = true;
      $("fido-register").disabled = true;
      $("fido-status").textContent = t("js-webauthn-waiting");
      try {
        const start = await post(base + "start");
        if (start.status !== 200) return fail(start);
        let credential;
        try {
          credential = await window.eidgateWebauthn.create(start.data.publicKey);
        } catch (e) {
          return fail({ message: window.eidgateWebauthn.explain(e) });
        }
        $("fido-status").textContent = t("js-webauthn-checking");
        const finish = await post(base + "finish", credential);
        if (finish.status !== 200) {
          return fail({ message: t("js-fido-not-registered") });
        }
        show(null);
        $("done").hidden = false;
      } finally {
        $("fido-status").textContent = "";
        $("fido-register").disabled = false;
      }
    });
  };
})();
