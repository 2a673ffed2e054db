//! The event catalogue (R-LOG-1, R-LOG-4): every event type eidgate writes, the R-LOG-1
//! item it covers, and whether it also goes to the external sink. Emitters use these
//! constants; `audit::sink` and `audit::report` classify records by them.

/// One catalogue entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventSpec {
    /// `event_type` as stored.
    pub name: &'static str,
    /// The R-LOG-1 item (or other requirement) it records.
    pub covers: &'static str,
    /// Also written to the external sink (failures, denials, alerts: R-LOG-4).
    pub external: bool,
}

macro_rules! catalogue {
    ($($konst:ident = $name:literal, $covers:literal, $external:literal;)*) => {
        $(
            #[doc = concat!("`", $name, "`: ", $covers)]
            pub const $konst: &str = $name;
        )*
        /// Every event type.
        pub const EVENTS: &[EventSpec] = &[
            $(EventSpec { name: $name, covers: $covers, external: $external },)*
        ];
    };
}

catalogue! {
    SYSTEM_START = "system.start", "start of the system and of logging, with its parameters", false;
    SYSTEM_STOP = "system.stop", "stop of the system and of logging", false;
    SYSTEM_CLOCK_JUMP = "system.clock_jump", "clock change detected (R-LOG-3)", true;
    AUDIT_PRUNED = "audit.pruned", "destruction of expired records (R-LOG-6)", false;
    AUDIT_REPORT = "audit.report", "daily analysis / weekly summary (R-LOG-4)", true;
    ALERT_RAISED = "alert.raised", "alert on intrusion, brute force, exceeded rights (R-LOG-4)", true;
    LOGIN_SUCCESS = "login.success", "login", false;
    LOGIN_SSO = "login.sso", "login: a code issued from the SSO session, without a ceremony", false;
    LOGIN_FAILURE = "login.failure", "failed login attempt", true;
    LOGOUT = "logout", "logout", false;
    TOKEN_REVOKED = "token.revoked", "a relying party revoked a token it holds (RFC 7009)", false;
    AUTHN_COUNTER_REGRESSION = "authn.counter_regression", "FIDO signature counter went back (cloned key)", true;
    CLIENT_IMPORTED = "client.imported", "creation/change of a relying party account", false;
    PERSON_IMPORTED = "person.imported", "creation of a user account", false;
    PERSON_REGISTERED = "person.registered", "creation of a user account", false;
    PERSON_PROOFED = "person.proofed", "identity proofing of a user", false;
    OPERATOR_IMPORTED = "operator.imported", "creation of an operator account", false;
    OPERATOR_ROLES_CHANGED = "operator.roles_changed", "change/deletion of an operator account", false;
    OPERATOR_ACCESS_DENIED = "operator.access_denied", "attempt to exceed granted rights", true;
    MEANS_IMPORTED = "means.imported", "creation of a credential", false;
    MEANS_APPLIED = "means.applied", "request for a means (first or renewed)", false;
    MEANS_APPROVED = "means.approved", "approval; generation of activation code", false;
    MEANS_REJECTED = "means.rejected", "rejection", false;
    MEANS_ACTIVATED = "means.activated", "delivery of a means and the holder's acceptance", false;
    MEANS_SUSPENDED = "means.suspended", "request to suspend", false;
    MEANS_REVOKED = "means.revoked", "request to revoke", false;
    MEANS_REACTIVATED = "means.reactivated", "change of a credential's status", false;
    MEANS_EXPIRED = "means.expired", "end of a credential", false;
    ACTIVATION_STARTED = "activation.started", "delivery of a means", false;
    ACTIVATION_FAILED = "activation.failed", "failed activation attempt", true;
    HELPDESK_LOOKUP = "helpdesk.lookup", "operator access to holder data", false;
    HELPDESK_VERIFICATION_FAILED = "helpdesk.verification_failed", "failed holder verification", true;
    HELPDESK_REVOCATION_SECRET_WRONG = "helpdesk.revocation_secret_wrong", "failed revocation authentication", true;
    KEY_GENERATED = "key.generated", "key management: generation", false;
    KEY_ROTATED = "key.rotated", "key management: rotation (generation and retirement)", false;
    CERTIFICATE_ISSUED = "certificate.issued", "certificate generation by the issuing CA (smartcard)", false;
    CERTIFICATE_IMPORTED = "certificate.imported", "registration of a card certificate from a trusted CA", false;
    CRL_SIGNED = "certificate.crl_signed", "revocation list (CRL) generation", false;
    FIDO_CREDENTIAL_REGISTERED = "fido.credential_registered", "creation of a credential (FIDO2 key, with its attestation)", false;
    FIDO_REGISTRATION_FAILED = "fido.registration_failed", "failed activation attempt (FIDO2 registration)", true;
    DELIVERY_SENT = "delivery.sent", "delivery of an activation code or revocation secret to the holder (R-ISS-1)", false;
    APPROVAL_REQUESTED = "approval.requested", "a two-person action requested (R-SEC-3)", false;
    APPROVAL_APPROVED = "approval.approved", "a two-person action approved and carried out (R-SEC-3)", false;
    APPROVAL_REJECTED = "approval.rejected", "a two-person action rejected (R-SEC-3)", false;
    MANDATE_APPROVED = "mandate.approved", "second officer's approval of a mandate (R-BIND-1, R-SEC-3)", false;
    OPERATOR_PASSWORD_CHANGED = "operator.password_changed", "change of an operator's password (R-SEC-4)", false;
    OPERATOR_PASSWORD_REFUSED = "operator.password_refused", "an expired or reused operator password refused (R-SEC-4)", true;
    MEANS_PASSWORD_CHANGED = "means.password_changed", "change of a credential: the holder's new password (R-MEANS-2)", false;
    MEANS_LOGIN_RESET = "means.login_reset", "the helpdesk lifted a means' login defences (R-AUTH-4)", false;
    CONSENT_GRANTED = "consent.granted", "the holder's consent to a release of attributes (R-DATA-4)", false;
    CONSENT_REVOKED = "consent.revoked", "the holder withdrew a consent (R-DATA-4)", false;
    LEGAL_PERSON_REGISTERED = "legal_person.registered", "registration of a legal person (R-REG-5)", false;
    MANDATE_CREATED = "mandate.created", "a mandate requested by an officer (R-BIND-1)", false;
    MANDATE_DELEGATED = "mandate.delegated", "a mandate delegated by its representative (R-BIND-1)", false;
    MANDATE_SUSPENDED = "mandate.suspended", "suspension of a mandate (R-BIND-1)", false;
    MANDATE_USED = "mandate.used", "a login acting for a legal person under a mandate (R-BIND-1)", false;
    LOA_CAPS_CHANGED = "loa.caps_changed", "the supervisor withdrew or restored an LoA (R-SUP-2)", false;
    INCIDENT_CLASSIFIED = "incident.classified", "an incident classified by an officer (R-OPS-2)", false;
    MAINTENANCE_ANNOUNCED = "maintenance.announced", "planned downtime announced (R-OPS-1)", false;
    NOTICE_QUEUED = "notice.queued", "a holder notice queued for a compromised means (R-OPS-4)", false;
    NOTICE_SENT = "notice.sent", "a holder notice marked sent (R-OPS-4)", false;
    SYSTEM_CLOCK_RESOLVED = "system.clock_resolved", "a security officer resolved a clock alarm (R-OPS-3)", false;
    CLIENT_BUILTIN_REGISTERED = "client.builtin_registered", "creation of the built-in relying party accounts (console, account page)", false;
    CONFIG_LOGIN_SECRET_CREATED = "config.login_secret_created", "key management: the login-defence secret generated", false;
    CONFIG_LOGIN_SECRET_REPLACED = "config.login_secret_replaced", "key management: an unusable login-defence secret replaced", true;
    CONFIG_LOA_CAPS_RELOADED = "config.loa_caps_reloaded", "LoA caps changed by a configuration reload (R-SUP-2)", false;
    PROVIDER_TERMINATION_STARTED = "provider.termination_started", "termination of the provider started (R-SUP-3)", false;
    ALERT_IP_SPREAD = "alert.ip_spread", "alert: one address tries many accounts (R-LOG-4)", true;
    ALERT_NOTICE_OVERDUE = "alert.notice_overdue", "alert: a holder notice unsent past its deadline (R-OPS-4)", true;
    ACTIVATION_TOTP_FAILED = "activation.totp_failed", "failed activation attempt (TOTP confirmation)", true;
    MEANS_LOCKED = "means.locked", "a means suspended after too many failed logins (R-AUTH-4)", true;
    MEANS_RENEWAL_REFUSED = "means.renewal_refused", "a renewal refused for want of a valid means (R-RENEW-1)", true;
    CONSENT_REFUSED = "consent.refused", "the holder refused a release of attributes (R-DATA-4)", false;
    LEGAL_NO_MANDATE = "legal.no_mandate", "a login for a legal person without a usable mandate (R-BIND-1)", true;
    LEGAL_REFUSED = "legal.refused", "a legal person chosen without a usable mandate (R-BIND-1)", true;
    LEGAL_PERSON_IMPORTED = "legal_person.imported", "creation of a legal person by import", false;
    MANDATE_IMPORTED = "mandate.imported", "creation of a mandate by import", false;
    MANDATE_REVOKED = "mandate.revoked", "revocation of a mandate (R-BIND-1)", false;
    MANDATE_REACTIVATION_REQUESTED = "mandate.reactivation_requested", "reactivation of a mandate requested; a second officer approves (R-SEC-3)", false;
    INCIDENT_RECORDED = "incident.recorded", "an outage recorded by the availability monitor (R-OPS-1)", false;
    INCIDENT_SIGNIFICANT = "incident.significant", "a significant outage recorded; the CERT is to be notified (R-OPS-2)", true;
}

/// The entry of `name`.
pub fn find(name: &str) -> Option<&'static EventSpec> {
    EVENTS.iter().find(|e| e.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_log_1_catalogue_names_are_unique_and_dotted() {
        let mut names: Vec<&str> = EVENTS.iter().map(|e| e.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate event names");
        assert!(EVENTS.iter().all(|e| e.name.contains('.') || e.name == "logout"));
    }

    #[test]
    fn r_log_4_failures_and_denials_go_to_the_sink() {
        for name in [
            LOGIN_FAILURE,
            OPERATOR_ACCESS_DENIED,
            HELPDESK_VERIFICATION_FAILED,
            ALERT_RAISED,
        ] {
            assert!(find(name).is_some_and(|e| e.external), "{name}");
        }
        assert!(!find(LOGIN_SUCCESS).is_some_and(|e| e.external));
    }
}
