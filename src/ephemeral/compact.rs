//! Compact records of the memory store (issue 22: at most 512 bytes per live code or
//! open login flow).
//!
//! - **Keys** are kept as their SHA-256 (32 bytes inline in the map and the expiry
//!   index, no heap allocation): most keys are already `<prefix>:<SHA-256 in hex>`.
//! - **Values** that are JSON objects (codes, flows, grants, sessions) are kept as a
//!   binary record: field names by their number in a table shared by the store, and
//!   strings that are lowercase hex, canonical UUIDs or canonical unpadded base64url as
//!   their bytes. Reading writes the JSON back (same document, field order aside: every
//!   reader deserializes it); any other value is kept as it came.
//!
//! The name table never shrinks and is bounded ([`MAX_NAMES`]); once full, new names are
//! written out in the record. Every encoding is checked to give back the exact string
//! (hex in lowercase, UUIDs hyphenated in lowercase, base64 re-encoded identically).

use std::collections::HashMap;
use std::io::Write;
use std::sync::{PoisonError, RwLock};

use base64::Engine;
use serde_json::Value;

/// Names (JSON field names, key and string prefixes) the table holds at most.
pub const MAX_NAMES: usize = 4096;
/// The longest name the table takes.
const MAX_NAME_LEN: usize = 64;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

// First byte of a stored value.
pub(super) const RAW: u8 = 0;
const JSON: u8 = 1;
// Tags inside a JSON record.
const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const UINT: u8 = 3;
const NEG: u8 = 4;
const FLOAT: u8 = 5;
const STR: u8 = 6;
const HEX: u8 = 7;
const UUID: u8 = 8;
const BASE64: u8 = 9;
const PREFIXED_HEX: u8 = 10;
const ARRAY: u8 = 11;
const OBJECT: u8 = 12;

/// A key of the memory store: the SHA-256 of the key string (32 bytes inline in the map
/// and the expiry index, whatever the key; distinct keys cannot share it).
pub type Key = [u8; 32];

/// The [`Key`] of `key`.
pub fn key(key: &str) -> Key {
    use sha2::Digest;
    sha2::Sha256::digest(key.as_bytes()).into()
}

/// The name table shared by every record of one store.
#[derive(Default)]
pub struct Names {
    table: RwLock<Table>,
}

