//! [`LegalRepo`] for [`SqlStore`]: consents (R-DATA-4), legal persons (R-REG-5) and
//! mandates (R-BIND-1). Every write carries its audit record in the same transaction.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::rows::{bad_json, corrupt, parse_optional_uuid, parse_text, parse_uuid};
use super::sql::SqlStore;
use super::{Consent, LegalRepo, StoreError};
use crate::audit::AuditEvent;
use crate::domain::ids::{ClientId, LegalPersonId, MandateId, PersonId, PersonIdentifier};
use crate::domain::legal::{LegalAttributes, LegalPerson, Mandate, MandateStatus, RegisterCheck};
use crate::domain::loa::Loa;

const SELECT_CONSENT: &str =
    "SELECT person_id, client_id, claims, granted_at FROM consents WHERE person_id = $1 AND client_id = $2";
const SELECT_CONSENTS: &str =
    "SELECT person_id, client_id, claims, granted_at FROM consents WHERE person_id = $1 ORDER BY client_id";
const UPSERT_CONSENT: &str = "INSERT INTO consents (person_id, client_id, claims, granted_at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (person_id, client_id) DO UPDATE SET claims = excluded.claims, granted_at = excluded.granted_at";
const DELETE_CONSENT: &str = "DELETE FROM consents WHERE person_id = $1 AND client_id = $2";
/// With a consent go the refresh tokens of that holder at that client.
const REVOKE_CONSENT_REFRESH: &str = "UPDATE refresh_tokens SET revoked_at = $1 \
                                      WHERE person_id = $2 AND client_id = $3 AND revoked_at IS NULL";

const LEGAL_COLUMNS: &str =
    "id, identifier, legal_name, legal_form, attributes, register_source, register_reference, checked_by, created_at";
const MANDATE_COLUMNS: &str = "id, legal_person_id, person_id, loa, status, valid_from, valid_until, delegated_from, \
     delegated_by, verification, version, created_at";

fn consent(row: &AnyRow) -> Result<Consent, StoreError> {
    let claims: String = row.try_get("claims")?;
    let client: String = row.try_get("client_id")?;
    Ok(Consent {
        person: PersonId(parse_uuid(row, "person_id")?),
        client_id: client.parse().map_err(|e| corrupt("consents.client_id", e))?,
        claims: claims.split(' ').filter(|c| !c.is_empty()).map(str::to_owned).collect(),
        granted_at: row.try_get("granted_at")?,
    })
}

fn legal_person(row: &AnyRow) -> Result<LegalPerson, StoreError> {
    let identifier: String = row.try_get("identifier")?;
    let attributes: String = row.try_get("attributes")?;
    let identifier: PersonIdentifier = identifier.parse().map_err(|e| corrupt("legal_persons.identifier", e))?;
    let reference: String = row.try_get("register_reference")?;
    Ok(LegalPerson {
        id: LegalPersonId(parse_uuid(row, "id")?),
        identifier,
        legal_name: row.try_get("legal_name")?,
        legal_form: row.try_get("legal_form")?,
        attributes: serde_json::from_str::<LegalAttributes>(&attributes)
            .map_err(|e| bad_json("legal_persons.attributes", &e))?,
        register: RegisterCheck {
            source: row.try_get("register_source")?,
            reference,
            legal_person_identifier: None,
        },
        checked_by: row.try_get("checked_by")?,
        created_at: row.try_get("created_at")?,
    })
}

fn mandate(row: &AnyRow) -> Result<Mandate, StoreError> {
    let verification: String = row.try_get("verification")?;
    Ok(Mandate {
        id: MandateId(parse_uuid(row, "id")?),
        legal_person: LegalPersonId(parse_uuid(row, "legal_person_id")?),
        person: PersonId(parse_uuid(row, "person_id")?),
        loa: parse_text::<Loa>(row, "loa")?,
        status: parse_text::<MandateStatus>(row, "status")?,
        valid_from: row.try_get("valid_from")?,
        valid_until: row.try_get("valid_until")?,
        delegated_from: parse_optional_uuid(row, "delegated_from")?.map(MandateId),
        delegated_by: parse_optional_uuid(row, "delegated_by")?.map(PersonId),
        verification: serde_json::from_str(&verification).map_err(|e| bad_json("mandates.verification", &e))?,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
    })
}

