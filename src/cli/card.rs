//! `eidgate card ...`: the card stand-in (issue 4; DESIGN "Admin API and CLI"). A PKCS#11
//! token plays the holder's smartcard with its own PIN: `init` creates the token and the
//! authentication key on it, `csr` makes the PKCS#10 request signed on the card,
//! `store-certificate` puts the issued certificate on the card, and `sign-challenge`
//! signs `hash(origin) || hash(nonce)` and prints the Web eID authentication token.
//!
//! Run it with its own `SOFTHSM2_CONF` (the card's token directory): SoftHSM only sees
//! tokens that existed when a process loaded it, and the card is not eidgate's token.

use std::path::PathBuf;
use std::sync::Mutex;

use crate::hsm::card::pin;
use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use clap::{Subcommand, ValueEnum};
use serde_json::json;

use crate::config::Config;
use crate::hsm::card::{self, Card, CardCurve};
use crate::smartcard::webeid::{self, Algorithm, TokenJson};

/// `eidgate card ...` subcommands.
#[derive(Debug, Subcommand)]
pub enum CardCommand {
    /// Create the card token and generate the authentication key on it.
    Init {
        /// The card's token label.
        #[arg(long)]
        token: String,
        /// The holder's PIN.
        #[arg(long, env = "EIDGATE_CARD_PIN", hide_env_values = true)]
        pin: String,
        /// The card's SO PIN (random when not given; the stand-in never needs it again).
        #[arg(long, env = "EIDGATE_CARD_SO_PIN", hide_env_values = true)]
        so_pin: Option<String>,
        /// Curve of the authentication key.
        #[arg(long, value_enum, default_value = "p256")]
        curve: CurveArg,
        /// PKCS#11 module (default: `hsm.module`).
        #[arg(long)]
        module: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a PEM CSR for the card key, signed on the card (proof of possession).
    Csr {
        /// The card's token label.
        #[arg(long)]
        token: String,
        /// The holder's PIN.
        #[arg(long, env = "EIDGATE_CARD_PIN", hide_env_values = true)]
        pin: String,
        /// Common name to request (the CA sets the subject anyway).
        #[arg(long, default_value = "eID card")]
        subject: String,
        /// PKCS#11 module (default: `hsm.module`).
        #[arg(long)]
        module: Option<PathBuf>,
    },
    /// Store the issued certificate (PEM file) on the card.
    StoreCertificate {
        /// The card's token label.
        #[arg(long)]
        token: String,
        /// The holder's PIN.
        #[arg(long, env = "EIDGATE_CARD_PIN", hide_env_values = true)]
        pin: String,
        /// PEM file with the certificate.
        file: PathBuf,
        /// PKCS#11 module (default: `hsm.module`).
        #[arg(long)]
        module: Option<PathBuf>,
    },
    /// Sign a challenge and print the Web eID authentication token (JSON).
    SignChallenge {
        /// The card's token label.
        #[arg(long)]
        token: String,
        /// The holder's PIN.
        #[arg(long, env = "EIDGATE_CARD_PIN", hide_env_values = true)]
        pin: String,
        /// The origin the browser shows (scheme://host[:port]).
        #[arg(long)]
        origin: String,
        /// The nonce from `.../smartcard/challenge`.
        #[arg(long)]
        nonce: String,
        /// Algorithm named in the token (ES256 for a P-256 card, ES384 for P-384).
        #[arg(long)]
        algorithm: Option<String>,
        /// PKCS#11 module (default: `hsm.module`).
        #[arg(long)]
        module: Option<PathBuf>,
    },
}

/// Curves of `card init`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CurveArg {
    /// NIST P-256 (ES256).
    P256,
    /// NIST P-384 (ES384).
    P384,
}

/// The card key as the CSR encoder sees it: it signs on the card.
struct CardKey {
    card: Mutex<Card>,
    curve: CardCurve,
    public: Vec<u8>,
}

