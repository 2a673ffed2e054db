//! Compromised means (R-OPS-4): a security officer marks a means as compromised (e.g. a
//! card model vulnerability); it is suspended at once and a notice to its holder is queued.
//! Notices not marked sent within 7 days raise an alert (an audit event, once a day).

use serde_json::json;

use crate::audit::AuditEvent;
use crate::domain::ids::MeansId;
use crate::domain::means::state::{self, Command};
use crate::domain::operator::Role;
use crate::lifecycle::actor::Actor;
use crate::lifecycle::state::Lifecycle;
use crate::lifecycle::LifecycleError;
use crate::store::{Notice, StoreError, TransitionWrite};

/// The longest a notice may wait before an alert (R-OPS-4: 7 days).
pub const NOTICE_DEADLINE: i64 = 7 * 86_400;

/// Marks `id` compromised: suspends it (it must be active: 409 otherwise) and queues a
/// notice to the holder.
pub async fn mark_compromised(
    app: &Lifecycle,
    actor: &Actor,
    id: MeansId,
    reason: &str,
) -> Result<Notice, LifecycleError> {
    actor.operator_with(Role::Security)?;
    if reason.trim().is_empty() || reason.len() > 1024 {
        return Err(LifecycleError::BadRequest("reason must be 1 to 1024 characters".into()));
    }
    crate::lifecycle::service::free_text("reason", reason, 1024)?;
    // The means must be suspended by this request: if it is not active, or a concurrent
    // change (a revocation, another suspension) wins the race, the answer is 409 and no
    // notice is queued, so the caller never sees a success that did not happen.
    let means = app.store.means(id).await?.ok_or(LifecycleError::NotFound)?;
    let to = state::apply(means.status, &Command::Suspend)?;
    let audit = AuditEvent::new(
        crate::audit::catalogue::MEANS_SUSPENDED,
        actor.audit_name(),
        format!("means:{id}"),
        json!({"reason": format!("compromised: {reason}"), "verification": "security_officer", "from": means.status, "to": to}),
    );
    match app
        .changes()
        .commit(&TransitionWrite::status(id, means.version, to), audit)
        .await
    {
        Ok(_) => {}
        Err(StoreError::Conflict) => {
            return Err(LifecycleError::Conflict(
                "the means changed concurrently and was not suspended by this request".into(),
            ))
        }
        Err(e) => return Err(e.into()),
    }
    let notice = Notice {
        id: uuid::Uuid::new_v4().to_string(),
        person: means.holder,
        means: id,
        kind: "compromised".into(),
        reason: reason.to_owned(),
        created_at: app.now(),
        sent_at: None,
    };
    let audit = AuditEvent::new(
        crate::audit::catalogue::NOTICE_QUEUED,
        actor.audit_name(),
        format!("means:{id}"),
        json!({"kind": "compromised", "notice": notice.id}),
    );
    app.store.insert_notice(&notice, audit).await?;
    Ok(notice)
}

/// Raises an alert for every notice older than the deadline and still unsent (at most once
/// a day per notice). Returns how many alerts were raised.
pub async fn alert_overdue(app: &Lifecycle) -> Result<usize, LifecycleError> {
    let now = app.now();
    let overdue = app.store.pending_notices(now - NOTICE_DEADLINE, 1000).await?;
    let mut raised = 0;
    for n in overdue {
        let key = format!("notice-alerted:{}", n.id);
        if !app
            .ephemeral
            .put_new(&key, b"1", std::time::Duration::from_secs(86_400))
            .await?
        {
            continue;
        }
        let audit = AuditEvent::new(
            crate::audit::catalogue::ALERT_NOTICE_OVERDUE,
            "system",
            format!("means:{}", n.means),
            json!({"notice": n.id, "queued_at": n.created_at, "days": (now - n.created_at) / 86_400}),
        );
        app.store.append(audit).await?;
        tracing::warn!(notice = %n.id, "a holder notice is overdue (R-OPS-4)");
        raised += 1;
    }
    Ok(raised)
}
