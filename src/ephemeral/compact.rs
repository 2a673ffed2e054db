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
use std::hash::BuildHasher;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use base64::Engine;

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
const INTERNED: u8 = 13;

/// Bit of a stored value's first byte marking a bounded value (a login flow).
pub const BOUNDED: u8 = 0x80;

/// Short strings shared by several live records (a client's id, redirect URI and name,
/// scopes, levels) the table holds at most.
const MAX_STRINGS: usize = 65_536;
/// The longest string shared that way.
const MAX_STRING_LEN: usize = 64;
/// Slots of the filter of strings seen once: a string is shared from its second sighting,
/// so values seen once (a person's identifier, a `state`) are never put in the table.
const SEEN: usize = 4096;

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
    strings: Mutex<Strings>,
}

/// Strings shared by live records, counted: a string leaves the table when the last record
/// that holds it leaves the store ([`Names::release`]).
#[derive(Default)]
struct Strings {
    ids: HashMap<Arc<str>, u32>,
    slots: Vec<Option<(Arc<str>, u32)>>,
    free: Vec<u32>,
    seen: Vec<u64>,
    hasher: std::hash::RandomState,
}

impl Strings {
    /// The number of `s` with one more holder, when it is (or now becomes) shared.
    fn intern(&mut self, s: &str) -> Option<u32> {
        if s.is_empty() || s.len() > MAX_STRING_LEN {
            return None;
        }
        if let Some(&id) = self.ids.get(s) {
            if let Some((_, refs)) = self.slots.get_mut(id as usize).and_then(Option::as_mut) {
                *refs += 1;
                return Some(id);
            }
        }
        let hash = self.hasher.hash_one(s);
        if self.seen.is_empty() {
            self.seen = vec![0; SEEN];
        }
        let slot = &mut self.seen[(hash % SEEN as u64) as usize];
        if *slot != hash {
            *slot = hash;
            return None;
        }
        let id = match self.free.pop() {
            Some(id) => id,
            None if self.slots.len() < MAX_STRINGS => {
                self.slots.push(None);
                u32::try_from(self.slots.len() - 1).ok()?
            }
            None => return None,
        };
        let shared: Arc<str> = s.into();
        self.slots[id as usize] = Some((shared.clone(), 1));
        self.ids.insert(shared, id);
        Some(id)
    }

    fn get(&self, id: u64) -> Option<&str> {
        self.slots.get(usize::try_from(id).ok()?)?.as_ref().map(|(s, _)| &**s)
    }

    fn release(&mut self, id: u64) {
        let Ok(index) = usize::try_from(id) else { return };
        let Some(entry) = self.slots.get_mut(index) else { return };
        let gone = match entry {
            Some((_, refs)) if *refs > 1 => {
                *refs -= 1;
                None
            }
            Some(_) => entry.take(),
            None => None,
        };
        if let Some((s, _)) = gone {
            self.ids.remove(&s);
            self.free.push(index as u32);
        }
    }
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
            let mut strings = self.strings.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(record) = encode::record(self, &mut strings, value) {
                return record;
            }
        }
        let mut out = Vec::with_capacity(value.len() + 1);
        out.push(RAW);
        out.extend_from_slice(value);
        out.into_boxed_slice()
    }

    /// The value `stored` stands for (`None` only for a record this table did not write).
    /// Only for a record still held (not yet [`Names::release`]d).
    pub fn decode(&self, stored: &[u8]) -> Option<Vec<u8>> {
        let (head, rest) = stored.split_first()?;
        match head & !BOUNDED {
            RAW => Some(rest.to_vec()),
            JSON => {
                // Lock order: strings, then names (as in `encode`).
                let strings = self.strings.lock().unwrap_or_else(PoisonError::into_inner);
                let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
                let mut out = Vec::with_capacity(rest.len() * 2);
                let mut reader = Reader { buf: rest };
                table.write_json(&mut reader, &mut out, &strings, 0)?;
                reader.buf.is_empty().then_some(out)
            }
            _ => None,
        }
    }

    /// Gives back the shared strings of a record that leaves the store (once per record
    /// encoded).
    pub fn release(&self, stored: &[u8]) {
        if stored.first().map(|h| h & !BOUNDED) != Some(JSON) {
            return;
        }
        let mut strings = self.strings.lock().unwrap_or_else(PoisonError::into_inner);
        let mut reader = Reader { buf: &stored[1..] };
        let _ = skip(&mut reader, &mut |id| strings.release(id), 0);
    }

    /// How many strings are shared now.
    pub fn shared_strings(&self) -> usize {
        self.strings.lock().unwrap_or_else(PoisonError::into_inner).ids.len()
    }
}

/// Walks a record, calling `interned` with each shared string's number.
fn skip(r: &mut Reader<'_>, interned: &mut impl FnMut(u64), depth: usize) -> Option<()> {
    if depth > 200 {
        return None;
    }
    match r.byte()? {
        NULL | FALSE | TRUE => {}
        UINT | NEG => {
            r.varint()?;
        }
        FLOAT => {
            r.bytes(8)?;
        }
        STR | HEX | BASE64 => {
            let n = r.len()?;
            r.bytes(n)?;
        }
        UUID => {
            r.bytes(16)?;
        }
        PREFIXED_HEX => {
            r.varint()?;
            let n = r.len()?;
            r.bytes(n)?;
        }
        INTERNED => interned(r.varint()?),
        ARRAY => {
            for _ in 0..r.varint()? {
                skip(r, interned, depth + 1)?;
            }
        }
        OBJECT => {
            for _ in 0..r.varint()? {
                let tag = r.varint()?;
                if tag & 1 == 1 {
                    r.bytes(usize::try_from(tag >> 1).ok()?)?;
                }
                skip(r, interned, depth + 1)?;
            }
        }
        _ => return None,
    }
    Some(())
}

impl Table {
    fn write_json(&self, r: &mut Reader<'_>, out: &mut Vec<u8>, strings: &Strings, depth: usize) -> Option<()> {
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
                out.push(b'"');
                write_hex(out, r.bytes(n)?);
                out.push(b'"');
            }
            UUID => {
                let uuid = uuid::Uuid::from_slice(r.bytes(16)?).ok()?;
                let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
                out.push(b'"');
                out.extend_from_slice(uuid.hyphenated().encode_lower(&mut text).as_bytes());
                out.push(b'"');
            }
            BASE64 => {
                let n = r.len()?;
                let bytes = r.bytes(n)?;
                out.push(b'"');
                let start = out.len();
                out.resize(start + base64::encoded_len(n, false)?, 0);
                let written = B64.encode_slice(bytes, &mut out[start..]).ok()?;
                out.truncate(start + written);
                out.push(b'"');
            }
            PREFIXED_HEX => {
                let prefix = self.name(r.varint()?)?;
                let n = r.len()?;
                json_str(out, &format!("{prefix}:{}", hex::encode(r.bytes(n)?)))?;
            }
            INTERNED => json_str(out, strings.get(r.varint()?)?)?,
            ARRAY => {
                let n = r.varint()?;
                out.push(b'[');
                for i in 0..n {
                    if i > 0 {
                        out.push(b',');
                    }
                    self.write_json(r, out, strings, depth + 1)?;
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
                    self.write_json(r, out, strings, depth + 1)?;
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

/// Lowercase hex digits of `bytes` (nothing to escape in JSON).
fn write_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0xf)]);
    }
}

fn json_str(out: &mut Vec<u8>, s: &str) -> Option<()> {
    serde_json::to_writer(&mut *out, s).ok()
}

mod encode;

#[cfg(test)]
mod tests;
