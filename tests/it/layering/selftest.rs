//! The layering rules fire: each is fed a small planted file set that breaks it (and a clean
//! one that keeps it). A rule that cannot fire would pass on any source.

use std::collections::BTreeSet;

use super::rules;
use super::scan::{imports, Sources};
use super::{layer_of, Layer};

fn files(list: &[(&str, &str)]) -> Sources {
    list.iter()
        .map(|(rel, text)| (rel.to_string(), text.to_string()))
        .collect()
}

fn names(found: &[String], rel: &str) -> bool {
    found.iter().any(|v| v.contains(rel))
}

#[test]
fn layering_selftest_scan_reads_paths_like_the_measure() {
    let src = files(&[
        ("lib.rs", "pub mod oidc;\npub mod store;\n"),
        ("app.rs", ""),
        ("random.rs", ""),
        ("oidc/mod.rs", ""),
        ("oidc/code.rs", ""),
        ("oidc/token.rs", ""),
        ("oidc/http.rs", "use super::{code, token as t};\nuse std::fmt;\n"),
        ("store/mod.rs", "use super::domain::Id;\n"),
        ("store/sql.rs", "// use crate::app::App;\nfn f() -> super::Store { crate::random::token() }\n"),
        (
            "domain/means/state.rs",
            "use super::super::loa::Loa;\nuse crate::domain::means::{self, Kind};\n#[cfg(test)]\nmod tests {\n    use crate::app::App;\n}\n",
        ),
        ("domain/means/mod.rs", "pub fn f() { crate::domain::means::state::apply() }\n"),
        ("domain/mod.rs", ""),
        ("domain/loa.rs", ""),
    ]);
    let found: BTreeSet<(String, usize, String)> = imports(&src).into_iter().map(|i| (i.from, i.line, i.to)).collect();
    let expected: BTreeSet<(String, usize, String)> = [
        ("oidc/http.rs", 1, "oidc/code.rs"),
        ("oidc/http.rs", 1, "oidc/token.rs"),
        ("store/mod.rs", 1, "domain/mod.rs"),
        ("store/sql.rs", 2, "store/mod.rs"),
        ("store/sql.rs", 2, "random.rs"),
        ("domain/means/state.rs", 1, "domain/loa.rs"),
        ("domain/means/state.rs", 2, "domain/means/mod.rs"),
        ("domain/means/mod.rs", 1, "domain/means/state.rs"),
    ]
    .into_iter()
    .map(|(f, l, t)| (f.to_string(), l, t.to_string()))
    .collect();
    assert_eq!(
        found, expected,
        "comments and test modules are no imports; a path names its longest module"
    );
}

#[test]
fn layering_selftest_layer_table() {
    for (rel, layer) in [
        ("main.rs", Layer::Transport),
        ("oidc/http.rs", Layer::Transport),
        ("web/limits.rs", Layer::Transport),
        ("cli/card.rs", Layer::Transport),
        ("oidc/token.rs", Layer::Services),
        ("audit/sink.rs", Layer::Services),
        ("jobs/expiry.rs", Layer::Services),
        ("store/snapshot/mod.rs", Layer::Ports),
        ("config/hsm.rs", Layer::Ports),
        ("clock.rs", Layer::Ports),
        ("audit/mod.rs", Layer::Domain),
        ("domain/means/state.rs", Layer::Domain),
    ] {
        assert_eq!(layer_of(rel), layer, "{rel}");
    }
}

#[test]
fn layering_selftest_cycles_fire() {
    let planted = files(&[
        ("authn/a.rs", "use crate::oidc::b::X;\n"),
        ("oidc/b.rs", "fn f() { crate::lifecycle::c::g() }\n"),
        ("lifecycle/c.rs", "use crate::authn::a::Y;\n"),
        ("web/d.rs", "use crate::authn::a::Y;\n"),
        ("hsm/init.rs", "use super::pkcs11::Pool;\n"),
        ("hsm/pkcs11.rs", "use super::init::Token;\n"),
        ("hsm/mod.rs", ""),
    ]);
    let found = rules::import_cycles(&planted);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found[0].starts_with("cycle of 3 files: authn/a.rs, lifecycle/c.rs, oidc/b.rs"),
        "{found:#?}"
    );
    assert!(found[0].contains("oidc/b.rs:1 -> lifecycle/c.rs"), "{found:#?}");
    assert!(!found[0].contains("web/d.rs"), "{found:#?}");
    assert!(
        found[1].starts_with("cycle of 2 files: hsm/init.rs, hsm/pkcs11.rs"),
        "{found:#?}"
    );

    let clean = files(&[
        ("authn/a.rs", "use crate::oidc::b::X;\n"),
        ("oidc/b.rs", "fn f() { crate::lifecycle::c::g() }\n"),
        ("lifecycle/c.rs", "// use crate::authn::a::Y;\n"),
    ]);
    assert_eq!(rules::import_cycles(&clean), Vec::<String>::new());
}