#[async_trait]
impl LegalRepo for SqlStore {
    async fn consent(&self, person: PersonId, client: &ClientId) -> Result<Option<Consent>, StoreError> {
        let row = sqlx::query(SELECT_CONSENT)
            .bind(person.to_string())
            .bind(client.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(consent).transpose()
    }

    async fn consents_of(&self, person: PersonId) -> Result<Vec<Consent>, StoreError> {
        let rows = sqlx::query(SELECT_CONSENTS)
            .bind(person.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(consent).collect()
    }

    async fn grant_consent(&self, c: &Consent, audit: AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.begin_audited().await?;
        sqlx::query(UPSERT_CONSENT)
            .bind(c.person.to_string())
            .bind(c.client_id.as_str())
            .bind(c.claims.join(" "))
            .bind(c.granted_at)
            .execute(&mut *tx.tx)
            .await?;
        tx.commit(&audit).await?;
        Ok(())
    }

    async fn revoke_consent(&self, person: PersonId, client: &ClientId, audit: AuditEvent) -> Result<bool, StoreError> {
        let mut tx = self.begin_audited().await?;
        let done = sqlx::query(DELETE_CONSENT)
            .bind(person.to_string())
            .bind(client.as_str())
            .execute(&mut *tx.tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(REVOKE_CONSENT_REFRESH)
            .bind(tx.now)
            .bind(person.to_string())
            .bind(client.as_str())
            .execute(&mut *tx.tx)
            .await?;
        tx.commit(&audit).await?;
        Ok(true)
    }

    async fn insert_legal_person(&self, legal: &LegalPerson, audit: AuditEvent) -> Result<(), StoreError> {
        let attributes = super::rows::json_text(&legal.attributes)?;
        let mut tx = self.begin_audited().await?;
        sqlx::query(&format!(
            "INSERT INTO legal_persons ({LEGAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(legal.id.to_string())
        .bind(legal.identifier.to_string())
        .bind(legal.legal_name.as_str())
        .bind(legal.legal_form.as_str())
        .bind(attributes)
        .bind(legal.register.source.as_str())
        .bind(legal.register.reference.as_str())
        .bind(legal.checked_by.as_str())
        .bind(legal.created_at)
        .execute(&mut *tx.tx)
        .await?;
        tx.commit(&audit).await?;
        Ok(())
    }

    async fn legal_person(&self, id: LegalPersonId) -> Result<Option<LegalPerson>, StoreError> {
        let row = sqlx::query(&format!("SELECT {LEGAL_COLUMNS} FROM legal_persons WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(legal_person).transpose()
    }

    async fn legal_person_by_identifier(
        &self,
        identifier: &PersonIdentifier,
    ) -> Result<Option<LegalPerson>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {LEGAL_COLUMNS} FROM legal_persons WHERE identifier = $1"
        ))
        .bind(identifier.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(legal_person).transpose()
    }

    async fn insert_mandate(&self, m: &Mandate, audit: AuditEvent) -> Result<(), StoreError> {
        let verification = super::rows::json_text(&m.verification)?;
        let mut tx = self.begin_audited().await?;
        sqlx::query(&format!(
            "INSERT INTO mandates ({MANDATE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(m.id.to_string())
        .bind(m.legal_person.to_string())
        .bind(m.person.to_string())
        .bind(m.loa.short())
        .bind(m.status.as_str())
        .bind(m.valid_from)
        .bind(m.valid_until)
        .bind(m.delegated_from.map(|d| d.to_string()))
        .bind(m.delegated_by.map(|d| d.to_string()))
        .bind(verification)
        .bind(m.version)
        .bind(m.created_at)
        .execute(&mut *tx.tx)
        .await?;
        tx.commit(&audit).await?;
        Ok(())
    }

    async fn mandate(&self, id: MandateId) -> Result<Option<Mandate>, StoreError> {
        let row = sqlx::query(&format!("SELECT {MANDATE_COLUMNS} FROM mandates WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(mandate).transpose()
    }

    async fn mandates_of_person(&self, person: PersonId) -> Result<Vec<Mandate>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {MANDATE_COLUMNS} FROM mandates WHERE person_id = $1 ORDER BY created_at, id"
        ))
        .bind(person.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(mandate).collect()
    }

    async fn mandates_of_legal_person(&self, legal: LegalPersonId) -> Result<Vec<Mandate>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {MANDATE_COLUMNS} FROM mandates WHERE legal_person_id = $1 ORDER BY created_at, id"
        ))
        .bind(legal.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(mandate).collect()
    }

    async fn set_mandate_status(
        &self,
        id: MandateId,
        version: i64,
        status: MandateStatus,
        audit: AuditEvent,
    ) -> Result<Mandate, StoreError> {
        let mut tx = self.begin_audited().await?;
        let row = sqlx::query(&format!(
            "UPDATE mandates SET status = $3, version = version + 1 WHERE id = $1 AND version = $2 \
             RETURNING {MANDATE_COLUMNS}"
        ))
        .bind(id.to_string())
        .bind(version)
        .bind(status.as_str())
        .fetch_optional(&mut *tx.tx)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::Conflict);
        };
        let updated = mandate(&row)?;
        tx.commit(&audit).await?;
        Ok(updated)
    }
}
