//! The external witness of the signed chain (R-LOG-2, R-SEC-6; issue 17).
//!
//! Every checkpoint and prune anchor is written to the external sink (the JSON-lines file,
//! and the syslog collector where configured) the moment it is signed and stored, as one
//! line in the sink's usual shape with the full signed value under `data`. Someone who can
//! write the database cannot reach the sink (keep it on another host: syslog), so
//! `eidgate audit verify` reads it back and compares: a checkpoint the sink saw that the
//! database lost or changed names the seq where the log was cut or rewritten, even when
//! every checkpoint row was deleted and the records were re-chained.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::json;

use super::{Checkpoint, CheckpointKind, Link};

/// `event_type` of a witnessed checkpoint line.
pub const CHECKPOINT_LINE: &str = "audit.checkpoint";
/// `event_type` of a witnessed prune anchor line.
pub const ANCHOR_LINE: &str = "audit.prune_anchor";

/// The sink line of a signed checkpoint or anchor.
pub fn line(cp: &Checkpoint) -> serde_json::Value {
    let event_type = match cp.kind {
        CheckpointKind::Checkpoint => CHECKPOINT_LINE,
        CheckpointKind::Prune => ANCHOR_LINE,
    };
    let mut data = json!({
        "kind": cp.kind.as_str(),
        "seq": cp.seq,
        "hash": hex::encode(cp.hash),
        "time": cp.time,
        "kid": cp.kid,
        "signature": URL_SAFE_NO_PAD.encode(&cp.signature),
    });
    if let (Some(link), Some(obj)) = (cp.link, data.as_object_mut()) {
        obj.insert("position".into(), json!(link.position));
        obj.insert("records".into(), json!(link.records));
        obj.insert("prev_seq".into(), json!(link.prev_seq));
        obj.insert("prev".into(), json!(hex::encode(link.prev)));
    }
    json!({
        "seq": cp.seq,
        "time": super::rfc3339(cp.time),
        "event_type": event_type,
        "actor": "system",
        "subject": "audit",
        "data": data,
    })
}

fn hash32(v: &serde_json::Value) -> Option<[u8; 32]> {
    hex::decode(v.as_str()?).ok()?.try_into().ok()
}

/// The checkpoint a sink line witnesses; `None` for the other lines; `Err` for a witness
/// line that does not parse.
pub fn parse(line: &serde_json::Value) -> Option<Result<Checkpoint, String>> {
    let event_type = line.get("event_type")?.as_str()?;
    if event_type != CHECKPOINT_LINE && event_type != ANCHOR_LINE {
        return None;
    }
    let d = &line["data"];
    let parsed = (|| {
        let link = match d.get("position") {
            None => None,
            Some(position) => Some(Link {
                position: position.as_i64()?,
                records: d["records"].as_i64()?,
                prev_seq: d["prev_seq"].as_i64()?,
                prev: hash32(&d["prev"])?,
            }),
        };
        Some(Checkpoint {
            kind: CheckpointKind::parse(d["kind"].as_str()?)?,
            seq: d["seq"].as_i64()?,
            hash: hash32(&d["hash"])?,
            time: d["time"].as_i64()?,
            kid: d["kid"].as_str()?.to_owned(),
            signature: URL_SAFE_NO_PAD.decode(d["signature"].as_str()?).ok()?,
            link,
        })
    })();
    Some(parsed.ok_or_else(|| format!("malformed {event_type} line")))
}

/// Every checkpoint and anchor witnessed in the sink file at `path`, in the order written.
/// A missing file witnesses nothing; an unreadable one, or a witness line that does not
/// parse, is an error (the sink is evidence: it is not skipped silently).
pub fn read(path: &Path) -> Result<Vec<Checkpoint>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut out = Vec::new();
    for (n, text) in text.lines().enumerate() {
        if text.trim().is_empty() {
            continue;
        }
        // Lines that are not JSON are not ours to judge (a syslog relay may add some).
        let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
            continue;
        };
        match parse(&value) {
            None => {}
            Some(Ok(cp)) => out.push(cp),
            Some(Err(why)) => return Err(format!("{} line {}: {why}", path.display(), n + 1)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_log_2_a_witness_line_reads_back_as_the_signed_checkpoint() {
        let cp = Checkpoint {
            kind: CheckpointKind::Checkpoint,
            seq: 9,
            hash: [7; 32],
            time: 1_700_000_000,
            kid: "k".into(),
            signature: vec![1, 2, 3],
            link: Some(Link {
                position: 2,
                records: 9,
                prev_seq: 4,
                prev: [5; 32],
            }),
        };
        let line = line(&cp);
        assert_eq!(line["event_type"], CHECKPOINT_LINE);
        assert_eq!(parse(&line), Some(Ok(cp.clone())));
        let unchained = Checkpoint { link: None, ..cp };
        assert_eq!(parse(&super::line(&unchained)), Some(Ok(unchained)));
        assert_eq!(parse(&json!({"event_type": "login.failure", "seq": 1})), None);
        let mut broken = line.clone();
        broken["data"]["hash"] = json!("zz");
        assert!(matches!(parse(&broken), Some(Err(_))));
    }
}
