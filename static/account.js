// eidgate account page: the holder's own means, suspend or revoke one; the personal data
// held and the events of the holder's means (R-SUP-4).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);

  async function act(id, command) {
    if (command === "revoke" && !window.confirm("Revoking is final. Continue?")) return;
    const r = await fetch("/account/api/means/" + encodeURIComponent(id) + "/" + command, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ reason: "holder self-service" }),
    });
    if (r.status !== 200) {
      const data = await r.json().catch(() => ({}));
      $("error").textContent = data.detail || data.title || "The change failed.";
      $("error").hidden = false;
    }
    load();
  }

  function button(label, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.addEventListener("click", onClick);
    return b;
  }

  async function load() {
    const r = await fetch("/account/api/means");
    if (r.status === 401) {
      $("status").textContent = "";
      const a = document.createElement("a");
      a.href = "/account/login";
      a.textContent = "Log in to see your means";
      $("status").appendChild(a);
      return;
    }
    const data = await r.json();
    const body = $("means").querySelector("tbody");
    body.replaceChildren();
    for (const m of data.means) {
      const row = document.createElement("tr");
      for (const text of [m.kind, m.loa, m.state]) {
        const td = document.createElement("td");
        td.textContent = text;
        row.appendChild(td);
      }
      const actions = document.createElement("td");
      if (m.state === "active") actions.appendChild(button("Suspend", () => act(m.id, "suspend")));
      if (["active", "suspended", "issued"].includes(m.state)) actions.appendChild(button("Revoke", () => act(m.id, "revoke")));
      row.appendChild(actions);
      body.appendChild(row);
    }
    $("means").hidden = false;
    $("status").textContent = data.means.length + " means.";
    loadMe();
  }

  function cells(row, texts) {
    for (const text of texts) {
      const td = document.createElement("td");
      td.textContent = text;
      row.appendChild(td);
    }
  }

  async function loadMe() {
    const r = await fetch("/account/api/me");
    if (r.status !== 200) return;
    const me = await r.json();
    const dl = $("person");
    dl.replaceChildren();
    const p = me.person;
    for (const [label, value] of [["Identifier", p.identifier], ["Given name", p.given_name],
      ["Family name", p.family_name], ["Date of birth", p.birthdate], ["Identity checked at", p.proofing_loa]]) {
      const dt = document.createElement("dt");
      dt.textContent = label;
      const dd = document.createElement("dd");
      dd.textContent = value;
      dl.append(dt, dd);
    }
    const body = $("events").querySelector("tbody");
    body.replaceChildren();
    for (const e of me.events) {
      const row = document.createElement("tr");
      cells(row, [e.time, e.event, e.by]);
      body.appendChild(row);
    }
    $("me").hidden = false;
  }

  // Consents (R-DATA-4): what each service may receive; the holder can withdraw one.
  async function loadConsents() {
    const r = await fetch("/account/api/consents");
    if (r.status !== 200) return;
    const data = await r.json().catch(() => ({ consents: [] }));
    const list = $("consent-list");
    list.textContent = "";
    data.consents.forEach((c) => {
      const li = document.createElement("li");
      li.textContent = c.client_id + ": " + c.claims.join(", ") + " ";
      li.append(button("Withdraw", async () => {
        const w = await fetch("/account/api/consents/" + encodeURIComponent(c.client_id) + "/revoke", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: "{}",
          credentials: "same-origin",
        });
        if (w.status === 200) loadConsents();
      }));
      list.append(li);
    });
    $("consents").hidden = data.consents.length === 0;
  }

  load();
  loadConsents();
})();
