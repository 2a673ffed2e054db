//! `eidgate import` is idempotent and strict (issue 24): the same document twice changes
//! nothing (no second means per holder, no audit record of a change, the same annual
//! report); an item present but different is refused naming it unless `--update`; a
//! misspelt field is refused in every section, naming the item, and nothing is written.

use eidgate::admin::import::{import_with, ImportError, ImportOptions, ImportReport};
use serde_json::{json, Value};

use crate::support::operators::person_id;
use crate::support::server::{fixture, TestServer, HOLDER};

const COMPANY: &str = "LT/LT/304567890";

/// The standard fixture with every section: a legal person, a mandate, an operator and a
/// revocation secret on the means.
fn full_document() -> Value {
    let mut doc = fixture();
    doc["legal_persons"] = json!([{"identifier": COMPANY, "legal_name": "UAB Pavyzdys", "legal_form": "UAB"}]);
    doc["mandates"] = json!([{"person": HOLDER, "legal_person": COMPANY, "loa": "substantial"}]);
    doc["operators"] = json!([{"person": HOLDER, "roles": ["helpdesk"]}]);
    doc["means"][0]["revocation_secret"] = json!("K7Q2-M9XD-4TRA-PP3Z");
    // A TOTP means too: its seed is sealed in the HSM and compared by opening it.
    doc["means"].as_array_mut().unwrap().push(json!({
        "holder": HOLDER, "kind": "totp", "loa": "substantial", "password": "a totp pass phrase",
        "totp_secret": TOTP_SEED
    }));
    doc
}

const TOTP_SEED: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

async fn run(server: &TestServer, doc: &Value, update: bool) -> Result<ImportReport, ImportError> {
    import_with(
        server.app.store.as_ref(),
        Some(server.app.sealer.as_ref()),
        &doc.to_string(),
        &server.app.config,
        ImportOptions { update },
    )
    .await
}

/// The audit records an import writes (`*.imported`, also for updates); the server's own
/// records (its start) are not counted.
async fn audit_count(server: &TestServer) -> usize {
    let records = server.app.store.audit_after(0, 1_000_000).await.unwrap();
    records
        .iter()
        .filter(|r| r.event.event_type.ends_with(".imported"))
        .count()
}

async fn means_of_holder(server: &TestServer) -> usize {
    let holder = person_id(server, HOLDER).await;
    server.app.store.means_of_holder(holder).await.unwrap().len()
}

