//! Rows ↔ domain values for the SQL store (R-AUTH-3, R-LOG-1, R-REG-1, R-REG-3, R-SEC-3).
//!
//! `domain/` carries no sqlx derives (STYLE §1.4), so this file reads `AnyRow`s column by
//! column and parses the text forms back into ids, levels, kinds and states. A value that
//! does not parse is [`StoreError::Corrupt`], never a default: a means whose status cannot
//! be read must fail closed, not come back as something usable.
//! It must not run queries; `sql.rs` owns the SQL.

use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Acceptance, Credential, IdempotentResponse, MeansRecord, RefreshRecord, StoreError};
use crate::audit::{AuditEvent, AuditRecord};
use crate::domain::client::Client;
use crate::domain::ids::{ClientId, GrantId, MeansId, PersonId, PersonIdentifier};
use crate::domain::loa::Loa;
use crate::domain::means::{EidMeans, MeansKind, MeansStatus};
use crate::domain::operator::Operator;
use crate::domain::person::{NaturalPerson, OptionalAttributes, ProofingRecord};

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

/// Columns read by [`means_record`], in `SELECT` order: [`means_columns!`] and the
/// lifecycle columns.
macro_rules! means_record_columns {
    () => {
        concat!(
            $crate::store::rows::means_columns!(),
            ", registered_by, approved_by, activation_code, activation_expires_at, activation_attempts, \
             revocation_secret, revocation_failures, renews"
        )
    };
}

/// Columns read by [`acceptance`], in `SELECT` order.
macro_rules! acceptance_columns {
    () => {
        "person_id, means_id, terms_version, security_advice_version, accepted_at"
    };
}

/// Columns read by [`idempotent_response`], in `SELECT` order.
macro_rules! idempotent_columns {
    () => {
        "operator_id, idem_key, request_sha256, status, body, created_at"
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

pub(crate) use {
    acceptance_columns, audit_columns, idempotent_columns, means_columns, means_record_columns, person_columns,
    refresh_columns,
};

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

/// A means with its lifecycle data from a row of [`means_record_columns!`]. The PHC
/// strings are returned as stored; verifying them is the caller's job.
pub fn means_record(row: &AnyRow) -> Result<MeansRecord, StoreError> {
    Ok(MeansRecord {
        means: means(row)?,
        registered_by: parse_optional_uuid(row, "registered_by")?.map(PersonId),
        approved_by: parse_optional_uuid(row, "approved_by")?.map(PersonId),
        activation_code: row.try_get("activation_code")?,
        activation_expires_at: row.try_get("activation_expires_at")?,
        activation_attempts: row.try_get("activation_attempts")?,
        revocation_secret: row.try_get("revocation_secret")?,
        revocation_failures: row.try_get("revocation_failures")?,
        renews: parse_optional_uuid(row, "renews")?.map(MeansId),
    })
}

/// An acceptance from a row of [`acceptance_columns!`].
pub fn acceptance(row: &AnyRow) -> Result<Acceptance, StoreError> {
    Ok(Acceptance {
        person: PersonId(parse_uuid(row, "person_id")?),
        means: MeansId(parse_uuid(row, "means_id")?),
        terms_version: row.try_get("terms_version")?,
        security_advice_version: row.try_get("security_advice_version")?,
        accepted_at: row.try_get("accepted_at")?,
    })
}

/// A stored idempotent answer from a row of [`idempotent_columns!`].
pub fn idempotent_response(row: &AnyRow) -> Result<IdempotentResponse, StoreError> {
    let status: i64 = row.try_get("status")?;
    Ok(IdempotentResponse {
        operator: PersonId(parse_uuid(row, "operator_id")?),
        key: row.try_get("idem_key")?,
        request_sha256: row.try_get("request_sha256")?,
        status: u16::try_from(status).map_err(|e| corrupt("idempotency.status", e))?,
        body: row.try_get("body")?,
        created_at: row.try_get("created_at")?,
    })
}

/// An operator from `person_id, roles`. An unknown role is `Corrupt`: roles decide
/// access (R-SEC-3), so a row that does not parse grants nothing.
pub fn operator(row: &AnyRow) -> Result<Operator, StoreError> {
    let roles: String = row.try_get("roles")?;
    Ok(Operator {
        person: PersonId(parse_uuid(row, "person_id")?),
        roles: Operator::parse_roles(&roles).map_err(|e| corrupt("operators.roles", e))?,
    })
}

/// A proofing record from its stored serde form (the `record` column).
pub fn proofing_record(row: &AnyRow) -> Result<ProofingRecord, StoreError> {
    let record: String = row.try_get("record")?;
    serde_json::from_str(&record).map_err(|e| bad_json("proofing_records.record", &e))
}

/// Prefix of a `totp` credential in the `credential` column:
/// `totp1:<base64url sealed seed>:<argon2id PHC>` (a PHC string has no `:`).
const TOTP_PREFIX: &str = "totp1:";

/// The `credential` column: NULL is [`Credential::None`], `totp1:...` a password + TOTP
/// credential, other text the PHC string as stored.
pub fn credential(row: &AnyRow) -> Result<Credential, StoreError> {
    let stored: Option<String> = row.try_get("credential")?;
    let Some(text) = stored else {
        return Ok(Credential::None);
    };
    let Some(rest) = text.strip_prefix(TOTP_PREFIX) else {
        return Ok(Credential::PasswordHash(text));
    };
    let (sealed, phc) = rest
        .split_once(':')
        .ok_or_else(|| StoreError::Corrupt("means.credential: totp credential without a password".into()))?;
    let sealed_seed = URL_SAFE_NO_PAD
        .decode(sealed)
        .map_err(|_| StoreError::Corrupt("means.credential: sealed seed is not base64url".into()))?;
    Ok(Credential::PasswordTotp {
        password_phc: phc.to_owned(),
        sealed_seed,
    })
}

/// The text stored in the `credential` column for a credential (NULL for none).
pub fn credential_text(credential: &Credential) -> Option<String> {
    match credential {
        Credential::PasswordHash(phc) => Some(phc.clone()),
        Credential::PasswordTotp {
            password_phc,
            sealed_seed,
        } => Some(format!(
            "{TOTP_PREFIX}{}:{password_phc}",
            URL_SAFE_NO_PAD.encode(sealed_seed)
        )),
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

pub(super) fn parse_uuid(row: &AnyRow, column: &str) -> Result<uuid::Uuid, StoreError> {
    let text: String = row.try_get(column)?;
    uuid::Uuid::parse_str(&text).map_err(|e| corrupt(column, e))
}

pub(super) fn parse_optional_uuid(row: &AnyRow, column: &str) -> Result<Option<uuid::Uuid>, StoreError> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| uuid::Uuid::parse_str(&t).map_err(|e| corrupt(column, e)))
        .transpose()
}

pub(super) fn parse_text<T: FromStr>(row: &AnyRow, column: &str) -> Result<T, StoreError> {
    let text: String = row.try_get(column)?;
    text.parse::<T>()
        .map_err(|_| StoreError::Corrupt(format!("column {column}: unknown value")))
}

/// Where the JSON broke, without quoting it: the text may hold personal data and the
/// message may end up in a log.
pub(super) fn bad_json(what: &str, error: &serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!(
        "{what}: invalid JSON ({:?}) at line {} column {}",
        error.classify(),
        error.line(),
        error.column()
    ))
}

pub(super) fn corrupt(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {error}"))
}
