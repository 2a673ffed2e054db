-- eidgate schema, version 8 (PostgreSQL): smartcard authentication certificates (issue 4,
-- R-MEANS-3, R-ISS-2, R-LOG-1). Column names are identical in
-- migrations/sqlite/0008_smartcard.sql.
--
-- One row per certificate bound to a `smartcard` means: issued by our CA from the card's
-- CSR, or imported (a card from a trusted external CA maps to its means by certificate).
-- Serials are unique per issuer; the same certificate never maps to two means.
CREATE TABLE smartcard_certificates (
    certificate_sha256 TEXT    NOT NULL PRIMARY KEY,
    means_id           TEXT    NOT NULL REFERENCES means (id),
    issuer_sha256      TEXT    NOT NULL,
    serial             TEXT    NOT NULL,
    certificate        TEXT    NOT NULL,
    not_before         BIGINT  NOT NULL,
    not_after          BIGINT  NOT NULL,
    created_at         BIGINT  NOT NULL,
    UNIQUE (issuer_sha256, serial)
);
CREATE INDEX smartcard_certificates_means_id ON smartcard_certificates (means_id);

-- The CRL number of each CA key: RFC 5280 §5.2.3 wants it to grow with every CRL.
CREATE TABLE smartcard_crl_numbers (
    issuer_sha256 TEXT    NOT NULL PRIMARY KEY,
    crl_number    BIGINT  NOT NULL
);
