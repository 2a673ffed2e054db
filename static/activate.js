// eidgate activation page: talks to the activation API (DESIGN "Activation API").
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  let activation = null;
  let versions = null;

  function show(step) {
    for (const id of ["step-code", "step-accept", "step-password", "step-totp", "step-fido"]) {
      if ($(id)) $(id).hidden = id !== step;
    }
  }

  function fail(result) {
    const el = $("error");
    const detail = (result.data && (result.data.detail || result.data.title)) || "Something went wrong.";
    el.textContent = result.status === 401 ? "The activation code is wrong, expired or used up." : detail;
    el.hidden = false;
  }

  async function post(path, body) {
    const r = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    return { status: r.status, data: await r.json().catch(() => ({})) };
  }

  $("code-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("error").hidden = true;
    const r = await post("/activation/start", { identifier: $("identifier").value.trim(), activation_code: $("code").value });
    if (r.status !== 200) return fail(r);
    activation = r.data.activation;
    versions = r.data;
    $("terms-version").textContent = r.data.terms_version;
    $("advice-version").textContent = r.data.security_advice_version;
    show("step-accept");
  });

  $("accept-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const r = await post("/activation/" + encodeURIComponent(activation) + "/accept", {
      terms_version: versions.terms_version, security_advice_version: versions.security_advice_version,
    });
    if (r.status !== 200) return fail(r);
    if (versions.kind === "password" || versions.kind === "totp") show("step-password");
    else if (versions.kind === "fido" && window.eidgateFidoActivation) window.eidgateFidoActivation(activation, show, fail);
    else fail({ status: 0, data: { detail: "This kind of means is activated with its own device." } });
  });

  $("password-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const r = await post("/activation/" + encodeURIComponent(activation) + "/password", { password: $("new-password").value });
    $("new-password").value = "";
    if (r.status !== 200) return fail(r);
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
    $("error").hidden = true;
    const r = await post("/activation/" + encodeURIComponent(activation) + "/totp/confirm", { code: $("totp-code").value.trim() });
    $("totp-code").value = "";
    if (r.status === 401) return fail({ status: 0, data: { detail: "The code is not right. Check the app's clock and try the next code." } });
    if (r.status !== 200) return fail(r);
    show(null);
    $("done").hidden = false;
  });
})();
