//! Rows ↔ domain values for the SQL store (R-AUTH-3, R-LOG-1).
//!
//! `domain/` carries no sqlx derives (STYLE §1.4), so this file reads `AnyRow`s column by
//! column and parses the text forms back into ids, levels, kinds and states. A value that
//! does not parse is [`StoreError::Corrupt`], never a default: a means whose status cannot
//! be read must fail closed, not come back as something usable.
//! It must not run queries; `sql.rs` owns the SQL.

use std::str::FromStr;

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Credential, RefreshRecord, StoreError};
use crate::audit::{AuditEvent, AuditRecord};
use crate::domain::client::Client;
use crate::domain::ids::{ClientId, GrantId, MeansId, PersonId, PersonIdentifier};
use crate::domain::loa::Loa;
use crate::domain::means::{EidMeans, MeansKind, MeansStatus};
use crate::domain::person::{NaturalPerson, OptionalAttributes};

/// Columns read by [`person`], in `SELECT` order.
macro_rules! person_columns {
    () => {
        "id, identifier_country, identifier_code, given_name, family_name, birthdate, proofing_loa, attributes"
    };
}

/// Columns read by [`means`], in `SELECT` / `RETURNING` order.
macro_rules! means_columns {
    () => {
        "id, holder_id, kind, loa, status, valid_from, valid_until, version"
    };
}

/// Columns read by [`refresh`], in `SELECT` / `RETURNING` order.
macro_rules! refresh_columns {
    () => {
        "token_sha256, grant_id, client_id, person_id, means_id, grant_data, created_at, expires_at"
    };
}

/// Columns read by [`audit_record`], in `SELECT` order.
macro_rules! audit_columns {
    () => {
        "seq, time, event_type, actor, subject, data, prev_hash, hash"
    };
}

pub(crate) use {audit_columns, means_columns, person_columns, refresh_columns};

/// A client from its stored serde form.
pub fn client(row: &AnyRow) -> Result<Client, StoreError> {
    let config: String = row.try_get("config")?;
    serde_json::from_str(&config).map_err(|e| bad_json("clients.config", &e))
}

/// A natural person from a row of [`person_columns!`].
pub fn person(row: &AnyRow) -> Result<NaturalPerson, StoreError> {
    let country: String = row.try_get("identifier_country")?;
    let code: String = row.try_get("identifier_code")?;
    let attributes: String = row.try_get("attributes")?;
    Ok(NaturalPerson {
        id: PersonId(parse_uuid(row, "id")?),
        identifier: PersonIdentifier::new(&country, &code).map_err(|e| corrupt("persons.identifier", e))?,
        given_name: row.try_get("given_name")?,
        family_name: row.try_get("family_name")?,
        birthdate: row.try_get("birthdate")?,
        proofing_loa: parse_text::<Loa>(row, "proofing_loa")?,
        attributes: serde_json::from_str::<OptionalAttributes>(&attributes)
            .map_err(|e| bad_json("persons.attributes", &e))?,
    })
}

/// An eID means from a row of [`means_columns!`].
pub fn means(row: &AnyRow) -> Result<EidMeans, StoreError> {
    Ok(EidMeans {
        id: MeansId(parse_uuid(row, "id")?),
        holder: PersonId(parse_uuid(row, "holder_id")?),
        kind: parse_text::<MeansKind>(row, "kind")?,
        loa: parse_text::<Loa>(row, "loa")?,
        status: parse_text::<MeansStatus>(row, "status")?,
        valid_from: row.try_get("valid_from")?,
        valid_until: row.try_get("valid_until")?,
        version: row.try_get("version")?,
    })
}

/// The `credential` column: NULL is [`Credential::None`], text is the PHC string as stored.
pub fn credential(row: &AnyRow) -> Result<Credential, StoreError> {
    let stored: Option<String> = row.try_get("credential")?;
    Ok(stored.map_or(Credential::None, Credential::PasswordHash))
}

/// The text stored in the `credential` column for a credential (NULL for none).
pub fn credential_text(credential: &Credential) -> Option<&str> {
    match credential {
        Credential::PasswordHash(phc) => Some(phc),
        Credential::None => None,
    }
}

/// A refresh-token record from a row of [`refresh_columns!`].
pub fn refresh(row: &AnyRow) -> Result<RefreshRecord, StoreError> {
    let client_id: String = row.try_get("client_id")?;
    let grant_data: String = row.try_get("grant_data")?;
    Ok(RefreshRecord {
        token_sha256: row.try_get("token_sha256")?,
        grant_id: GrantId(parse_uuid(row, "grant_id")?),
        client_id: ClientId::from_str(&client_id).map_err(|e| corrupt("refresh_tokens.client_id", e))?,
        person_id: PersonId(parse_uuid(row, "person_id")?),
        means_id: MeansId(parse_uuid(row, "means_id")?),
        grant_data: serde_json::from_str(&grant_data).map_err(|e| bad_json("refresh_tokens.grant_data", &e))?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

/// An audit record from a row of [`audit_columns!`]. The hashes are returned as stored;
/// checking them is `audit::verify_run`'s job.
pub fn audit_record(row: &AnyRow) -> Result<AuditRecord, StoreError> {
    let data: String = row.try_get("data")?;
    Ok(AuditRecord {
        seq: row.try_get("seq")?,
        time: row.try_get("time")?,
        event: AuditEvent {
            event_type: row.try_get("event_type")?,
            actor: row.try_get("actor")?,
            subject: row.try_get("subject")?,
            data: serde_json::from_str(&data).map_err(|e| bad_json("audit_log.data", &e))?,
        },
        prev_hash: hash32(row.try_get("prev_hash")?)?,
        hash: hash32(row.try_get("hash")?)?,
    })
}

/// A stored SHA-256 value (BLOB / BYTEA) as an array.
pub fn hash32(bytes: Vec<u8>) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes).map_err(|b| StoreError::Corrupt(format!("hash of {} bytes, expected 32", b.len())))
}

/// A JSON value as the text stored in a JSON column.
pub fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, StoreError> {
    // Only domain values with string keys are stored, so this cannot fail in practice;
    // if it ever does, nothing is written.
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("cannot encode JSON: {e}")))
}

fn parse_uuid(row: &AnyRow, column: &str) -> Result<uuid::Uuid, StoreError> {
    let text: String = row.try_get(column)?;
    uuid::Uuid::parse_str(&text).map_err(|e| corrupt(column, e))
}

fn parse_text<T: FromStr>(row: &AnyRow, column: &str) -> Result<T, StoreError> {
    let text: String = row.try_get(column)?;
    text.parse::<T>()
        .map_err(|_| StoreError::Corrupt(format!("column {column}: unknown value")))
}

/// Where the JSON broke, without quoting it: the text may hold personal data and the
/// message may end up in a log.
fn bad_json(what: &str, error: &serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!(
        "{what}: invalid JSON ({:?}) at line {} column {}",
        error.classify(),
        error.line(),
        error.column()
    ))
}

fn corrupt(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {error}"))
}
