// eidgate login page: the steps after authentication (DESIGN "More contracts"): the
// legal person to act for (scope eidas_legal) and the consent to release data.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const t = window.eidgateT;

  // Human names of the released claims (DESIGN "Claims"): catalogue messages js-claim-*.
  function label(name) {
    const id = "js-claim-" + name.replace(/_/g, "-");
    const text = t(id);
    return text === id ? name : text;
  }

  function hideMethods() {
    document.querySelectorAll("main > section").forEach((s) => { s.hidden = true; });
    const tabs = $("method-tabs");
    if (tabs) tabs.hidden = true;
  }

  function legal(data, api, follow, showError) {
    hideMethods();
    const box = $("legal-choices");
    box.textContent = "";
    data.choices.forEach((choice, i) => {
      const id = "legal-" + i;
      const input = document.createElement("input");
      input.type = "radio";
      input.name = "legal_person";
      input.id = id;
      input.value = choice.legal_person;
      input.required = true;
      if (i === 0) input.checked = true;
      const label = document.createElement("label");
      label.htmlFor = id;
      label.textContent = t("js-steps-legal-choice", { name: choice.legal_name, code: choice.legal_person });
      const row = document.createElement("div");
      row.append(input, label);
      box.append(row);
    });
    $("step-legal").hidden = false;
    $("legal-form").onsubmit = async (event) => {
      event.preventDefault();
      const chosen = document.querySelector("input[name=legal_person]:checked");
      if (!chosen) return;
      const result = await api("/legal_person", { legal_person: chosen.value });
      if (!follow(result)) showError(t("js-steps-legal-refused"));
    };
  }

  function consent(data, api, follow, showError) {
    hideMethods();
    $("consent-intro").textContent = t("js-steps-consent-intro", { client: data.client_name || "" });
    const list = $("consent-claims");
    list.textContent = "";
    (data.claims || []).forEach((name) => {
      const li = document.createElement("li");
      li.textContent = label(name);
      list.append(li);
    });
    $("step-consent").hidden = false;
    $("consent-approve").focus();
    const answer = async (approve) => {
      const result = await api("/consent", { approve });
      if (!follow(result)) showError(t("js-steps-consent-refused"));
    };
    $("consent-approve").onclick = () => answer(true);
    $("consent-refuse").onclick = () => answer(false);
  }

  window.eidgateSteps = {
    // Shows the step in `data`; true when there was one.
    show(data, api, follow, showError) {
      if (!data) return false;
      if (data.next === "legal_person" && Array.isArray(data.choices)) {
        legal(data, api, follow, showError);
        return true;
      }
      if (data.next === "consent") {
        consent(data, api, follow, showError);
        return true;
      }
      return false;
    },
  };
})();
