// eidgate activation page: talks to the activation API (DESIGN "Activation API").
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  let activation = null;
  let versions = null;

  function show(step) {
    for (const id of ["step-code", "step-accept", "step-password"]) $(id).hidden = id !== step;
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
    if (versions.kind === "password") show("step-password");
    else fail({ status: 0, data: { detail: "This kind of means is activated with its own device." } });
  });

  $("password-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const r = await post("/activation/" + encodeURIComponent(activation) + "/password", { password: $("new-password").value });
    $("new-password").value = "";
    if (r.status !== 200) return fail(r);
    show(null);
    $("done").hidden = false;
  });
})();