#[test]
fn layering_selftest_crate_app_fires() {
    let planted = files(&[
        ("app.rs", "pub struct App;\n"),
        ("lifecycle/service.rs", "use crate::app::App;\n"),
        ("authn/throttle.rs", "use crate::{app::App, domain::Id};\n"),
        ("monitor/availability.rs", "fn f(a: &crate::app::App) {}\n"),
    ]);
    let found = rules::app_outside_root(&planted);
    assert_eq!(found.len(), 3, "{found:#?}");
    for rel in [
        "lifecycle/service.rs:1",
        "authn/throttle.rs:1",
        "monitor/availability.rs:1",
    ] {
        assert!(names(&found, rel), "{rel} not reported: {found:#?}");
    }

    let clean = files(&[
        ("app.rs", "pub struct App;\n"),
        ("oidc/http.rs", "use crate::app::App;\n"),
        ("web/router.rs", "use crate::app::App;\n"),
        ("cli/mod.rs", "use crate::app;\n"),
        ("main.rs", "fn main() { eidgate::app::serve() }\n"),
        (
            "lifecycle/service.rs",
            "use crate::application::Form;\n// crate::app::App\n",
        ),
    ]);
    assert_eq!(rules::app_outside_root(&clean), Vec::<String>::new());
}

#[test]
fn layering_selftest_direction_fires() {
    let planted = files(&[
        ("web/problem.rs", ""),
        ("clock.rs", ""),
        ("delivery/mod.rs", ""),
        ("lifecycle/mod.rs", ""),
        ("lifecycle/service.rs", "use crate::web::problem::Problem;\n"),
        ("store/sql.rs", "use crate::lifecycle::Transition;\n"),
        ("domain/ids.rs", "fn now() -> u64 { crate::clock::now() }\n"),
        ("config.rs", "pub delivery: crate::delivery::DeliveryConfig,\n"),
    ]);
    let found = rules::direction(&planted);
    assert_eq!(found.len(), 4, "{found:#?}");
    for rel in [
        "lifecycle/service.rs:1 (Services) imports web/problem.rs",
        "store/sql.rs:1 (Ports) imports lifecycle/mod.rs",
        "domain/ids.rs:1 (Domain) imports clock.rs",
        "config.rs:1 (Ports) imports delivery/mod.rs",
    ] {
        assert!(names(&found, rel), "{rel} not reported: {found:#?}");
    }

    let clean = files(&[
        ("web/router.rs", "use crate::oidc::http;\n"),
        ("oidc/http.rs", "use super::token;\n"),
        (
            "oidc/token.rs",
            "use crate::store::Store;\nuse crate::config::Config;\n",
        ),
        (
            "store/mod.rs",
            "use crate::domain::ids::Id;\nuse crate::audit::AuditEvent;\n",
        ),
        ("config.rs", "use crate::domain::ids::Id;\n"),
        ("audit/mod.rs", "use crate::domain::ids::Id;\n"),
        ("domain/ids.rs", "use super::loa::Loa;\n"),
        ("domain/loa.rs", ""),
    ]);
    assert_eq!(rules::direction(&clean), Vec::<String>::new());
}

#[test]
fn layering_selftest_http_to_http_fires() {
    let planted = files(&[
        ("authn/http.rs", "use crate::oidc::http::authorize_page;\n"),
        ("oidc/http.rs", ""),
    ]);
    assert_eq!(
        rules::http_imports_http(&planted),
        vec!["authn/http.rs:1 -> oidc/http.rs".to_string()]
    );

    let clean = files(&[
        ("web/router.rs", "use crate::{authn::http as a, oidc::http as o};\n"),
        ("authn/http.rs", "use super::flow;\n"),
        ("authn/flow.rs", ""),
        ("oidc/http.rs", "use crate::authn::flow::Flow;\n"),
    ]);
    assert_eq!(rules::http_imports_http(&clean), Vec::<String>::new());
}

