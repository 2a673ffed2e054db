// eidgate helpdesk console: the operator logs in through this provider (authorization code
// flow with PKCE, as the built-in client "eidgate-helpdesk"), then looks up holders and
// changes the status of their means through /helpdesk/v1. The page holds the access token
// in memory only; the refresh token stays in an HttpOnly cookie that the server trades for a
// new access token before the old one expires. No token is ever pasted.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const t = window.eidgateT || ((id) => id);
  const lang = window.eidgateLang || "en";
  const CLIENT = "eidgate-helpdesk";
  const PENDING = "eidgate.helpdesk.login";
  // The page is served at {issuer}/helpdesk: that is its redirect URI, and the provider's
  // endpoints are its siblings.
  const page = location.origin + location.pathname;
  const at = (path) => new URL(path, page).toString();
  let access = null;
  let renewal = null;

  const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const random = (n) => b64url(crypto.getRandomValues(new Uint8Array(n)));

  function say(text) {
    $("error").hidden = true;
    $("result").textContent = text;
  }

  function fail(text) {
    $("result").textContent = "";
    $("error").textContent = text;
    $("error").hidden = false;
  }

  // A problem+json answer in plain words: its title, and its detail when there is one.
  function problem(data, fallback) {
    if (!data || !data.title) return t(fallback);
    return data.detail ? data.title + ": " + data.detail : data.title;
  }

  // `LT:38001085718` as "38001085718 (Lithuania)".
  function identifier(value) {
    const at = String(value).search(/[:/]/);
    if (at < 0) return value;
    const country = value.slice(0, at);
    const code = value.slice(value.lastIndexOf(value[at]) + 1);
    let name = country;
    try { name = new Intl.DisplayNames([lang], { type: "region" }).of(country) || country; } catch (e) { name = country; }
    return t("js-helpdesk-identifier", { code, region: name });
  }

  // Shows the signed-in or signed-out part; `data-session` on <body> says which, once known.
  function show(roles) {
    document.body.dataset.session = roles === null ? "none" : "open";
    $("signed-out").hidden = roles !== null;
    $("signed-in").hidden = roles === null;
    if (roles === null) {
      $("holder").hidden = true;
    } else {
      $("who").textContent = t("js-helpdesk-who", { roles: roles.map((r) => t("js-helpdesk-role-" + r)).join(", ") });
    }
  }

  // Keeps the session: a new access token a minute before this one expires.
  function hold(data) {
    access = data.access_token;
    clearTimeout(renewal);
    const seconds = Math.max(10, (data.expires_in || 60) - 60);
    renewal = setTimeout(() => { renew().then((ok) => { if (!ok) { fail(t("js-helpdesk-session-ended")); } }); }, seconds * 1000);
    show(data.roles || []);
  }

  async function session(path, body) {
    const r = await fetch(at(path), {
      method: "POST",
      credentials: "same-origin",
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    const data = await r.json().catch(() => ({}));
    return { ok: r.status === 200, data };
  }

  async function renew() {
    const { ok, data } = await session("helpdesk/session/refresh");
    if (ok) { hold(data); return true; }
    access = null;
    show(null);
    return false;
  }

  async function startLogin() {
    const verifier = random(32);
    const state = random(16);
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
    sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state }));
    const q = new URLSearchParams({
      response_type: "code",
      client_id: CLIENT,
      redirect_uri: page,
      scope: "openid offline_access",
      state,
      code_challenge: b64url(digest),
      code_challenge_method: "S256",
    });
    location.assign(at("authorize") + "?" + q.toString());
  }

  // Back from the provider: the code is traded for a session with the verifier this tab kept.
  async function finishLogin(params) {
    const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
    sessionStorage.removeItem(PENDING);
    history.replaceState(null, "", page);
    // The language links must not carry the spent code either.
    for (const a of document.querySelectorAll("nav.languages a")) {
      const url = new URL(a.href, page);
      for (const name of ["code", "state", "iss", "error", "error_description"]) url.searchParams.delete(name);
      a.href = url.search;
    }
    if (params.get("error")) {
      fail(t("js-helpdesk-login-refused", { error: params.get("error") }));
      return;
    }
    if (!pending || params.get("state") !== pending.state) {
      fail(t("js-helpdesk-state-mismatch"));
      return;
    }
    const { ok, data } = await session("helpdesk/session", { code: params.get("code"), code_verifier: pending.verifier });
    if (ok) { hold(data); say(""); return; }
    show(null);
    fail(problem(data, "js-helpdesk-login-failed"));
  }

  // A call with the access token; a 401 renews the session once and retries.
  async function api(path, init) {
    const call = () => fetch(path, Object.assign({}, init, {
      headers: Object.assign({}, (init || {}).headers, { Authorization: "Bearer " + access }),
    }));
    let r = await call();
    if (r.status === 401 && await renew()) { r = await call(); }
    return r;
  }

  async function lookup() {
    const r = await api("/helpdesk/v1/holders?identifier=" + encodeURIComponent($("identifier").value.trim()));
    const data = await r.json().catch(() => ({}));
    if (r.status !== 200) {
      fail(r.status === 404 ? t("js-helpdesk-not-found") : problem(data, "js-helpdesk-lookup-failed"));
      $("holder").hidden = true;
      return;
    }
    say("");
    $("holder-name").textContent = data.holder.given_name + " " + data.holder.family_name + " — " + identifier(data.holder.identifier);
    const tbody = $("means");
    const select = $("means-id");
    tbody.replaceChildren();
    select.replaceChildren();
    for (const m of data.means) {
      const row = document.createElement("tr");
      for (const text of [m.id.slice(0, 8), t("js-kind-" + m.kind), t("js-loa-" + m.loa), t("js-state-" + m.state)]) {
        const td = document.createElement("td");
        td.textContent = text;
        row.appendChild(td);
      }
      tbody.appendChild(row);
      const opt = document.createElement("option");
      opt.value = m.id;
      opt.textContent = t("js-kind-" + m.kind) + " " + m.id.slice(0, 8) + " (" + t("js-state-" + m.state) + ")";
      select.appendChild(opt);
    }
    $("holder").hidden = false;
  }

  $("login").addEventListener("click", () => { startLogin(); });
  $("logout").addEventListener("click", async () => {
    clearTimeout(renewal);
    await fetch(at("helpdesk/session/logout"), {
      method: "POST",
      credentials: "same-origin",
      headers: access ? { Authorization: "Bearer " + access } : {},
    }).catch(() => null);
    access = null;
    show(null);
    say(t("js-helpdesk-logged-out"));
  });
  $("lookup").addEventListener("submit", (e) => { e.preventDefault(); lookup(); });

  // Revocation is final: the page asks first, in the page.
  $("change").addEventListener("submit", (e) => {
    e.preventDefault();
    if ($("command").value === "revoke") {
      $("revoke-confirm").hidden = false;
      $("revoke-yes").focus();
      return;
    }
    apply();
  });
  $("revoke-yes").addEventListener("click", () => { $("revoke-confirm").hidden = true; apply(); });
  $("revoke-no").addEventListener("click", () => { $("revoke-confirm").hidden = true; $("command").focus(); });

  async function apply() {
    const key = crypto.randomUUID();
    const r = await api("/helpdesk/v1/means/" + encodeURIComponent($("means-id").value) + "/" + $("command").value, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Idempotency-Key": key },
      body: JSON.stringify({ reason: $("reason").value, verification: { method: $("method").value, evidence: $("evidence").value } }),
    });
    const data = await r.json().catch(() => ({}));
    $("evidence").value = "";
    if (r.status === 200) {
      say(t("js-helpdesk-done", { state: t("js-state-" + data.state) }));
    } else if (r.status === 202) {
      say(t("js-helpdesk-awaiting-approval"));
    } else {
      fail(problem(data, "js-helpdesk-change-failed"));
    }
    lookup();
  }

  const params = new URLSearchParams(location.search);
  if (params.has("code") || params.has("error")) {
    finishLogin(params);
  } else {
    renew();
  }
})();
