//! Writing a record straight from the JSON text (issue 22): the document is read once by
//! serde_json's parser and each value written as it is read, with no `serde_json::Value`
//! tree in between (that tree's maps, strings and their release were a sixth of the
//! runtime threads' work on a code exchange). The record is the same as the tree gave,
//! field order aside (the tree sorted the names).

use std::fmt;

use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::{
    varint, Names, Strings, ARRAY, B64, BASE64, FALSE, FLOAT, HEX, INTERNED, JSON, NEG, NULL, OBJECT, PREFIXED_HEX,
    STR, TRUE, UINT, UUID,
};

/// A record of the JSON document `value`, or `None` when it is not one JSON document (then
/// nothing was counted: every shared string the partial record took is given back).
pub(super) fn record(names: &Names, strings: &mut Strings, value: &[u8]) -> Option<Box<[u8]>> {
    let mut out = Vec::with_capacity(value.len() / 2);
    out.push(JSON);
    let mut sink = Sink {
        names,
        strings,
        out: &mut out,
        interned: Vec::new(),
    };
    let mut parser = serde_json::Deserializer::from_slice(value);
    let read = (&mut sink).deserialize(&mut parser).and_then(|()| parser.end());
    if read.is_err() {
        for id in sink.interned {
            sink.strings.release(u64::from(id));
        }
        return None;
    }
    // An allocation of the record's own size (shrinking `out` in place may keep its larger
    // block).
    Some(Box::from(out.as_slice()))
}

struct Sink<'a> {
    names: &'a Names,
    strings: &'a mut Strings,
    out: &'a mut Vec<u8>,
    /// The shared strings this record took, to give back if the document turns out bad.
    interned: Vec<u32>,
}

impl Sink<'_> {
    fn str(&mut self, s: &str) {
        let out = &mut *self.out;
        if is_hex_run(s) {
            out.push(HEX);
            put_hex_bytes(out, s);
        } else if let Some(uuid) = canonical_uuid(s) {
            out.push(UUID);
            out.extend_from_slice(uuid.as_bytes());
        } else if put_base64(out, s) {
        } else if let Some((id, hex)) = s
            .rsplit_once(':')
            .filter(|(_, hex)| is_hex_run(hex))
            .and_then(|(prefix, hex)| Some((self.names.id(prefix, true)?, hex)))
        {
            out.push(PREFIXED_HEX);
            varint(out, u64::from(id));
            put_hex_bytes(out, hex);
        } else if let Some(id) = self.strings.intern(s) {
            self.interned.push(id);
            out.push(INTERNED);
            varint(out, u64::from(id));
        } else {
            out.push(STR);
            varint(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
    }

    /// Opens an array or object: its tag and one byte for its length (most are short).
    fn open(&mut self, tag: u8) -> usize {
        self.out.push(tag);
        self.out.push(0);
        self.out.len() - 1
    }

    /// Writes the length `n` of what [`Sink::open`] opened at `at`.
    fn close(&mut self, at: usize, n: u64) {
        set_length(self.out, at, n);
    }
}

impl<'de> DeserializeSeed<'de> for &mut Sink<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for &mut Sink<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.out.push(NULL);
        Ok(())
    }

    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.out.push(if v { TRUE } else { FALSE });
        Ok(())
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.out.push(UINT);
        varint(self.out, v);
        Ok(())
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        match u64::try_from(v) {
            Ok(u) => self.visit_u64(u),
            Err(_) => {
                self.out.push(NEG);
                varint(self.out, !(v as u64));
                Ok(())
            }
        }
    }

    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.out.push(FLOAT);
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.str(v);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let at = self.open(ARRAY);
        let mut n = 0u64;
        while seq.next_element_seed(&mut *self)?.is_some() {
            n += 1;
        }
        self.close(at, n);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let at = self.open(OBJECT);
        let mut n = 0u64;
        while map.next_key_seed(Name(&mut *self))?.is_some() {
            map.next_value_seed(&mut *self)?;
            n += 1;
        }
        self.close(at, n);
        Ok(())
    }
}

/// A field name: its number in the table, or written out (`len << 1 | 1`, then the name).
struct Name<'s, 'a>(&'s mut Sink<'a>);

impl<'de> DeserializeSeed<'de> for Name<'_, '_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Name<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E>(self, name: &str) -> Result<(), E> {
        let sink = self.0;
        match sink.names.id(name, true) {
            Some(id) => varint(sink.out, u64::from(id) << 1),
            None => {
                varint(sink.out, ((name.len() as u64) << 1) | 1);
                sink.out.extend_from_slice(name.as_bytes());
            }
        }
        Ok(())
    }
}

/// Lowercase hex of 16 or more digits, whole bytes.
fn is_hex_run(s: &str) -> bool {
    s.len() >= 16 && s.len() % 2 == 0 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The length and bytes of `hex` (a checked [`is_hex_run`]).
fn put_hex_bytes(out: &mut Vec<u8>, hex: &str) {
    let digit = |b: u8| if b.is_ascii_digit() { b - b'0' } else { b - b'a' + 10 };
    varint(out, (hex.len() / 2) as u64);
    out.extend(hex.as_bytes().chunks_exact(2).map(|p| digit(p[0]) << 4 | digit(p[1])));
}

/// `s` as a UUID when it is one in canonical form (hyphenated, lowercase).
fn canonical_uuid(s: &str) -> Option<uuid::Uuid> {
    if s.len() != 36 {
        return None;
    }
    let uuid = uuid::Uuid::try_parse(s).ok()?;
    let mut back = [0u8; uuid::fmt::Hyphenated::LENGTH];
    (uuid.hyphenated().encode_lower(&mut back).as_bytes() == s.as_bytes()).then_some(uuid)
}

/// [`BASE64`], the length and the bytes of `s` when it is unpadded base64url of 16 or
/// more characters that encodes back to exactly `s`.
fn put_base64(out: &mut Vec<u8>, s: &str) -> bool {
    use base64::Engine as _;
    if s.len() < 16 || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return false;
    }
    let mark = out.len();
    out.push(BASE64);
    out.push(0);
    let start = out.len();
    if B64.decode_vec(s, out).is_err() || !encodes_back(&out[start..], s) {
        out.truncate(mark);
        return false;
    }
    set_length(out, start - 1, (out.len() - start) as u64);
    true
}

/// Writes `n` as the varint at `at`, where one byte was left for it (most lengths fit;
/// a longer one moves what follows).
fn set_length(out: &mut Vec<u8>, at: usize, n: u64) {
    if n < 0x80 {
        out[at] = n as u8;
    } else {
        let mut length = Vec::with_capacity(10);
        varint(&mut length, n);
        out.splice(at..=at, length);
    }
}

/// Whether `bytes` encode (unpadded base64url) to exactly `s`, in chunks on the stack.
fn encodes_back(bytes: &[u8], s: &str) -> bool {
    use base64::Engine as _;
    let mut buf = [0u8; 256];
    let mut rest = s.as_bytes();
    for chunk in bytes.chunks(192) {
        let Ok(n) = B64.encode_slice(chunk, &mut buf) else {
            return false;
        };
        let Some((head, tail)) = rest.split_at_checked(n) else {
            return false;
        };
        if head != &buf[..n] {
            return false;
        }
        rest = tail;
    }
    rest.is_empty()
}
