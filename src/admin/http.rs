//! The admin API (DESIGN "Admin API and CLI", CONTRACT): registration of persons with
//! their proofing facts, applications for means, four-eyes approval and rejection,
//! operator roles. Callers are operators with a console access token; roles are checked
//! by the services.

use axum::body::Bytes;
use axum::extract::FromRef;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{legal, registry};
use crate::domain::ids::{MeansId, PersonIdentifier};
use crate::domain::loa::Loa;
use crate::domain::means::MeansKind;
use crate::domain::operator::{Operator, Role};
use crate::lifecycle::actor::Actor;
use crate::lifecycle::service::{self, Application, MeansView};
use crate::web::problem::parse_json;
use crate::web::Problem;

/// Routes of the admin API.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    crate::admin::state::Admin: FromRef<S>,
{
    Router::new()
        .route("/admin/v1/persons", post(post_person).get(get_person))
        .route("/admin/v1/means", post(post_means))
        .route("/admin/v1/means/{id}/approve", post(post_approve))
        .route("/admin/v1/means/{id}/reject", post(post_reject))
        .route("/admin/v1/operators/{identifier}", get(get_operator).put(put_operator))
        .route("/admin/v1/reports/annual", get(get_annual_report))
        .route("/admin/v1/incidents", post(post_incident).get(get_incidents))
        .route("/admin/v1/availability", get(get_availability))
        .route("/admin/v1/clock/resolve", post(post_clock_resolve))
        .route("/admin/v1/maintenance", post(post_maintenance))
        .route("/maintenance", get(get_maintenance))
        .route("/admin/v1/means/{id}/compromised", post(post_compromised))
        .route("/admin/v1/notices", get(get_notices))
        .route("/admin/v1/notices/{id}/sent", post(post_notice_sent))
        .route("/admin/v1/legal-persons", post(post_legal_person).get(get_legal_person))
        .route("/admin/v1/mandates", post(post_mandate))
        .route("/admin/v1/mandates/{id}/delegate", post(post_delegate))
        .route("/admin/v1/mandates/{id}/approve", post(post_mandate_approve))
        .route("/admin/v1/mandates/{id}/{action}", post(post_mandate_change))
        .route("/admin/v1/loa/caps", get(get_caps).put(put_caps))
}

pub use crate::web::extract::{bearer, operator};