async fn annual(server: &TestServer) -> Value {
    let year = time::OffsetDateTime::now_utc().year();
    let report = eidgate::supervision::report::annual(server.app.store.as_ref(), year)
        .await
        .unwrap();
    serde_json::to_value(&report).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_sup_1_the_same_import_twice_changes_nothing() {
    let server = TestServer::start().await;
    let doc = full_document();
    let first = run(&server, &doc, false).await.unwrap();
    assert_eq!(
        serde_json::to_value(first.created).unwrap(),
        json!({"clients": 1, "persons": 1, "legal_persons": 1, "mandates": 1, "operators": 1, "means": 2})
    );
    let (audited, means, report) = (
        audit_count(&server).await,
        means_of_holder(&server).await,
        annual(&server).await,
    );
    assert_eq!(means, 2);
    assert_eq!(report["issued_during_year"]["total"], 2, "{report}");

    for update in [false, true] {
        let again = run(&server, &doc, update).await.unwrap();
        let zero = json!({"clients": 0, "persons": 0, "legal_persons": 0, "mandates": 0, "operators": 0, "means": 0});
        assert_eq!(serde_json::to_value(again.created).unwrap(), zero);
        assert_eq!(serde_json::to_value(again.updated).unwrap(), zero);
        assert_eq!(
            serde_json::to_value(again.unchanged).unwrap(),
            json!({"clients": 1, "persons": 1, "legal_persons": 1, "mandates": 1, "operators": 1, "means": 2})
        );
        // The same means is named, no secret is generated again.
        assert_eq!(again.means_ids, first.means_ids);
        assert!(again.generated_client_secrets.is_empty());
        assert_eq!(
            means_of_holder(&server).await,
            2,
            "no second means of a kind for the holder"
        );
        assert_eq!(audit_count(&server).await, audited, "nothing audited as a change");
        assert_eq!(annual(&server).await, report, "the supervisory report is not inflated");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_iss_24_an_item_present_but_different_fails_naming_it_unless_update() {
    let server = TestServer::start().await;
    run(&server, &full_document(), false).await.unwrap();
    let audited = audit_count(&server).await;
    let store = &server.app.store;

    // A different client: refused (nothing written), then changed with --update.
    let mut doc = full_document();
    doc["clients"][0]["client_name"] = json!("Renamed RP");
    doc["persons"][0]["given_name"] = json!("Jonas Petras");
    let error = run(&server, &doc, false).await.unwrap_err().to_string();
    assert!(error.contains("client rp:") && error.contains("--update"), "{error}");
    assert_eq!(audit_count(&server).await, audited);
    let client = store.client(&"rp".parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(client.client_name, "Test RP");

    let updated = run(&server, &doc, true).await.unwrap();
    assert_eq!((updated.updated.clients, updated.updated.persons), (1, 1));
    assert_eq!(updated.unchanged.means, 2);
    let client = store.client(&"rp".parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(client.client_name, "Renamed RP");
    let person = store
        .person_by_identifier(&HOLDER.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(person.given_name, "Jonas Petras");
    assert_eq!(audit_count(&server).await, audited + 2, "each update audited");

    // A different operator role set: changed with --update only.
    let mut doc = doc.clone();
    doc["operators"][0]["roles"] = json!(["helpdesk", "registration"]);
    let error = run(&server, &doc, false).await.unwrap_err().to_string();
    assert!(error.contains(&format!("operator {HOLDER}:")), "{error}");
    assert_eq!(run(&server, &doc, true).await.unwrap().updated.operators, 1);

    // Means, legal persons and mandates change through their own procedures, not import.
    let audited = audit_count(&server).await;
    for (path, value, item) in [
        (
            ("means", "password"),
            json!("another long pass phrase"),
            format!("means {HOLDER} password:"),
        ),
        (
            ("means", "loa"),
            json!("substantial"),
            format!("means {HOLDER} password:"),
        ),
        (
            ("legal_persons", "legal_name"),
            json!("UAB Kitas"),
            format!("legal person {COMPANY}:"),
        ),
        (
            ("mandates", "loa"),
            json!("low"),
            format!("mandate {HOLDER} for {COMPANY}:"),
        ),
    ] {
        let mut changed = doc.clone();
        changed[path.0][0][path.1] = value;
        for update in [false, true] {
            let error = run(&server, &changed, update).await.unwrap_err().to_string();
            assert!(error.contains(&item), "{path:?}: {error}");
        }
    }
    // Another TOTP seed for the same holder's TOTP means: a different means, refused.
    let mut changed = doc.clone();
    changed["means"][1]["totp_secret"] = json!("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP");
    let error = run(&server, &changed, true).await.unwrap_err().to_string();
    assert!(
        error.contains(&format!("means {HOLDER} totp:")) && error.contains("totp_secret"),
        "{error}"
    );
    assert_eq!(audit_count(&server).await, audited);
    assert_eq!(means_of_holder(&server).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_iss_24_a_misspelt_field_is_refused_in_every_section_naming_the_item() {
    let server = TestServer::start().await;
    let before = audit_count(&server).await;
    for (section, misspelt, item) in [
        ("clients", "client_nmae", "client rp".to_owned()),
        ("persons", "given_nmae", format!("person {HOLDER}")),
        ("legal_persons", "legal_nmae", format!("legal person {COMPANY}")),
        ("mandates", "valid_untill", format!("mandate {HOLDER} for {COMPANY}")),
        ("operators", "rolse", format!("operator {HOLDER}")),
        ("means", "pasword", format!("means {HOLDER} password")),
    ] {
        let mut doc = full_document();
        doc[section][0][misspelt] = json!("x");
        let error = run(&server, &doc, false).await.unwrap_err().to_string();
        assert!(
            error.starts_with(&format!("{item}: unknown field")) && error.contains(misspelt),
            "{section}: {error}"
        );
        // Nothing of the document is written, not even the sections before the refused one.
        assert_eq!(audit_count(&server).await, before, "{section}");
        assert!(server.app.store.client(&"rp".parse().unwrap()).await.unwrap().is_none());
    }
    // A misspelt nested field (the register check of a legal person) too.
    let mut doc = full_document();
    doc["legal_persons"][0]["register"] = json!({"source": "JAR", "refrence": "304567890"});
    let error = run(&server, &doc, false).await.unwrap_err().to_string();
    assert!(
        error.contains(&format!("legal person {COMPANY}")) && error.contains("refrence"),
        "{error}"
    );
    // The stored fingerprint of a secret is not an import field either.
    let mut doc = full_document();
    doc["clients"][0]["secret_sha256"] = json!("00ff");
    let error = run(&server, &doc, false).await.unwrap_err().to_string();
    assert!(error.starts_with("client rp: unknown field `secret_sha256`"), "{error}");
    // And an unknown section.
    let error = run(&server, &json!({"client": []}), false)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown field `client`"), "{error}");
}