impl rcgen::RemoteKeyPair for CardKey {
    fn public_key(&self) -> &[u8] {
        &self.public
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let (digest, algorithm) = match self.curve {
            CardCurve::P256 => (Algorithm::ES256.hash(msg), Algorithm::ES256),
            _ => (Algorithm::ES384.hash(msg), Algorithm::ES384),
        };
        let raw = self
            .card
            .lock()
            .map_err(|_| rcgen::Error::RemoteKeyError)?
            .sign_digest(&digest)
            .map_err(|_| rcgen::Error::RemoteKeyError)?;
        let der = match algorithm {
            Algorithm::ES256 => p256::ecdsa::Signature::from_slice(&raw)
                .map_err(|_| rcgen::Error::RemoteKeyError)?
                .to_der()
                .as_bytes()
                .to_vec(),
            _ => p384::ecdsa::Signature::from_slice(&raw)
                .map_err(|_| rcgen::Error::RemoteKeyError)?
                .to_der()
                .as_bytes()
                .to_vec(),
        };
        Ok(der)
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match self.curve {
            CardCurve::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            _ => &rcgen::PKCS_ECDSA_P384_SHA384,
        }
    }
}

/// Runs an `eidgate card` subcommand (blocking).
pub fn run(cmd: CardCommand, config: &Config) -> anyhow::Result<()> {
    let module = |m: Option<PathBuf>| m.unwrap_or_else(|| config.hsm.module.clone());
    match cmd {
        CardCommand::Init {
            token,
            pin: user_pin,
            so_pin,
            curve,
            module: m,
            json,
        } => {
            let so_pin = so_pin.unwrap_or_else(crate::random::token);
            let curve = match curve {
                CurveArg::P256 => CardCurve::P256,
                CurveArg::P384 => CardCurve::P384,
            };
            card::init(&module(m), &token, &pin(&so_pin), &pin(&user_pin), curve)
                .with_context(|| format!("cannot create card token {token}"))?;
            if json {
                println!("{}", json!({"token": token, "key": card::CARD_KEY_LABEL}));
            } else {
                println!("card {token} created with key {}", card::CARD_KEY_LABEL);
            }
        }
        CardCommand::Csr {
            token,
            pin: user_pin,
            subject,
            module: m,
        } => {
            let card = Card::open(&module(m), &token, &pin(&user_pin)).context("cannot open the card")?;
            let (curve, public) = card.public_key()?;
            if curve == CardCurve::P521 {
                bail!("CSRs are made for P-256 and P-384 card keys only");
            }
            let key = rcgen::KeyPair::from_remote(Box::new(CardKey {
                card: Mutex::new(card),
                curve,
                public,
            }))?;
            let mut params = rcgen::CertificateParams::default();
            params.distinguished_name.push(rcgen::DnType::CommonName, subject);
            let csr = params.serialize_request(&key)?;
            print!("{}", csr.pem()?);
        }
        CardCommand::StoreCertificate {
            token,
            pin: user_pin,
            file,
            module: m,
        } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let der = crate::smartcard::pem_certificates(&text)
                .into_iter()
                .next()
                .context("no PEM certificate in the file")?;
            let subject = crate::smartcard::x509::parse(&der)
                .map_err(|e| anyhow::anyhow!("the certificate does not parse: {e}"))?
                .subject()
                .as_raw()
                .to_vec();
            let card = Card::open(&module(m), &token, &pin(&user_pin)).context("cannot open the card")?;
            card.store_certificate(&subject, &der)?;
            println!("certificate stored on card {token}");
        }
        CardCommand::SignChallenge {
            token,
            pin: user_pin,
            origin,
            nonce,
            algorithm,
            module: m,
        } => {
            let card = Card::open(&module(m), &token, &pin(&user_pin)).context("cannot open the card")?;
            let (curve, _) = card.public_key()?;
            let algorithm = match algorithm.as_deref() {
                Some(name) => Algorithm::parse(name).context("unknown algorithm")?,
                None => match curve {
                    CardCurve::P256 => Algorithm::ES256,
                    CardCurve::P384 => Algorithm::ES384,
                    CardCurve::P521 => Algorithm::ES512,
                },
            };
            let certificate = card.certificate()?.context("no certificate on the card")?;
            let digest = algorithm.hash(&webeid::signed_data(algorithm, &origin, &nonce));
            let signature = card.sign_digest(&digest)?;
            let token = TokenJson {
                unverified_certificate: STANDARD.encode(certificate),
                algorithm: algorithm.as_str().to_owned(),
                signature: STANDARD.encode(signature),
                format: "web-eid:1.0".into(),
                app_version: format!("https://eidgate.invalid/card-stand-in/{}", env!("CARGO_PKG_VERSION")),
            };
            println!("{}", serde_json::to_string(&token)?);
        }
    }
    Ok(())
}
