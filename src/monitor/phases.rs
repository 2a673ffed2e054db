//! Latency of each phase of the hot paths (issue 22: "find where the tail comes from"):
//! one histogram per phase of the code exchange and of a password login, exported as
//! `eidgate_phase_duration_seconds{phase="…"}` beside the per-route histograms, so that a
//! slow p99 at `/token` can be traced to client authentication, the code store, the means
//! check, the token store, the wait for an HSM worker or the signature itself, and a slow
//! password login to the wait for an argon2 worker, argon2, or the audit record.
//!
//! Must not: allocate or take a lock per observation (the histograms are created once and
//! indexed by [`Phase`]), or carry anything but the phase name in a label.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// A measured phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Token, PAR, introspection, revocation: reading and authenticating the client.
    ClientAuth,
    /// Code exchange: taking the code from the ephemeral store, its checks and the replay marker.
    CodeRedeem,
    /// Code exchange and refresh: the means is still usable (durable store, cached).
    MeansCheck,
    /// Code exchange and refresh: one token stored (the access token in the ephemeral
    /// store; with `offline_access` also the refresh token in the durable store).
    TokenStore,
    /// The ID token signed, from claims to compact JWS (includes both HSM phases).
    TokenSign,
    /// An HSM call waiting in the pool's queue for a worker.
    HsmQueue,
    /// An HSM call on its worker (`C_Sign` and friends).
    HsmCall,
    /// A password verification waiting for an argon2 worker.
    PasswordQueue,
    /// argon2id itself, on its worker.
    Argon2,
    /// A login's audit record appended.
    LoginAudit,
}

impl Phase {
    /// Every phase, in label order.
    pub const ALL: [Phase; 10] = [
        Phase::ClientAuth,
        Phase::CodeRedeem,
        Phase::MeansCheck,
        Phase::TokenStore,
        Phase::TokenSign,
        Phase::HsmQueue,
        Phase::HsmCall,
        Phase::PasswordQueue,
        Phase::Argon2,
        Phase::LoginAudit,
    ];

    /// The `phase` label.
    pub fn label(self) -> &'static str {
        match self {
            Phase::ClientAuth => "client_auth",
            Phase::CodeRedeem => "code_redeem",
            Phase::MeansCheck => "means_check",
            Phase::TokenStore => "token_store",
            Phase::TokenSign => "token_sign",
            Phase::HsmQueue => "hsm_queue",
            Phase::HsmCall => "hsm_call",
            Phase::PasswordQueue => "password_queue",
            Phase::Argon2 => "argon2",
            Phase::LoginAudit => "login_audit",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: String,
}

/// One histogram per [`Phase`].
pub struct Phases {
    histograms: Vec<Histogram>,
}

impl std::fmt::Debug for Phases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Phases").finish_non_exhaustive()
    }
}

impl Default for Phases {
    /// Histograms nobody exports (services built without a registry, in unit tests).
    fn default() -> Self {
        Self::with_family(&family())
    }
}

fn family() -> Family<PhaseLabels, Histogram> {
    // 10 µs .. ~0.65 s: a memory-store phase takes microseconds, argon2 tens of milliseconds.
    Family::new_with_constructor((|| Histogram::new(exponential_buckets(0.000_01, 2.0, 17))) as fn() -> Histogram)
}

impl Phases {
    /// The histograms, registered in `registry` as `phase_duration_seconds`.
    pub fn register(registry: &mut Registry) -> Arc<Self> {
        let family = family();
        registry.register(
            "phase_duration_seconds",
            "Time of one phase of a code exchange or a login (client_auth, code_redeem, means_check, token_store, token_sign, hsm_queue, hsm_call, password_queue, argon2, login_audit)",
            family.clone(),
        );
        Arc::new(Self::with_family(&family))
    }

    fn with_family(family: &Family<PhaseLabels, Histogram>) -> Self {
        let histograms = Phase::ALL
            .iter()
            .map(|p| {
                family
                    .get_or_create(&PhaseLabels {
                        phase: p.label().to_owned(),
                    })
                    .clone()
            })
            .collect();
        Self { histograms }
    }

    /// Records one `phase` that took `elapsed`.
    pub fn observe(&self, phase: Phase, elapsed: Duration) {
        // `ALL` lists every variant in declaration order, so the index always exists.
        if let Some(h) = self.histograms.get(phase as usize) {
            h.observe(elapsed.as_secs_f64());
        }
    }

    /// Runs `work` and records how long it took as `phase` (also when it fails).
    pub async fn time<T>(&self, phase: Phase, work: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let out = work.await;
        self.observe(phase, started.elapsed());
        out
    }

    /// What the HSM pool calls after each call: its wait in the queue and its run.
    pub fn hsm_observer(self: &Arc<Self>) -> Arc<dyn Fn(Duration, Duration) + Send + Sync> {
        let phases = Arc::clone(self);
        Arc::new(move |queued, ran| {
            phases.observe(Phase::HsmQueue, queued);
            phases.observe(Phase::HsmCall, ran);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_phase_has_its_own_series_in_the_exposition() {
        let mut registry = Registry::default();
        let phases = Phases::register(&mut registry);
        for (i, p) in Phase::ALL.iter().enumerate() {
            assert_eq!(*p as usize, i, "ALL is in declaration order");
            phases.observe(*p, Duration::from_micros(15 * (i as u64 + 1)));
        }
        (phases.hsm_observer())(Duration::from_micros(20), Duration::from_micros(90));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for p in Phase::ALL {
            let count = format!("phase_duration_seconds_count{{phase=\"{}\"}}", p.label());
            let expected = if matches!(p, Phase::HsmQueue | Phase::HsmCall) {
                2
            } else {
                1
            };
            assert!(
                text.contains(&format!("{count} {expected}")),
                "{count} {expected} in\n{text}"
            );
        }
        // 15 µs of client_auth lies in the 20 µs bucket, not the 10 µs one.
        assert!(
            text.contains("phase_duration_seconds_bucket{le=\"0.00001\",phase=\"client_auth\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("phase_duration_seconds_bucket{le=\"0.00002\",phase=\"client_auth\"} 1"),
            "{text}"
        );
    }
}
