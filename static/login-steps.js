// eidgate login page: the steps after authentication (DESIGN "More contracts"): the
// legal person to act for (scope eidas_legal) and the consent to release data.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);

  // Human names of the released claims (DESIGN "Claims").
  const LABELS = {
    person_identifier: "Personal identifier",
    given_name: "First name(s)",
    family_name: "Family name(s)",
    birthdate: "Date of birth",
    birth_family_name: "Family name(s) at birth",
    birth_given_name: "First name(s) at birth",
    place_of_birth: "Place of birth",
    address: "Current address",
    gender: "Gender",
    given_name_latin: "First name(s) in Latin script",
    family_name_latin: "Family name(s) in Latin script",
    legal_person_identifier: "Identifier of the company you represent",
    legal_name: "Name of the company you represent",
    legal_address: "Address of the company",
    vat_number: "VAT number",
    tax_reference: "Tax reference number",
    euid: "European Unique Identifier (EUID)",
    lei: "Legal Entity Identifier (LEI)",
    eori: "EORI number",
    seed: "Excise number (SEED)",
    sic: "Standard Industrial Classification (SIC)",
  };

  function hideMethods() {
    document.querySelectorAll("main > section").forEach((s) => { s.hidden = true; });
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
      label.textContent = choice.legal_name + " (" + choice.legal_person + ")";
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
      if (!follow(result)) showError("That choice is not available. Start again from the service.");
    };
  }

  function consent(data, api, follow, showError) {
    hideMethods();
    $("consent-intro").textContent = (data.client_name || "The service") + " asks for the following data:";
    const list = $("consent-claims");
    list.textContent = "";
    (data.claims || []).forEach((name) => {
      const li = document.createElement("li");
      li.textContent = LABELS[name] || name;
      list.append(li);
    });
    $("step-consent").hidden = false;
    $("consent-approve").focus();
    const answer = async (approve) => {
      const result = await api("/consent", { approve });
      if (!follow(result)) showError("The answer was not accepted. Start again from the service.");
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