fn created(body: impl serde::Serialize) -> Response {
    let mut r = (StatusCode::CREATED, Json(body)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn no_store(body: impl serde::Serialize) -> Response {
    let mut r = Json(body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn post_person(
    State(app): State<crate::admin::state::Admin>,
    crate::web::extract::Operator(op): crate::web::extract::Operator,
    crate::web::extract::JsonBody(body): crate::web::extract::JsonBody<registry::Registration>,
) -> Result<Response, Problem> {
    let person = registry::register(&app, &Actor::Operator(op), body).await?;
    Ok(created(registry::summary(&person)))
}

#[derive(Deserialize)]
struct IdentifierQuery {
    identifier: String,
}

async fn get_person(
    State(app): State<crate::admin::state::Admin>,
    crate::web::extract::Operator(op): crate::web::extract::Operator,
    Query(q): Query<IdentifierQuery>,
) -> Result<Response, Problem> {
    let person = registry::find(&app, &Actor::Operator(op), &q.identifier).await?;
    Ok(no_store(registry::summary(&person)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MeansBody {
    holder: String,
    kind: MeansKind,
    loa: Loa,
    #[serde(default)]
    renews: Option<MeansId>,
}

async fn post_means(
    State(app): State<crate::admin::state::Admin>,
    crate::web::extract::Operator(op): crate::web::extract::Operator,
    crate::web::extract::JsonBody(body): crate::web::extract::JsonBody<MeansBody>,
) -> Result<Response, Problem> {
    let holder: PersonIdentifier = body
        .holder
        .parse()
        .map_err(|_| Problem::bad_request("holder is not a person identifier"))?;
    let application = Application {
        holder,
        kind: body.kind,
        loa: body.loa,
        renews: body.renews,
    };
    let means = service::apply_for(&app.lifecycle, &Actor::Operator(op), application).await?;
    Ok(created(MeansView::from(&means)))
}

fn means_id(id: &str) -> Result<MeansId, Problem> {
    id.parse().map_err(|_| Problem::not_found())
}

async fn post_approve(
    State(app): State<crate::admin::state::Admin>,
    crate::web::extract::Operator(op): crate::web::extract::Operator,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let approved = service::approve(&app.lifecycle, &Actor::Operator(op), means_id(&id)?).await?;
    Ok(no_store(approved))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RejectBody {
    #[serde(default)]
    reason: String,
}

async fn post_reject(
    State(app): State<crate::admin::state::Admin>,
    crate::web::extract::Operator(op): crate::web::extract::Operator,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let body: RejectBody = if body.is_empty() {
        RejectBody::default()
    } else {
        parse_json(&headers, &body)?
    };
    let means = service::reject(&app.lifecycle, &Actor::Operator(op), means_id(&id)?, &body.reason).await?;
    Ok(no_store(MeansView::from(&means)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesBody {
    roles: Vec<String>,
}

async fn get_operator(
    State(app): State<crate::admin::state::Admin>,
    crate::web::extract::Operator(op): crate::web::extract::Operator,
    Path(identifier): Path<String>,
) -> Result<Response, Problem> {
    let found = registry::operator_roles(&app, &Actor::Operator(op), &identifier).await?;
    Ok(no_store(json!({"person": identifier, "roles": found.roles})))
}

async fn put_operator(
    State(app): State<crate::admin::state::Admin>,
    crate::web::extract::Operator(op): crate::web::extract::Operator,
    Path(identifier): Path<String>,
    crate::web::extract::JsonBody(body): crate::web::extract::JsonBody<RolesBody>,
) -> Result<Response, Problem> {
    let updated = registry::set_roles(&app, &Actor::Operator(op), &identifier, &body.roles).await?;
    Ok(no_store(json!({"person": identifier, "roles": updated.roles})))
}

/// 403 unless the operator holds one of `roles` (the role checks of the supervision
/// endpoints, which have no service of their own to make them).
fn require_any(op: &Operator, roles: &[Role]) -> Result<(), Problem> {
    if roles.iter().any(|r| op.has(*r)) {
        return Ok(());
    }
    let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    Err(Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden")
        .detail(format!("one of the roles {} is required", names.join(", "))))
}

fn security_or_admin(op: &Operator) -> Result<(), Problem> {
    require_any(op, &[Role::Security, Role::Admin])
}

#[derive(Deserialize)]
struct YearQuery {
    year: i32,
    /// `html` for the readable page; JSON otherwise.
    #[serde(default)]
    format: Option<String>,
}

/// `GET /admin/v1/reports/annual?year=YYYY` (R-SUP-1; roles security or admin).
async fn get_annual_report(
    State(app): State<crate::admin::state::Admin>,
    crate::web::extract::Operator(op): crate::web::extract::Operator,
    Query(q): Query<YearQuery>,
) -> Result<Response, Problem> {
    security_or_admin(&op)?;
    match crate::supervision::report::annual(app.store.as_ref(), q.year).await {
        Ok(report) if q.format.as_deref() == Some("html") => {
            let mut r = crate::web::pages::html_page(
                StatusCode::OK,
                &format!("Annual report {}", report.year),
                &crate::supervision::report::html_body(&report),
            );
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(r)
        }
        Ok(report) => Ok(no_store(report)),
        Err(crate::supervision::report::ReportError::Year) => Err(Problem::bad_request("year out of range")),
        Err(crate::supervision::report::ReportError::Store(_)) => Err(Problem::unavailable()),
    }
}

/// `POST /admin/v1/incidents` (R-OPS-2; roles security or admin): classification and,
/// when significant, the notification draft for the national CERT. Audited.
async fn post_incident(
    State(app): State<crate::admin::state::Admin>,
    crate::web::extract::Operator(op): crate::web::extract::Operator,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    security_or_admin(&op)?;
    let report: crate::supervision::incident::IncidentReport = parse_json(&headers, &body)?;
    let answer = crate::supervision::incident::assess(&report, &app.config.issuer)
        .map_err(|e| Problem::bad_request(e.to_string()))?;
    let audit = crate::audit::AuditEvent::new(
        crate::audit::catalogue::INCIDENT_CLASSIFIED,
        format!("operator:{}", op.person),
        "provider",
        json!({"affected_percent": report.affected_percent, "duration_minutes": report.duration_minutes,
               "service": report.service, "significant": answer.classification.significant}),
    );
    app.store.append(audit).await.map_err(|_| Problem::unavailable())?;
    Ok(no_store(answer))
}

/// `POST /admin/v1/maintenance` (R-OPS-1; role admin): announce planned downtime at least
/// one working day ahead.
async fn post_maintenance(
    State(app): State<crate::admin::state::Admin>,
    crate::web::extract::Operator(op): crate::web::extract::Operator,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    require_any(&op, &[Role::Admin])?;
    let window: crate::supervision::maintenance::Window = parse_json(&headers, &body)?;
    match crate::supervision::maintenance::announce(
        app.store.as_ref(),
        &format!("operator:{}", op.person),
        &window,
        app.now(),
    )
    .await
    {
        Ok(()) => Ok(created(window)),
        Err(crate::supervision::maintenance::MaintenanceError::Invalid(why)) => Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
            "Request cannot be processed",
        )
        .detail(why)),
        Err(crate::supervision::maintenance::MaintenanceError::Store(_)) => Err(Problem::unavailable()),
    }
}

/// `GET /maintenance` (public): the announced window, for the login page.
async fn get_maintenance(State(app): State<crate::admin::state::Admin>) -> Result<Response, Problem> {
    let window = crate::supervision::maintenance::current(app.store.as_ref(), app.now())
        .await
        .map_err(|_| Problem::unavailable())?;
    Ok(Json(json!({ "maintenance": window })).into_response())
}

/// `POST /admin/v1/means/{id}/compromised` (R-OPS-4; role security).
async fn post_compromised(
    State(app): State<crate::admin::state::Admin>,
    crate::web::extract::Operator(op): crate::web::extract::Operator,
    Path(id): Path<String>,
    crate::web::extract::JsonBody(body): crate::web::extract::JsonBody<RejectBody>,
) -> Result<Response, Problem> {
    let notice = crate::supervision::compromise::mark_compromised(
        &app.lifecycle,
        &Actor::Operator(op),
        means_id(&id)?,
        &body.reason,
    )
    .await?;
    Ok(created(notice))
}

/// `GET /admin/v1/notices`: pending notices, oldest first (roles security or admin).
async fn get_notices(
    State(app): State<crate::admin::state::Admin>,
    crate::web::extract::Operator(op): crate::web::extract::Operator,
) -> Result<Response, Problem> {
    security_or_admin(&op)?;
    let pending = app
        .store
        .pending_notices(app.now(), 1000)
        .await
        .map_err(|_| Problem::unavailable())?;
    Ok(no_store(json!({ "notices": pending })))
}

/// `POST /admin/v1/notices/{id}/sent` (roles security or admin).
async fn post_notice_sent(
    State(app): State<crate::admin::state::Admin>,
    crate::web::extract::Operator(op): crate::web::extract::Operator,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    security_or_admin(&op)?;
    let audit = crate::audit::AuditEvent::new(
        crate::audit::catalogue::NOTICE_SENT,
        format!("operator:{}", op.person),
        format!("notice:{id}"),
        json!({}),
    );
    match app.store.mark_notice_sent(&id, app.now(), audit).await {
        Ok(()) => Ok(no_store(json!({ "id": id, "sent": true }))),
        Err(crate::store::StoreError::NotFound) => Err(Problem::not_found()),
        Err(_) => Err(Problem::unavailable()),
    }
}

/// `POST /admin/v1/clock/resolve` (R-OPS-3; role security): the time source was checked;
/// token issuance resumes. Audited with how long issuance was paused.
async fn post_clock_resolve(
    State(app): State<crate::admin::state::Admin>,
    crate::web::extract::Operator(op): crate::web::extract::Operator,
) -> Result<Response, Problem> {
    require_any(&op, &[Role::Security])?;
    // Recorded before it is cleared: when the record cannot be written, issuance stays
    // paused (fail closed) rather than resuming without a trace.
    let Some(raised) = app.alarm.raised() else {
        return Ok(no_store(json!({ "clock_alarm": "none" })));
    };
    let audit = crate::audit::AuditEvent::new(
        crate::audit::catalogue::SYSTEM_CLOCK_RESOLVED,
        format!("operator:{}", op.person),
        "clock",
        json!({"raised_at": raised, "paused_seconds": app.now() - raised}),
    );
    app.store.append(audit).await.map_err(|_| Problem::unavailable())?;
    app.alarm.resolve();
    Ok(no_store(json!({ "clock_alarm": "resolved", "raised_at": raised })))
}

/// `GET /admin/v1/incidents` (roles security or admin): recorded incidents, newest first.
async fn get_incidents(
    State(app): State<crate::admin::state::Admin>,
    crate::web::extract::Operator(op): crate::web::extract::Operator,
) -> Result<Response, Problem> {
    security_or_admin(&op)?;
    let list = app.store.incidents(500).await.map_err(|_| Problem::unavailable())?;
    Ok(no_store(json!({ "incidents": list })))
}

/// `GET /admin/v1/availability` (roles security or admin): today's availability per
/// service (R-OPS-1: at least 98% of each day).
async fn get_availability(
    State(app): State<crate::admin::state::Admin>,
    crate::web::extract::Operator(op): crate::web::extract::Operator,
) -> Result<Response, Problem> {
    security_or_admin(&op)?;
    let now = app.now();
    let days: Vec<_> = crate::monitor::availability::SERVICES
        .iter()
        .map(|s| app.availability.day(s, now))
        .collect();
    Ok(no_store(json!({ "availability": days })))
}

/// `POST /admin/v1/legal-persons` (role registration, R-REG-5).
async fn post_legal_person(
    State(app): State<crate::admin::state::Admin>,
    crate::web::extract::Operator(op): crate::web::extract::Operator,
    crate::web::extract::JsonBody(body): crate::web::extract::JsonBody<legal::LegalRegistration>,
) -> Result<Response, Problem> {
    let created_legal = legal::register(&app, &Actor::Operator(op), body).await?;
    Ok(created(created_legal))
}

/// `GET /admin/v1/legal-persons?identifier=...`: the legal person and its mandates.
async fn get_legal_person(
    State(app): State<crate::admin::state::Admin>,
    crate::web::extract::Operator(op): crate::web::extract::Operator,
    Query(q): Query<IdentifierQuery>,
) -> Result<Response, Problem> {
    let (found, mandates) = legal::find(&app, &Actor::Operator(op), &q.identifier).await?;
    Ok(no_store(json!({ "legal_person": found, "mandates": mandates })))
}

/// `POST /admin/v1/mandates` (role registration, R-BIND-1).
async fn post_mandate(
    State(app): State<crate::admin::state::Admin>,
    crate::web::extract::Operator(op): crate::web::extract::Operator,
    crate::web::extract::JsonBody(body): crate::web::extract::JsonBody<legal::MandateRequest>,
) -> Result<Response, Problem> {
    let (m, l) = legal::create(&app, &Actor::Operator(op), body).await?;
    Ok(created(legal::view(&app, &m, &l).await?))
}

fn mandate_id(text: &str) -> Result<crate::domain::ids::MandateId, Problem> {
    text.parse().map_err(|_| Problem::not_found())
}

/// `POST /admin/v1/mandates/{id}/delegate` (role registration, R-BIND-1).
async fn post_delegate(
    State(app): State<crate::admin::state::Admin>,
    crate::web::extract::Operator(op): crate::web::extract::Operator,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let id = mandate_id(&id)?;
    let body: legal::DelegationRequest = parse_json(&headers, &body)?;
    let (m, l) = legal::delegate(&app, &Actor::Operator(op), id, body).await?;
    Ok(created(legal::view(&app, &m, &l).await?))
}

/// `POST /admin/v1/mandates/{id}/approve` (role registration, a second officer; R-BIND-1,
/// R-SEC-3): `applied` → `active`.
async fn post_mandate_approve(
    State(app): State<crate::admin::state::Admin>,
    crate::web::extract::Operator(op): crate::web::extract::Operator,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let id = mandate_id(&id)?;
    let (m, l) = legal::approve(&app, &Actor::Operator(op), id).await?;
    Ok(no_store(legal::view(&app, &m, &l).await?))
}

/// `POST /admin/v1/mandates/{id}/suspend|revoke|reactivate` (roles helpdesk or
/// registration, R-BIND-1).
async fn post_mandate_change(
    State(app): State<crate::admin::state::Admin>,
    crate::web::extract::Operator(op): crate::web::extract::Operator,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let id = mandate_id(&id)?;
    let action = match action.as_str() {
        "suspend" => crate::domain::legal::MandateAction::Suspend,
        "revoke" => crate::domain::legal::MandateAction::Revoke,
        "reactivate" => crate::domain::legal::MandateAction::Reactivate,
        _ => return Err(Problem::not_found()),
    };
    let body: legal::MandateChange = parse_json(&headers, &body)?;
    let (m, l) = legal::change(&app, &Actor::Operator(op), id, action, body).await?;
    Ok(no_store(legal::view(&app, &m, &l).await?))
}

/// `GET /admin/v1/loa/caps` (roles admin or security, R-SUP-2).
async fn get_caps(
    State(app): State<crate::admin::state::Admin>,
    crate::web::extract::Operator(op): crate::web::extract::Operator,
) -> Result<Response, Problem> {
    Ok(no_store(legal::caps(&app, &Actor::Operator(op)).await?))
}

/// `PUT /admin/v1/loa/caps` (role admin, R-SUP-2): lowers or withdraws the LoA of kinds
/// of means for new logins, at once, on every instance.
async fn put_caps(
    State(app): State<crate::admin::state::Admin>,
    crate::web::extract::Operator(op): crate::web::extract::Operator,
    crate::web::extract::JsonBody(body): crate::web::extract::JsonBody<legal::CapsChange>,
) -> Result<Response, Problem> {
    Ok(no_store(legal::set_caps(&app, &Actor::Operator(op), body).await?))
}
