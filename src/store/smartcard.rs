//! [`SmartcardRepo`] for [`SqlStore`]: the authentication certificates of `smartcard`
//! means and the CRL numbers of the issuing CA (issue 4, R-MEANS-3, R-ISS-2, R-LOG-1).
//! Certificates are stored as base64 DER text (the same column type on both engines);
//! serials are unique per issuer, enforced by the schema.

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::rows::{corrupt, parse_text, parse_uuid};
use super::sql::SqlStore;
use super::{CardCertificate, SmartcardRepo, StoreError, WithdrawnCertificate};
use crate::audit::AuditEvent;
use crate::domain::ids::MeansId;
use crate::domain::means::MeansStatus;
use crate::domain::UnixTime;

const COLUMNS: &str = "certificate_sha256, means_id, issuer_sha256, serial, certificate, not_before, not_after";
const INSERT: &str = "INSERT INTO smartcard_certificates (certificate_sha256, means_id, issuer_sha256, serial, \
                      certificate, not_before, not_after, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const WITHDRAWN: &str = "SELECT c.serial, c.not_after, m.status, m.updated_at FROM smartcard_certificates c \
                         JOIN means m ON m.id = c.means_id \
                         WHERE c.issuer_sha256 = $1 AND c.not_after > $2 \
                         AND m.status IN ('suspended', 'revoked', 'expired') ORDER BY c.serial";
const BUMP_CRL_NUMBER: &str = "INSERT INTO smartcard_crl_numbers (issuer_sha256, crl_number) VALUES ($1, 1) \
                               ON CONFLICT (issuer_sha256) DO UPDATE SET crl_number = smartcard_crl_numbers.crl_number + 1 \
                               RETURNING crl_number";

fn certificate(row: &AnyRow) -> Result<CardCertificate, StoreError> {
    let text: String = row.try_get("certificate")?;
    Ok(CardCertificate {
        certificate_sha256: row.try_get("certificate_sha256")?,
        means: MeansId(parse_uuid(row, "means_id")?),
        issuer_sha256: row.try_get("issuer_sha256")?,
        serial: row.try_get("serial")?,
        der: STANDARD
            .decode(text)
            .map_err(|e| corrupt("smartcard_certificates.certificate", e))?,
        not_before: row.try_get("not_before")?,
        not_after: row.try_get("not_after")?,
    })
}

#[async_trait]
impl SmartcardRepo for SqlStore {
    async fn insert_card_certificate(&self, cert: &CardCertificate, audit: AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.begin_audited().await?;
        sqlx::query(INSERT)
            .bind(cert.certificate_sha256.as_str())
            .bind(cert.means.to_string())
            .bind(cert.issuer_sha256.as_str())
            .bind(cert.serial.as_str())
            .bind(STANDARD.encode(&cert.der))
            .bind(cert.not_before)
            .bind(cert.not_after)
            .bind(tx.now)
            .execute(&mut *tx.tx)
            .await?;
        tx.commit(&audit).await?;
        Ok(())
    }

    async fn card_certificate(&self, certificate_sha256: &str) -> Result<Option<CardCertificate>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM smartcard_certificates WHERE certificate_sha256 = $1"
        ))
        .bind(certificate_sha256)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(certificate).transpose()
    }

    async fn card_certificates_of(&self, means: MeansId) -> Result<Vec<CardCertificate>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM smartcard_certificates WHERE means_id = $1 ORDER BY created_at DESC, not_before DESC"
        ))
        .bind(means.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(certificate).collect()
    }

    async fn withdrawn_card_certificates(
        &self,
        issuer_sha256: &str,
        now: UnixTime,
    ) -> Result<Vec<WithdrawnCertificate>, StoreError> {
        let rows = sqlx::query(WITHDRAWN)
            .bind(issuer_sha256)
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(WithdrawnCertificate {
                    serial: row.try_get("serial")?,
                    status: parse_text::<MeansStatus>(row, "status")?,
                    since: row.try_get("updated_at")?,
                    not_after: row.try_get("not_after")?,
                })
            })
            .collect()
    }

    async fn next_crl_number(&self, issuer_sha256: &str) -> Result<i64, StoreError> {
        let row = sqlx::query(BUMP_CRL_NUMBER)
            .bind(issuer_sha256)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("crl_number")?)
    }
}
