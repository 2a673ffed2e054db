//! Whether what a login rests on can still be used: the means (R-AUTH-1, checked at every
//! exchange, refresh, userinfo and introspection) and the mandate a holder acts under
//! (R-BIND-1).

use super::AuthnError;
use crate::domain::ids::{MandateId, MeansId, PersonId};
use crate::domain::legal::{LegalPerson, Mandate, MandateStatus};
use crate::domain::loa::Loa;
use crate::domain::UnixTime;
use crate::oidc::grant::Authentication;
use crate::store::{Store, StoreError};

/// How many delegation links are followed before a chain counts as broken.
const MAX_DELEGATION_DEPTH: usize = 8;

/// R-AUTH-1: the means behind an authentication still exists, belongs to the holder, is
/// `active` and within its validity. Checked at every exchange, refresh, userinfo and
/// introspection, so a suspension takes effect at once (R-LIFE-4). If the status cannot
/// be read, this fails closed (`Unavailable`).
pub async fn ensure_means_usable(store: &dyn Store, authn: &Authentication, now: UnixTime) -> Result<(), AuthnError> {
    ensure_usable(store, authn.means, now).await.and_then(|holder| {
        if holder == authn.person {
            Ok(())
        } else {
            Err(AuthnError::MeansNotActive)
        }
    })
}

async fn ensure_usable(
    store: &dyn Store,
    means: MeansId,
    now: UnixTime,
) -> Result<crate::domain::ids::PersonId, AuthnError> {
    let m = store.means(means).await?.ok_or(AuthnError::MeansNotActive)?;
    m.check_usable(now).map_err(|_| AuthnError::MeansNotActive)?;
    Ok(m.holder)
}

/// The mandate `id` of `person` if it can be used now by a login at `achieved`: active,
/// within validity, its LoA at most `achieved`, and every mandate it was delegated from
/// still active (responsibility stays with the delegator, R-BIND-1). With its legal person.
pub async fn usable_mandate(
    store: &dyn Store,
    id: MandateId,
    person: PersonId,
    achieved: Loa,
    now: UnixTime,
) -> Result<Option<(Mandate, LegalPerson)>, StoreError> {
    let Some(mandate) = store.mandate(id).await? else {
        return Ok(None);
    };
    if mandate.person != person || !mandate.usable(now, achieved) {
        return Ok(None);
    }
    let mut link = mandate.delegated_from;
    let mut depth = 0;
    while let Some(parent) = link {
        depth += 1;
        let Some(p) = store.mandate(parent).await? else {
            return Ok(None);
        };
        if depth > MAX_DELEGATION_DEPTH
            || p.status_at(now) != MandateStatus::Active
            || p.legal_person != mandate.legal_person
        {
            return Ok(None);
        }
        link = p.delegated_from;
    }
    Ok(store
        .legal_person(mandate.legal_person)
        .await?
        .map(|legal| (mandate, legal)))
}

/// The mandates `person` may act under after a login at `achieved`.
pub async fn eligible_mandates(
    store: &dyn Store,
    person: PersonId,
    achieved: Loa,
    now: UnixTime,
) -> Result<Vec<(Mandate, LegalPerson)>, StoreError> {
    let mut out = Vec::new();
    for m in store.mandates_of_person(person).await? {
        if let Some(found) = usable_mandate(store, m.id, person, achieved, now).await? {
            if !out.iter().any(|(_, l): &(Mandate, LegalPerson)| l.id == found.1.id) {
                out.push(found);
            }
        }
    }
    Ok(out)
}
