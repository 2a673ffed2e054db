//! Operators' look-ups of personal data (helpdesk and admin: holders, means, registry
//! entries, operators): rate limited per operator and audited, hit or miss (R-LOG-1:
//! access to personal data; R-SEC-3).
//!
//! - **Limit**: `[limits] operator_lookups_per_minute` per operator (default 60), counted
//!   in the ephemeral store (shared by every instance). Beyond it: 429 with
//!   `Retry-After`, audited as `outcome: rate_limited`, and nothing is read.
//! - **Audit**: one `helpdesk.lookup` record per look-up with the API (`helpdesk` or
//!   `admin`), the kind of key, and `outcome` `found` or `not_found`. The subject is the
//!   record found (`person:…`, `means:…`), or for a miss (or a refusal)
//!   `lookup:<sha256 of the key>`: whoever holds an identifier can tell whether it was
//!   looked up, but the record does not spell out the personal code.

use std::time::Duration;

use serde_json::json;

use crate::audit::AuditEvent;
use crate::lifecycle::actor::Actor;
use crate::lifecycle::state::Lifecycle;
use crate::lifecycle::LifecycleError;

/// The look-up window.
const WINDOW: Duration = Duration::from_secs(60);

/// What was looked up.
#[derive(Clone, Copy, Debug)]
pub struct Lookup<'a> {
    /// `helpdesk` or `admin`.
    pub api: &'static str,
    /// The kind of key (`identifier`, `means`, `operator`, `legal_person`).
    pub key_kind: &'static str,
    /// The key as given.
    pub key: &'a str,
}

impl Lookup<'_> {
    fn miss_subject(&self) -> String {
        format!("lookup:{}", crate::domain::secret::fingerprint_hex(self.key))
    }

    async fn audit(
        &self,
        app: &Lifecycle,
        actor: &Actor,
        subject: String,
        outcome: &str,
    ) -> Result<(), LifecycleError> {
        app.store
            .append(AuditEvent::new(
                crate::audit::catalogue::HELPDESK_LOOKUP,
                actor.audit_name(),
                subject,
                json!({"api": self.api, "key": self.key_kind, "outcome": outcome}),
            ))
            .await?;
        Ok(())
    }

    /// Counts the look-up against the operator's limit; beyond it audits the refusal and
    /// answers `TooManyAttempts`. Call after the role check, before reading.
    pub async fn admit(&self, app: &Lifecycle, actor: &Actor) -> Result<(), LifecycleError> {
        let limit = u64::from(app.config.limits.operator_lookups_per_minute);
        let seen = app
            .ephemeral
            .hit(&format!("lookups:{}", actor.audit_name()), WINDOW)
            .await?;
        if seen > limit {
            tracing::warn!(actor = %actor.audit_name(), api = self.api, "operator look-up rate limit reached");
            self.audit(app, actor, self.miss_subject(), "rate_limited").await?;
            return Err(LifecycleError::TooManyAttempts);
        }
        Ok(())
    }

    /// Audits the look-up: `found` names the record, `None` is a miss. Call before the
    /// answer leaves (a failed audit write fails the look-up).
    pub async fn record(&self, app: &Lifecycle, actor: &Actor, found: Option<String>) -> Result<(), LifecycleError> {
        match found {
            Some(subject) => self.audit(app, actor, subject, "found").await,
            None => self.audit(app, actor, self.miss_subject(), "not_found").await,
        }
    }

    /// [`Self::record`] of the outcome of a read, passing the read on.
    pub async fn recorded<T>(
        &self,
        app: &Lifecycle,
        actor: &Actor,
        read: Result<Option<T>, LifecycleError>,
        subject: impl FnOnce(&T) -> String,
    ) -> Result<T, LifecycleError> {
        match read {
            Ok(Some(v)) => {
                self.record(app, actor, Some(subject(&v))).await?;
                Ok(v)
            }
            Ok(None) | Err(LifecycleError::NotFound) => {
                self.record(app, actor, None).await?;
                Err(LifecycleError::NotFound)
            }
            Err(e) => Err(e),
        }
    }
}
