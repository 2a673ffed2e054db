//! Strict reading of request bodies: a struct only from a JSON object.
//!
//! A derived `Deserialize` of a struct also accepts a JSON array of its fields in order
//! (`["in_person", "…"]` for `{"method": …, "evidence": …}`), which no client of ours
//! sends and which hides mistakes. [`object`] refuses anything but a map; request bodies
//! are read through it at the top (`web::problem::parse_json`) and nested structs carry
//! `#[serde(deserialize_with = "crate::domain::wire::object")]`.

use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

/// Deserializes `T` from a map (JSON object) only; a sequence or a scalar is an error.
pub fn object<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct MapOnly<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for MapOnly<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(MapAccessDeserializer::new(map))
        }
    }
    deserializer.deserialize_map(MapOnly(std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        a: String,
        b: u8,
    }

    #[derive(serde::Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        #[serde(deserialize_with = "super::object")]
        inner: Inner,
    }

    #[test]
    fn structs_only_from_objects() {
        let ok: Outer = serde_json::from_str(r#"{"inner": {"a": "x", "b": 1}}"#).unwrap();
        assert_eq!(ok.inner, Inner { a: "x".into(), b: 1 });
        // The derived impl alone takes an array of the fields in order …
        assert!(serde_json::from_str::<Inner>(r#"["x", 1]"#).is_ok());
        // … `object` does not.
        assert!(serde_json::from_str::<Outer>(r#"{"inner": ["x", 1]}"#).is_err());
        let mut de = serde_json::Deserializer::from_str(r#"["x", 1]"#);
        assert!(super::object::<_, Inner>(&mut de).is_err());
        assert!(serde_json::from_str::<Outer>(r#"{"inner": {"a": "x", "b": "1"}}"#).is_err());
        assert!(serde_json::from_str::<Outer>(r#"{"inner": {"a": "x", "b": 1, "c": 2}}"#).is_err());
    }
}