#[test]
fn layering_selftest_services_building_http_fires() {
    let planted = files(&[(
        "lifecycle/service.rs",
        "use axum::http::StatusCode;\nfn f() -> (StatusCode, &'static str) { (StatusCode::CONFLICT, \"application/problem+json\") }\nfn g() -> Problem { todo() }\nimpl IntoResponse for E {}\nlet t = format!(\"urn:eidgate:problem:{kind}\");\n",
    )]);
    let found = rules::services_build_http(&planted);
    assert_eq!(found.len(), 5, "{found:#?}");
    assert!(
        names(&found, "lifecycle/service.rs:5: urn:eidgate:problem"),
        "{found:#?}"
    );
    assert!(names(&found, "lifecycle/service.rs:1: StatusCode, axum"), "{found:#?}");
    assert!(
        names(&found, "lifecycle/service.rs:2: StatusCode, problem+json"),
        "{found:#?}"
    );
    assert!(names(&found, "lifecycle/service.rs:3: Problem"), "{found:#?}");
    assert!(names(&found, "lifecycle/service.rs:4: IntoResponse"), "{found:#?}");

    let clean = files(&[
        ("oidc/http.rs", "use axum::http::StatusCode;\nfn f() -> Problem { todo() }\n"),
        (
            "smartcard/status.rs",
            "// answers StatusCode::CONFLICT\npub enum ProblemKind { Conflict }\nif r.status() != reqwest::StatusCode::OK {}\n",
        ),
    ]);
    assert_eq!(rules::services_build_http(&clean), Vec::<String>::new());
}

#[test]
fn layering_selftest_domain_allowlist_fires() {
    let externals: BTreeSet<String> = ["std", "core", "alloc", "tokio", "sqlx", "rand", "serde", "url", "time"]
        .map(String::from)
        .into();
    let planted = files(&[(
        "domain/ids.rs",
        "use tokio::time::sleep;\nfn f() { sqlx::query(\"\"); }\nuse std::fs;\nuse std::{fmt, net::TcpStream};\nextern crate rand;\nfn g() { time::OffsetDateTime::now_utc(); }\n",
    )]);
    let found = rules::domain_crates(&planted, &externals);
    for v in [
        "domain/ids.rs:1 uses crate `tokio`",
        "domain/ids.rs:2 uses crate `sqlx`",
        "domain/ids.rs:3 uses `std::fs`",
        "domain/ids.rs:4 uses `std::net::TcpStream`",
        "domain/ids.rs:5 uses crate `rand`",
        "domain/ids.rs:6 reads the clock",
    ] {
        assert!(names(&found, v), "{v} not reported: {found:#?}");
    }
    assert_eq!(found.len(), 6, "{found:#?}");

    let clean = files(&[
        (
            "domain/ids.rs",
            "use serde::{Deserialize, Serialize};\nuse std::fmt;\nimpl fmt::Display for Id {}\nconst M: u64 = u64::MAX;\nfn f() { url::Url::parse(\"https://x\"); Loa::High; }\n// tokio::spawn\n",
        ),
        ("store/sql.rs", "use sqlx::query;\n"),
    ]);
    assert_eq!(rules::domain_crates(&clean, &externals), Vec::<String>::new());
}

#[test]
fn layering_selftest_layout_map_fires() {
    let lib = "//! # eidgate\n//!\n//! # Layout\n//! | module | role |\n//! | --- | --- |\n//! | [`domain`] | pure |\n//! | [`gone`] | removed |\n//!\n//! # Other\n//! | [`store`] | not the layout table |\n\npub mod domain;\npub mod store;\nmod private;\n";
    let found = rules::layout_map(lib);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(names(&found, "`store` is a `pub mod` of lib.rs missing"), "{found:#?}");
    assert!(
        names(&found, "`gone` is in the # Layout table but no `pub mod`"),
        "{found:#?}"
    );

    let clean =
        "//! # Layout\n//! | [`domain`] | pure |\n//! | [`store`] | sqlx |\n\npub mod domain;\npub mod store;\n";
    assert_eq!(rules::layout_map(clean), Vec::<String>::new());
    assert_eq!(
        rules::layout_map("pub mod domain;\n"),
        vec!["lib.rs has no `# Layout` section".to_string()]
    );
}

#[test]
fn layering_selftest_sizes_fire() {
    let src = files(&[("big.rs", &"x\n".repeat(601)), ("edge.rs", &"x\n".repeat(600))]);
    assert_eq!(rules::too_long(&src, 600), vec!["big.rs (601 lines)".to_string()]);
    assert_eq!(rules::too_long(&src, 601), Vec::<String>::new());
}

#[test]
fn layering_selftest_crate_placement_fires() {
    let src = files(&[
        ("store/sql.rs", "use sqlx::Row;\n"),
        ("lifecycle/service.rs", "fn f() { let _ = sqlx::query(\"\"); }\n"),
        ("oidc/token.rs", "// sqlx::query is for store/\n"),
    ]);
    assert_eq!(
        rules::crate_outside(&src, "sqlx", |f| f.starts_with("store/")),
        vec!["lifecycle/service.rs".to_string()]
    );
    assert_eq!(
        rules::crate_outside(&src, "sqlx", |f| f != "oidc/token.rs"),
        Vec::<String>::new()
    );
}
