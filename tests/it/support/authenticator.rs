//! A software FIDO2 authenticator for the headless ceremony tests: a P-256 credential key
//! (p256), CTAP2 canonical CBOR written by hand, `none` or `packed` attestation (self or
//! with an `x5c` chain made by rcgen), and knobs to break each part of a response.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{DerSignature, SigningKey};
use p256::pkcs8::DecodePrivateKey as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// An attestation CA and a leaf issued by it (rcgen), with the leaf's key for `sig`.
pub struct AttestationChain {
    /// PEM of the CA certificate (the trust anchor to configure).
    pub ca_pem: String,
    /// DER of the leaf.
    pub leaf_der: Vec<u8>,
    /// The leaf's key.
    pub leaf_key: SigningKey,
}

impl AttestationChain {
    /// A CA and a leaf meeting W3C §8.2.1 (C, O, OU = Authenticator Attestation, CN).
    pub fn new(ca_name: &str) -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, PKCS_ECDSA_P256_SHA256,
        };
        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut ca_params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, "LT");
        dn.push(DnType::OrganizationName, "Test Authenticators");
        dn.push(DnType::CommonName, ca_name);
        ca_params.distinguished_name = dn;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut leaf_params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, "LT");
        dn.push(DnType::OrganizationName, "Test Authenticators");
        dn.push(DnType::OrganizationalUnitName, "Authenticator Attestation");
        dn.push(DnType::CommonName, "Test Key Model 1");
        leaf_params.distinguished_name = dn;
        leaf_params.is_ca = IsCa::ExplicitNoCa;
        let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();
        Self {
            ca_pem: ca.pem(),
            leaf_der: leaf.der().to_vec(),
            leaf_key: SigningKey::from_pkcs8_der(&leaf_key.serialize_der()).unwrap(),
        }
    }
}

/// How the authenticator attests a new credential.
pub enum Attest {
    /// `fmt: none`.
    None,
    /// `packed` with an `x5c` chain.
    Packed(AttestationChain),
}

/// A software authenticator holding one credential.
pub struct SoftKey {
    /// The credential key.
    pub key: SigningKey,
    /// The credential id.
    pub credential_id: Vec<u8>,
    /// The AAGUID it reports.
    pub aaguid: [u8; 16],
    /// The signature counter (incremented before each assertion).
    pub counter: u32,
    /// The user handle given at registration.
    pub user_handle: Vec<u8>,
    /// The origin it reports in client data.
    pub origin: String,
    /// The RP ID it hashes into authenticator data.
    pub rp_id: String,
    /// Set the UV flag.
    pub user_verified: bool,
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).unwrap()
}

fn cbor_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = bytes.len();
    if len < 24 {
        out.push(0x40 | len as u8);
    } else if len < 256 {
        out.extend_from_slice(&[0x58, len as u8]);
    } else {
        out.push(0x59);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    }
    out.extend_from_slice(bytes);
}

fn cbor_text(out: &mut Vec<u8>, text: &str) {
    assert!(text.len() < 24);
    out.push(0x60 | text.len() as u8);
    out.extend_from_slice(text.as_bytes());
}

impl SoftKey {
    /// A new credential for the server at `origin` (RP ID: the origin's host).
    pub fn new(origin: &str) -> Self {
        let host = url::Url::parse(origin).unwrap().host_str().unwrap().to_owned();
        let mut id = vec![0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut id);
        Self {
            key: SigningKey::random(&mut rand::thread_rng()),
            credential_id: id,
            aaguid: [0x11; 16],
            counter: 0,
            user_handle: Vec::new(),
            origin: origin.to_owned(),
            rp_id: host,
            user_verified: true,
        }
    }

    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.verifying_key().to_encoded_point(false);
        let mut out = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20];
        out.extend_from_slice(point.x().unwrap());
        out.extend_from_slice(&[0x22, 0x58, 0x20]);
        out.extend_from_slice(point.y().unwrap());
        out
    }

    fn flags(&self, attested: bool) -> u8 {
        let mut flags = 0x01;
        if self.user_verified {
            flags |= 0x04;
        }
        if attested {
            flags |= 0x40;
        }
        flags
    }

    /// Authenticator data of a registration.
    pub fn registration_auth_data(&self) -> Vec<u8> {
        let mut data = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        data.push(self.flags(true));
        data.extend_from_slice(&self.counter.to_be_bytes());
        data.extend_from_slice(&self.aaguid);
        data.extend_from_slice(&(self.credential_id.len() as u16).to_be_bytes());
        data.extend_from_slice(&self.credential_id);
        data.extend_from_slice(&self.cose_key());
        data
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        json!({"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false})
            .to_string()
            .into_bytes()
    }

    /// The RegistrationResponseJSON answering `options` (`{"publicKey": ...}`).
    pub fn register(&mut self, options: &Value, attest: &Attest) -> Value {
        let pk = &options["publicKey"];
        self.user_handle = unb64(pk["user"]["id"].as_str().unwrap());
        let client_data = self.client_data("webauthn.create", pk["challenge"].as_str().unwrap());
        let auth_data = self.registration_auth_data();
        let mut object = vec![0xa3];
        cbor_text(&mut object, "fmt");
        match attest {
            Attest::None => {
                cbor_text(&mut object, "none");
                cbor_text(&mut object, "attStmt");
                object.push(0xa0);
            }
            Attest::Packed(chain) => {
                cbor_text(&mut object, "packed");
                cbor_text(&mut object, "attStmt");
                let mut signed = auth_data.clone();
                signed.extend_from_slice(&Sha256::digest(&client_data));
                let sig: DerSignature = chain.leaf_key.sign(&signed);
                object.push(0xa3);
                cbor_text(&mut object, "alg");
                object.push(0x26);
                cbor_text(&mut object, "sig");
                cbor_bytes(&mut object, sig.as_bytes());
                cbor_text(&mut object, "x5c");
                object.push(0x81);
                cbor_bytes(&mut object, &chain.leaf_der);
            }
        }
        cbor_text(&mut object, "authData");
        cbor_bytes(&mut object, &auth_data);
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "authenticatorAttachment": "cross-platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64(&client_data),
                "attestationObject": b64(&object),
                "transports": ["usb"],
            }
        })
    }

    /// The AuthenticationResponseJSON answering `options`; the counter goes up first.
    pub fn assert(&mut self, options: &Value) -> Value {
        self.counter += 1;
        self.assert_with_counter(options, self.counter)
    }

    /// An assertion reporting `counter`.
    pub fn assert_with_counter(&self, options: &Value, counter: u32) -> Value {
        let pk = &options["publicKey"];
        let client_data = self.client_data("webauthn.get", pk["challenge"].as_str().unwrap());
        let mut auth_data = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        auth_data.push(self.flags(false));
        auth_data.extend_from_slice(&counter.to_be_bytes());
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let sig: DerSignature = self.key.sign(&signed);
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "authenticatorAttachment": "cross-platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64(&client_data),
                "authenticatorData": b64(&auth_data),
                "signature": b64(sig.as_bytes()),
                "userHandle": b64(&self.user_handle),
            }
        })
    }
}
