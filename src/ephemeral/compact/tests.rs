//! Tests of `compact.rs`.
use super::*;
use serde_json::Value;

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
fn strings_seen_twice_are_shared_until_their_last_record_leaves() {
    let names = Names::default();
    let doc = br#"{"redirect_uri":"https://rp.example/cb","state":"s-1"}"#;
    let first = names.encode(doc);
    assert_eq!(names.shared_strings(), 0, "seen once: written out");
    let second = names.encode(doc);
    let third = names.encode(br#"{"redirect_uri":"https://rp.example/cb","state":"s-2"}"#);
    assert_eq!(names.shared_strings(), 2, "the URI, and s-1 seen twice");
    assert!(second.len() < first.len());
    for (stored, state) in [(&first, "s-1"), (&second, "s-1"), (&third, "s-2")] {
        let back: Value = serde_json::from_slice(&names.decode(stored).unwrap()).unwrap();
        assert_eq!(
            back,
            serde_json::json!({"redirect_uri": "https://rp.example/cb", "state": state})
        );
    }
    names.release(&second);
    assert_eq!(names.shared_strings(), 1, "s-1 had one holder");
    let back: Value = serde_json::from_slice(&names.decode(&third).unwrap()).unwrap();
    assert_eq!(back["redirect_uri"], "https://rp.example/cb");
    names.release(&third);
    names.release(&first);
    assert_eq!(names.shared_strings(), 0);
    // A freed number is reused for another string, which reads back as itself.
    names.encode(br#"{"a":"other value"}"#);
    let other = names.encode(br#"{"a":"other value"}"#);
    assert_eq!(names.shared_strings(), 1);
    let back: Value = serde_json::from_slice(&names.decode(&other).unwrap()).unwrap();
    assert_eq!(back["a"], "other value");
}

#[test]
fn corrupt_records_read_as_absent() {
    let names = Names::default();
    let stored = names.encode(br#"{"a":[1,2,3]}"#);
    assert!(names.decode(&stored[..stored.len() - 1]).is_none());
    assert!(names.decode(&[JSON, 99]).is_none());
    assert!(names.decode(&[]).is_none());
}

#[test]
fn long_arrays_objects_and_strings_keep_their_lengths() {
    let names = Names::default();
    let fields: serde_json::Map<String, Value> = (0..300).map(|i| (format!("f{i}"), Value::from(i))).collect();
    let long_b64 = "QUJD".repeat(100); // 400 characters, 300 bytes: lengths over one varint byte
    let doc = serde_json::json!({
        "items": (0..200).collect::<Vec<u32>>(),
        "fields": fields,
        "b64": long_b64,
        "hex": "ab".repeat(150),
        "ns": format!("pfx:{}", "cd".repeat(90)),
    });
    assert_eq!(round_trip(&names, &doc.to_string()), doc);
}

#[test]
fn a_bad_document_gives_back_the_strings_it_took() {
    let names = Names::default();
    let good = br#"{"redirect_uri":"https://rp.example/cb"}"#;
    names.encode(good);
    let held = names.encode(good);
    assert_eq!(names.shared_strings(), 1);
    // The shared string is taken before the parser finds the trailing garbage.
    for bad in [
        &br#"{"redirect_uri":"https://rp.example/cb"} x"#[..],
        br#"{"redirect_uri":"https://rp.example/cb","a":"#,
        br#"{"redirect_uri":"https://rp.example/cb","a":"https://rp.example/cb",}"#,
    ] {
        let stored = names.encode(bad);
        assert_eq!(stored[0], RAW, "kept as it came");
        assert_eq!(names.decode(&stored).unwrap(), bad);
    }
    names.release(&held);
    assert_eq!(names.shared_strings(), 0, "no holder left behind by the bad documents");
}
