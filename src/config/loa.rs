//! `[loa]`: the LoA cap per kind of means (R-SUP-2).

use serde::Deserialize;

/// LoA caps per kind (R-SUP-2).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoaConfig {
    /// `{ smartcard = "high", fido = "high", totp = "substantial", password = "low" }`.
    pub caps: LoaCaps,
}

pub use crate::domain::loa::LoaCaps;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::loa::Loa;
    use crate::domain::means::MeansKind;

    #[test]
    fn r_sup_2_caps_never_exceed_the_kind_ceiling() {
        let caps: LoaCaps = toml::from_str("password = \"high\"\ntotp = \"low\"").unwrap();
        assert_eq!(caps.cap(MeansKind::Password), Loa::Low);
        assert_eq!(caps.cap(MeansKind::Totp), Loa::Low);
        assert_eq!(caps.cap(MeansKind::Smartcard), Loa::High);
    }
}