#[derive(Default)]
struct Table {
    ids: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Names {
    /// The number of `name`; with `assign`, given one if the table has room.
    fn id(&self, name: &str, assign: bool) -> Option<u32> {
        if let Some(id) = self.table.read().unwrap_or_else(PoisonError::into_inner).ids.get(name) {
            return Some(*id);
        }
        if !assign || name.len() > MAX_NAME_LEN {
            return None;
        }
        let mut table = self.table.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(id) = table.ids.get(name) {
            return Some(*id);
        }
        if table.names.len() >= MAX_NAMES {
            return None;
        }
        let id = u32::try_from(table.names.len()).ok()?;
        table.names.push(name.into());
        table.ids.insert(name.into(), id);
        Some(id)
    }

    /// How many names the table holds.
    pub fn len(&self) -> usize {
        self.table.read().unwrap_or_else(PoisonError::into_inner).names.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The stored form of `value`.
    pub fn encode(&self, value: &[u8]) -> Box<[u8]> {
        if value.first() == Some(&b'{') {
            if let Ok(json) = serde_json::from_slice::<Value>(value) {
                let mut out = Vec::with_capacity(value.len() / 2);
                out.push(JSON);
                self.write_value(&mut out, &json);
                return out.into_boxed_slice();
            }
        }
        let mut out = Vec::with_capacity(value.len() + 1);
        out.push(RAW);
        out.extend_from_slice(value);
        out.into_boxed_slice()
    }

    /// The value `stored` stands for (`None` only for a record this table did not write).
    pub fn decode(&self, stored: &[u8]) -> Option<Vec<u8>> {
        match stored.split_first()? {
            (&RAW, rest) => Some(rest.to_vec()),
            (&JSON, rest) => {
                let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
                let mut out = Vec::with_capacity(rest.len() * 2);
                let mut reader = Reader { buf: rest };
                table.write_json(&mut reader, &mut out, 0)?;
                reader.buf.is_empty().then_some(out)
            }
            _ => None,
        }
    }

    fn write_value(&self, out: &mut Vec<u8>, value: &Value) {
        match value {
            Value::Null => out.push(NULL),
            Value::Bool(false) => out.push(FALSE),
            Value::Bool(true) => out.push(TRUE),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    out.push(UINT);
                    varint(out, u);
                } else if let Some(i) = n.as_i64() {
                    out.push(NEG);
                    varint(out, !(i as u64));
                } else {
                    out.push(FLOAT);
                    out.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_le_bytes());
                }
            }
            Value::String(s) => self.write_str(out, s),
            Value::Array(items) => {
                out.push(ARRAY);
                varint(out, items.len() as u64);
                for item in items {
                    self.write_value(out, item);
                }
            }
            Value::Object(map) => {
                out.push(OBJECT);
                varint(out, map.len() as u64);
                for (name, item) in map {
                    match self.id(name, true) {
                        Some(id) => varint(out, u64::from(id) << 1),
                        None => {
                            varint(out, ((name.len() as u64) << 1) | 1);
                            out.extend_from_slice(name.as_bytes());
                        }
                    }
                    self.write_value(out, item);
                }
            }
        }
    }

    fn write_str(&self, out: &mut Vec<u8>, s: &str) {
        if let Some(bytes) = hex_bytes(s) {
            out.push(HEX);
            varint(out, bytes.len() as u64);
            out.extend_from_slice(&bytes);
        } else if let Some(uuid) = canonical_uuid(s) {
            out.push(UUID);
            out.extend_from_slice(uuid.as_bytes());
        } else if let Some(bytes) = canonical_base64(s) {
            out.push(BASE64);
            varint(out, bytes.len() as u64);
            out.extend_from_slice(&bytes);
        } else if let Some((id, bytes)) = s
            .rsplit_once(':')
            .and_then(|(prefix, hex)| Some((self.id(prefix, true)?, hex_bytes(hex)?)))
        {
            out.push(PREFIXED_HEX);
            varint(out, u64::from(id));
            varint(out, bytes.len() as u64);
            out.extend_from_slice(&bytes);
        } else {
            out.push(STR);
            varint(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
    }
}

impl Table {
    fn write_json(&self, r: &mut Reader<'_>, out: &mut Vec<u8>, depth: usize) -> Option<()> {
        // Records are written from parsed JSON, whose nesting serde_json limits to 128.
        if depth > 200 {
            return None;
        }
        match r.byte()? {
            NULL => out.extend_from_slice(b"null"),
            FALSE => out.extend_from_slice(b"false"),
            TRUE => out.extend_from_slice(b"true"),
            UINT => write!(out, "{}", r.varint()?).ok()?,
            NEG => write!(out, "{}", !(r.varint()?) as i64).ok()?,
            FLOAT => {
                let f = f64::from_le_bytes(r.bytes(8)?.try_into().ok()?);
                serde_json::to_writer(&mut *out, &f).ok()?;
            }
            STR => {
                let n = r.len()?;
                json_str(out, std::str::from_utf8(r.bytes(n)?).ok()?)?;
            }
            HEX => {
                let n = r.len()?;
                json_str(out, &hex::encode(r.bytes(n)?))?;
            }
            UUID => {
                let uuid = uuid::Uuid::from_slice(r.bytes(16)?).ok()?;
                json_str(out, &uuid.hyphenated().to_string())?;
            }
            BASE64 => {
                let n = r.len()?;
                json_str(out, &B64.encode(r.bytes(n)?))?;
            }
            PREFIXED_HEX => {
                let prefix = self.name(r.varint()?)?;
                let n = r.len()?;
                json_str(out, &format!("{prefix}:{}", hex::encode(r.bytes(n)?)))?;
            }
            ARRAY => {
                let n = r.varint()?;
                out.push(b'[');
                for i in 0..n {
                    if i > 0 {
                        out.push(b',');
                    }
                    self.write_json(r, out, depth + 1)?;
                }
                out.push(b']');
            }
            OBJECT => {
                let n = r.varint()?;
                out.push(b'{');
                for i in 0..n {
                    if i > 0 {
                        out.push(b',');
                    }
                    let tag = r.varint()?;
                    if tag & 1 == 0 {
                        json_str(out, self.name(tag >> 1)?)?;
                    } else {
                        let len = usize::try_from(tag >> 1).ok()?;
                        json_str(out, std::str::from_utf8(r.bytes(len)?).ok()?)?;
                    }
                    out.push(b':');
                    self.write_json(r, out, depth + 1)?;
                }
                out.push(b'}');
            }
            _ => return None,
        }
        Some(())
    }

    fn name(&self, id: u64) -> Option<&str> {
        self.names.get(usize::try_from(id).ok()?).map(|n| &**n)
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.buf.split_first()?;
        self.buf = rest;
        Some(*b)
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.buf.len() {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn len(&mut self) -> Option<usize> {
        usize::try_from(self.varint()?).ok()
    }
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn json_str(out: &mut Vec<u8>, s: &str) -> Option<()> {
    serde_json::to_writer(&mut *out, s).ok()
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The bytes of a lowercase hex string of 16 or more digits.
fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    if s.len() < 16 || s.len() % 2 != 0 || !is_lower_hex(s) {
        return None;
    }
    hex::decode(s).ok()
}

fn canonical_uuid(s: &str) -> Option<uuid::Uuid> {
    if s.len() != 36 {
        return None;
    }
    let uuid = uuid::Uuid::try_parse(s).ok()?;
    (uuid.hyphenated().to_string() == s).then_some(uuid)
}

/// The bytes of unpadded base64url of 16 or more characters that encodes back to `s`.
fn canonical_base64(s: &str) -> Option<Vec<u8>> {
    if s.len() < 16 || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return None;
    }
    let bytes = B64.decode(s).ok()?;
    (B64.encode(&bytes) == s).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(names: &Names, json: &str) -> Value {
        let stored = names.encode(json.as_bytes());
        let back = names.decode(&stored).unwrap();
        serde_json::from_slice(&back).unwrap()
    }

    #[test]
    fn json_records_come_back_as_the_same_document() {
        let names = Names::default();
        let doc = r#"{"id":"Qk9PTS1ib29tLWJvb20tYm9vbS1ib29tLWJvb20tYm9vbS0","browser":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "person":"0b6f1c9e-3f43-4a8e-9d52-1b7c2d4e5f60","upper":"0B6F1C9E-3F43-4A8E-9D52-1B7C2D4E5F60","hex_upper":"9F86D081884C7D65",
            "opened_from":"flows:addr:9f86d081884c7d659a2feaa0c55ad015","b64_bad":"QQ","short":"abc","esc":"a\"b\\c\u00e9\n",
            "n":[0,1,127,128,18446744073709551615,-1,-9223372036854775808,1.5,-0.25,1e300],"t":true,"f":false,"z":null,
            "nested":{"a":[{"b":[]},{}],"":"empty name"},"ragged":"AAAAAAAAAAAAAAAAAAAAAB"}"#;
        let expected: Value = serde_json::from_str(doc).unwrap();
        assert_eq!(round_trip(&names, doc), expected);
        // A second record reuses the names.
        let before = names.len();
        assert_eq!(round_trip(&names, doc), expected);
        assert_eq!(names.len(), before);
    }

    #[test]
    fn records_are_smaller_than_their_json() {
        let names = Names::default();
        let doc = br#"{"code_challenge":"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM","sub":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","person":"0b6f1c9e-3f43-4a8e-9d52-1b7c2d4e5f60"}"#;
        let stored = names.encode(doc);
        assert!(stored.len() < 100, "{} bytes", stored.len());
    }

    #[test]
    fn other_values_are_kept_as_they_came() {
        let names = Names::default();
        for v in [
            &b"1"[..],
            b"",
            b"{not json",
            &7i64.to_be_bytes(),
            b"\"a string\"",
            b" {}",
        ] {
            assert_eq!(names.decode(&names.encode(v)).unwrap(), v);
        }
    }

    #[test]
    fn names_beyond_the_table_are_written_out() {
        let names = Names::default();
        for i in 0..MAX_NAMES {
            names.id(&format!("n{i}"), true);
        }
        assert_eq!(names.len(), MAX_NAMES);
        assert_eq!(
            round_trip(&names, r#"{"brand_new":1,"x:00112233445566778899":2}"#),
            serde_json::json!({"brand_new": 1, "x:00112233445566778899": 2})
        );
        assert_eq!(
            round_trip(&names, r#"{"a":"new-prefix:00112233445566778899"}"#),
            serde_json::json!({"a": "new-prefix:00112233445566778899"})
        );
        assert_eq!(names.len(), MAX_NAMES);
    }

    #[test]
    fn corrupt_records_read_as_absent() {
        let names = Names::default();
        let stored = names.encode(br#"{"a":[1,2,3]}"#);
        assert!(names.decode(&stored[..stored.len() - 1]).is_none());
        assert!(names.decode(&[JSON, 99]).is_none());
        assert!(names.decode(&[]).is_none());
    }
}
