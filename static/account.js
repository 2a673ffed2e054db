// eidgate account page: the holder's own means, suspend or revoke one; the personal data
// held and the events of the holder's means (R-SUP-4). The texts come from the page's
// message catalogue (i18n.js); times in the browser's time zone.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const t = window.eidgateT;
  const lang = window.eidgateLang;
  let pendingRevoke = null;

  // A catalogue message `prefix-value`, or the value itself when there is none.
  function word(prefix, value) {
    const id = prefix + String(value).replace(/[._]/g, "-");
    const text = t(id);
    return text === id ? String(value) : text;
  }

  function when(time) {
    const date = new Date(time);
    if (isNaN(date.getTime())) return time;
    return new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "medium" }).format(date);
  }

  function eventName(type) {
    const id = "js-event-" + type.replace(/[._]/g, "-");
    const text = t(id);
    return text === id ? t("js-event-other", { name: type }) : text;
  }

  // `LT:38001085718` as "38001085718 (Lithuania)".
  function identifier(value) {
    const at = String(value).search(/[:/]/);
    if (at < 0) return value;
    const country = value.slice(0, at);
    const code = value.slice(value.lastIndexOf(value[at]) + 1);
    let name = country;
    try { name = new Intl.DisplayNames([lang], { type: "region" }).of(country) || country; } catch (e) { name = country; }
    return t("js-account-identifier", { code, region: name });
  }

  function showError(text) {
    $("error").textContent = text;
    $("error").hidden = false;
  }

  async function act(id, command) {
    $("error").hidden = true;
    const r = await fetch("/account/api/means/" + encodeURIComponent(id) + "/" + command, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ reason: "holder self-service" }),
    });
    if (r.status === 200) {
      $("status").textContent = t(command === "revoke" ? "js-account-revoked" : "js-account-suspended");
    } else if (r.status === 401) {
      showError(t("js-account-session-ended"));
    } else {
      showError(t("js-account-change-failed"));
    }
    load();
  }

  function button(label, onClick, kind) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    if (kind) b.className = kind;
    b.addEventListener("click", onClick);
    return b;
  }

  // Revoking is final: an in-page confirmation step names the means first.
  function askRevoke(m) {
    pendingRevoke = m.id;
    $("revoke-what").textContent = t("js-account-revoke-what", { name: word("js-kind-", m.kind) });
    $("revoke-confirm").hidden = false;
    $("revoke-no").focus();
  }

  $("revoke-yes").addEventListener("click", () => {
    const id = pendingRevoke;
    pendingRevoke = null;
    $("revoke-confirm").hidden = true;
    if (id) act(id, "revoke");
  });
  $("revoke-no").addEventListener("click", () => {
    pendingRevoke = null;
    $("revoke-confirm").hidden = true;
  });

  async function load() {
    const r = await fetch("/account/api/means");
    if (r.status === 401) {
      $("status").textContent = "";
      const a = document.createElement("a");
      a.href = "/account/login";
      a.textContent = t("js-account-log-in");
      $("status").appendChild(a);
      $("means-box").hidden = true;
      $("me").hidden = true;
      $("logout-form").hidden = true;
      return;
    }
    if (r.status !== 200) {
      showError(t("js-common-unavailable"));
      return;
    }
    const data = await r.json();
    const body = $("means").querySelector("tbody");
    body.replaceChildren();
    for (const m of data.means) {
      const row = document.createElement("tr");
      cells(row, [word("js-kind-", m.kind), word("js-loa-", m.loa), word("js-state-", m.state)]);
      const actions = document.createElement("td");
      if (m.state === "active") actions.appendChild(button(t("js-account-suspend"), () => act(m.id, "suspend"), "secondary"));
      if (["active", "suspended", "issued"].includes(m.state)) {
        actions.appendChild(button(t("js-account-revoke"), () => askRevoke(m), "danger"));
      }
      row.appendChild(actions);
      body.appendChild(row);
    }
    $("means-box").hidden = false;
    $("logout-form").hidden = false;
    $("status").textContent = t("js-account-count", { count: data.means.length });
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
    for (const [label, value] of [["js-account-identifier-label", identifier(p.identifier)],
      ["js-account-given-name", p.given_name], ["js-account-family-name", p.family_name],
      ["js-account-birthdate", p.birthdate], ["js-account-proofing", word("js-loa-", p.proofing_loa)]]) {
      const dt = document.createElement("dt");
      dt.textContent = t(label);
      const dd = document.createElement("dd");
      dd.textContent = value;
      dl.append(dt, dd);
    }
    const body = $("events").querySelector("tbody");
    body.replaceChildren();
    const events = me.events.slice().sort((a, b) => String(b.time).localeCompare(String(a.time)));
    for (const e of events) {
      const row = document.createElement("tr");
      cells(row, [when(e.time), eventName(e.event), word("js-by-", e.by)]);
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
      const claims = c.claims.map((name) => word("js-claim-", name)).join(", ");
      li.textContent = t("js-account-consent", { client: c.client_id, name: claims }) + " ";
      li.append(button(t("js-account-withdraw"), async () => {
        const w = await fetch("/account/api/consents/" + encodeURIComponent(c.client_id) + "/revoke", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: "{}",
          credentials: "same-origin",
        });
        if (w.status === 200) loadConsents();
        else showError(t("js-account-change-failed"));
      }, "secondary"));
      list.append(li);
    });
    $("consents").hidden = data.consents.length === 0;
  }

  load();
  loadConsents();
})();
