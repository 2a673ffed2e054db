//! Significant-incident classification (R-OPS-2, `seeds/000_*`): an incident is
//! significant when it affects at least a share of users for at least a time:
//! 1-2% for 8 h, 2-5% for 6 h, 5-10% for 4 h, 10-15% for 2 h, more than 15% for 1 h.
//!
//! The bands share their end points (2% is in "1-2%" and in "2-5%"); an incident is
//! significant when **any** band that contains its share is met, so 2% for 6 h is
//! significant (band 2-5%) while 1.9% for 7 h 59 min is not. Shares are compared in basis
//! points (hundredths of a percent), so no float rounding decides a boundary.

use serde::Serialize;

/// One threshold band.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Band {
    /// Lowest share in the band, percent.
    pub min_percent: f64,
    /// Highest share in the band, percent (`None`: open-ended, "more than").
    pub max_percent: Option<f64>,
    /// Whether `min_percent` itself is outside the band ("more than 15%").
    #[serde(skip)]
    pub exclusive_min: bool,
    /// Minimum duration, hours.
    pub min_hours: u32,
}

/// The bands in order.
pub const BANDS: [Band; 5] = [
    Band {
        min_percent: 1.0,
        max_percent: Some(2.0),
        exclusive_min: false,
        min_hours: 8,
    },
    Band {
        min_percent: 2.0,
        max_percent: Some(5.0),
        exclusive_min: false,
        min_hours: 6,
    },
    Band {
        min_percent: 5.0,
        max_percent: Some(10.0),
        exclusive_min: false,
        min_hours: 4,
    },
    Band {
        min_percent: 10.0,
        max_percent: Some(15.0),
        exclusive_min: false,
        min_hours: 2,
    },
    Band {
        min_percent: 15.0,
        max_percent: None,
        exclusive_min: true,
        min_hours: 1,
    },
];

/// The outcome of a classification.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Classification {
    /// Whether the incident must be reported to the national CERT.
    pub significant: bool,
    /// The band that made it significant, else the band with the shortest duration that
    /// contains the share (what would make it significant), else none (below 1%).
    pub threshold: Option<Band>,
    /// The share of users affected, percent.
    pub affected_percent: f64,
    /// Duration, minutes.
    pub duration_minutes: u32,
}

/// Why the input cannot be classified.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum IncidentError {
    /// The share is not a number between 0 and 100.
    #[error("affected share must be between 0 and 100 percent")]
    Share,
}

fn basis_points(percent: f64) -> Option<u32> {
    if !percent.is_finite() || !(0.0..=100.0).contains(&percent) {
        return None;
    }
    // Inputs are given to at most two decimals; round to the nearest basis point.
    let bp = (percent * 100.0).round();
    Some(bp as u32)
}

fn contains(band: &Band, bp: u32) -> bool {
    let min = (band.min_percent * 100.0) as u32;
    let above_min = if band.exclusive_min { bp > min } else { bp >= min };
    let below_max = band.max_percent.is_none_or(|m| bp <= (m * 100.0) as u32);
    above_min && below_max
}

/// Classifies an incident affecting `affected_percent` of users for `duration_minutes`.
pub fn classify(affected_percent: f64, duration_minutes: u32) -> Result<Classification, IncidentError> {
    let bp = basis_points(affected_percent).ok_or(IncidentError::Share)?;
    let containing: Vec<&Band> = BANDS.iter().filter(|b| contains(b, bp)).collect();
    let met = containing
        .iter()
        .find(|b| duration_minutes >= b.min_hours * 60)
        .copied();
    let threshold = met
        .or_else(|| containing.iter().min_by_key(|b| b.min_hours).copied())
        .copied();
    Ok(Classification {
        significant: met.is_some(),
        threshold,
        affected_percent,
        duration_minutes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(p: f64, minutes: u32) -> bool {
        classify(p, minutes).unwrap().significant
    }

    #[test]
    fn r_ops_2_boundaries_are_exact() {
        assert!(sig(2.0, 6 * 60));
        assert!(!sig(1.9, 8 * 60 - 1));
        assert!(sig(1.9, 8 * 60));
        assert!(sig(1.0, 8 * 60));
        assert!(!sig(0.99, 24 * 60));
        assert!(!sig(2.0, 6 * 60 - 1));
        assert!(sig(5.0, 4 * 60));
        assert!(!sig(4.99, 4 * 60));
        assert!(sig(10.0, 2 * 60));
        assert!(!sig(9.99, 2 * 60));
        assert!(sig(15.0, 2 * 60));
        assert!(!sig(15.0, 2 * 60 - 1), "15% is in the 10-15% band, not 'more than 15%'");
        assert!(sig(15.01, 60));
        assert!(!sig(15.01, 59));
        assert!(sig(100.0, 60));
    }

    #[test]
    fn r_ops_2_threshold_names_the_band_that_applies() {
        let c = classify(3.0, 60).unwrap();
        assert!(!c.significant);
        assert_eq!(c.threshold.unwrap().min_hours, 6);
        let c = classify(0.5, 6000).unwrap();
        assert!(c.threshold.is_none());
        assert_eq!(classify(101.0, 1), Err(IncidentError::Share));
        assert_eq!(classify(f64::NAN, 1), Err(IncidentError::Share));
    }
}
