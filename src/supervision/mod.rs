//! Supervision (R-SUP-*, R-OPS-*): incident classification with the national CERT
//! notification draft, the annual report to the supervisor, and the compliance report.

pub mod caps;
pub mod compliance;
pub mod compromise;
pub mod evidence;
pub mod incident;
pub mod maintenance;
pub mod report;
pub mod termination;
