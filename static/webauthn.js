// eidgate WebAuthn helpers (FIDO2 activation and login): JSON options from the server
// become navigator.credentials calls, the answers go back as the W3C JSON forms
// (RegistrationResponseJSON / AuthenticationResponseJSON, base64url without padding).
"use strict";

(function () {
  function toBytes(b64url) {
    const b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    const padded = b64 + "===".slice((b64.length + 3) % 4);
    const raw = atob(padded);
    const out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out.buffer;
  }

  function toB64url(buffer) {
    const bytes = new Uint8Array(buffer);
    let raw = "";
    for (let i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map((d) => Object.assign({}, d, { id: toBytes(d.id) }));
  }

  function creationOptions(json) {
    const o = Object.assign({}, json);
    o.challenge = toBytes(json.challenge);
    o.user = Object.assign({}, json.user, { id: toBytes(json.user.id) });
    o.excludeCredentials = descriptors(json.excludeCredentials);
    delete o.mediation;
    return o;
  }

  function requestOptions(json) {
    const o = Object.assign({}, json);
    o.challenge = toBytes(json.challenge);
    o.allowCredentials = descriptors(json.allowCredentials);
    delete o.mediation;
    return o;
  }

  function extensions(credential) {
    try { return credential.getClientExtensionResults() || {}; } catch (e) { return {}; }
  }

  async function create(publicKey) {
    const credential = await navigator.credentials.create({ publicKey: creationOptions(publicKey) });
    const r = credential.response;
    return {
      id: credential.id,
      rawId: toB64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: extensions(credential),
      response: {
        clientDataJSON: toB64url(r.clientDataJSON),
        attestationObject: toB64url(r.attestationObject),
        transports: typeof r.getTransports === "function" ? r.getTransports() : [],
      },
    };
  }

  async function get(publicKey) {
    const credential = await navigator.credentials.get({ publicKey: requestOptions(publicKey) });
    const r = credential.response;
    return {
      id: credential.id,
      rawId: toB64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: extensions(credential),
      response: {
        clientDataJSON: toB64url(r.clientDataJSON),
        authenticatorData: toB64url(r.authenticatorData),
        signature: toB64url(r.signature),
        userHandle: r.userHandle ? toB64url(r.userHandle) : null,
      },
    };
  }

  // A message the holder can act on, for each way navigator.credentials can fail.
  function explain(error) {
    const t = window.eidgateT || ((id) => id);
    const name = (error && error.name) || "";
    // Kept for support staff and tests (the browser's own words).
    window.eidgateLastError = name + ": " + ((error && error.message) || "");
    if (name === "NotAllowedError") {
      return t("js-webauthn-not-allowed");
    }
    if (name === "AbortError") return t("js-webauthn-aborted");
    if (name === "InvalidStateError") return t("js-webauthn-already-registered");
    if (name === "NotSupportedError") return t("js-webauthn-not-supported");
    if (name === "SecurityError") return t("js-webauthn-security");
    if (!window.PublicKeyCredential) return t("js-webauthn-unsupported");
    return t("js-webauthn-failed");
  }

  window.eidgateWebauthn = { create, get, explain, supported: () => !!window.PublicKeyCredential };
})();
