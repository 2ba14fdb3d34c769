//! Settings: the person's own time zone and personal API tokens; the connectors (configured or not, what each flow needs and lacks,
//! and for admins a health check that goes the way a real send would); and for admins the people who sign
//! in, their roles, a new person, removal and signing someone out everywhere.
//!
//! The JSON of the same: `GET /api/v1/connectors`, `GET /api/v1/connectors/{name}/health`,
//! `/api/v1/people[/{email}]`, `DELETE /api/v1/people/{email}/sessions`.

use std::collections::BTreeSet;
use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;
use tutti_core::audit::AuditKind;
use tutti_engine::Engine;
use tutti_engine::people::Role;
use tutti_flows::def::StepKind;

use super::{Lang, Who, Words, Zone, may_post, page, secured, to_sign_in};
use crate::admin::blocking;
use crate::sessions::SignedIn;

/// Zones offered in the chooser; any other IANA name may be typed.
const ZONES: [&str; 8] = [
    "UTC",
    "Asia/Ho_Chi_Minh",
    "Asia/Shanghai",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Europe/London",
    "America/New_York",
    "America/Los_Angeles",
];

struct ConnectorRow {
    name: &'static str,
    channel: &'static str,
    operations: String,
    configured: bool,
    needed_by: Vec<String>,
}

struct TokenRow {
    id: String,
    name: String,
    created: String,
    last_used: String,
    expires: String,
}

struct PersonRow {
    email: String,
    name: String,
    role: &'static str,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    lang: &'static str,
    title: &'static str,
    words: &'static Words,
    who: Who,
    zone: String,
    zones: Vec<&'static str>,
    tokens: Vec<TokenRow>,
    new_token: Option<String>,
    connectors: Vec<ConnectorRow>,
    lacking: Vec<(String, String)>,
    people: Vec<PersonRow>,
    roles: Vec<&'static str>,
    is_admin: bool,
    notice: Option<String>,
    problem: Option<String>,
}

#[derive(Deserialize)]
pub struct Notice {
    checked: Option<String>,
    ok: Option<bool>,
    why: Option<String>,
    done: Option<String>,
    problem: Option<String>,
}

/// `GET /settings`.
pub async fn show(
    signed_in: Option<SignedIn>,
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    Query(notice): Query<Notice>,
) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    render(engine, &headers, &signed_in, notice, None).await
}

async fn render(
    engine: Arc<Engine>,
    headers: &HeaderMap,
    signed_in: &SignedIn,
    notice: Notice,
    new_token: Option<String>,
) -> Response {
    let lang = Lang::of(headers);
    let zone = Zone::of(headers);
    let words = lang.words();
    let is_admin = signed_in.session.person.role >= Role::Admin;
    let registry = engine.connectors().registry();
    let defs = engine.flow_definitions();
    let mut connectors = Vec::new();
    let mut lacking = Vec::new();
    for kind in tutti_connectors::ALL {
        let configured = registry.get(kind.name).is_some();
        let mut needed_by = BTreeSet::new();
        for flow in defs.current_flows().filter(|f| !f.retired) {
            let uses = flow.steps.iter().any(|s| match &s.kind {
                StepKind::Action(a) => a.connector == kind.name,
                StepKind::Generate(_) => kind.name == "ai",
                _ => false,
            });
            if uses {
                needed_by.insert(flow.id.clone());
                if !configured {
                    lacking.push((flow.id.clone(), kind.name.to_owned()));
                }
            }
        }
        connectors.push(ConnectorRow {
            name: kind.name,
            channel: kind.channel,
            operations: kind.operation_names().join(", "),
            configured,
            needed_by: needed_by.into_iter().collect(),
        });
    }
    let email = signed_in.session.person.email.clone();
    let tokens = {
        let engine = engine.clone();
        match blocking(move || Ok(engine.people().tokens(&email)?)).await {
            Ok(tokens) => tokens
                .iter()
                .map(|t| TokenRow {
                    id: t.id.clone(),
                    name: t.name.clone(),
                    created: zone.show(t.created_at),
                    last_used: t.last_used.map(|at| zone.show(at)).unwrap_or_default(),
                    expires: zone.show(t.expires_at),
                })
                .collect(),
            Err(e) => return secured(e.into_response()),
        }
    };
    let people = if is_admin {
        let engine = engine.clone();
        match blocking(move || Ok(engine.people().list()?)).await {
            Ok(people) => {
                people.into_iter().map(|p| PersonRow { email: p.email, name: p.name, role: p.role.as_str() }).collect()
            }
            Err(e) => return secured(e.into_response()),
        }
    } else {
        Vec::new()
    };
    let notice_text = match (&notice.checked, notice.ok) {
        (Some(name), Some(true)) => Some(format!("{name}: {}", words.check_ok)),
        (Some(name), _) => Some(format!("{name}: {} {}", words.check_failed, notice.why.clone().unwrap_or_default())),
        (None, _) => notice.done.as_ref().map(|d| format!("{} {d}", words.done)),
    };
    page(&SettingsPage {
        lang: lang.code(),
        title: words.settings,
        words,
        who: Who::of(&signed_in.session),
        zone: zone.name().to_owned(),
        zones: ZONES.to_vec(),
        tokens,
        new_token,
        connectors,
        lacking,
        people,
        roles: Role::ALL.iter().map(|r| r.as_str()).collect(),
        is_admin,
        notice: notice_text,
        problem: notice.problem,
    })
}

#[derive(Deserialize)]
pub struct ZoneForm {
    csrf: String,
    zone: String,
}

/// `POST /settings/zone`: the person's time zone, kept in a cookie for a year.
pub async fn choose_zone(signed_in: Option<SignedIn>, headers: HeaderMap, Form(form): Form<ZoneForm>) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    if !may_post(&signed_in, Role::Viewer, &form.csrf, &headers) {
        return secured(StatusCode::FORBIDDEN.into_response());
    }
    let words = Lang::of(&headers).words();
    let Some(zone) = Zone::named(form.zone.trim()) else {
        let to = format!("/settings?problem={}", super::deliveries::escape_query(words.unknown_zone));
        return secured(Redirect::to(&to).into_response());
    };
    let mut response = Redirect::to("/settings").into_response();
    let cookie = format!("tutti_zone={}; Path=/; SameSite=Lax; Max-Age=31536000", zone.name());
    match HeaderValue::from_str(&cookie) {
        Ok(value) => {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
        Err(_) => return secured(StatusCode::BAD_REQUEST.into_response()),
    }
    secured(response)
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// Whether an admin's form may go ahead.
fn admin_form(signed_in: &SignedIn, csrf: &str, headers: &HeaderMap) -> bool {
    may_post(signed_in, Role::Admin, csrf, headers)
}

#[derive(Deserialize)]
pub struct TokenForm {
    csrf: String,
    name: String,
    #[serde(default)]
    days: Option<u32>,
}

/// `POST /settings/tokens`: a personal API token for the person signed in, shown on the page this once.
pub async fn create_token(
    signed_in: Option<SignedIn>,
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    if !may_post(&signed_in, Role::Viewer, &form.csrf, &headers) {
        return secured(StatusCode::FORBIDDEN.into_response());
    }
    let email = signed_in.session.person.email.clone();
    let days = form.days.unwrap_or(tutti_engine::DEFAULT_TOKEN_DAYS);
    let made = {
        let engine = engine.clone();
        blocking(move || crate::tokens::make(&engine, &email, &form.name, days)).await
    };
    let empty = || Notice { checked: None, ok: None, why: None, done: None, problem: None };
    match made {
        Ok((token, _)) => render(engine, &headers, &signed_in, empty(), Some(token)).await,
        Err(e) if e.code == tutti_core::ErrorCode::InvalidPerson => {
            render(engine, &headers, &signed_in, Notice { problem: Some(e.message), ..empty() }, None).await
        }
        Err(e) => secured(e.into_response()),
    }
}

/// `POST /settings/tokens/{id}/revoke`: revokes one of the person's own tokens.
pub async fn revoke_token(
    signed_in: Option<SignedIn>,
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    if !may_post(&signed_in, Role::Viewer, &form.csrf, &headers) {
        return secured(StatusCode::FORBIDDEN.into_response());
    }
    let email = signed_in.session.person.email.clone();
    let revoked = blocking(move || crate::tokens::unmake(&engine, &email, &id)).await;
    match revoked {
        Ok(_) => secured(Redirect::to("/settings#tokens").into_response()),
        Err(e) => secured(e.into_response()),
    }
}

/// `POST /settings/connectors/{name}/check`: admins only.
pub async fn check_connector(
    signed_in: Option<SignedIn>,
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    if !admin_form(&signed_in, &form.csrf, &headers) {
        return secured(StatusCode::FORBIDDEN.into_response());
    }
    let escape = super::deliveries::escape_query;
    let to = match engine.connectors().check(&name).await {
        None => format!("/settings?checked={}&ok=false&why={}", escape(&name), escape("not configured")),
        Some(Ok(_)) => format!("/settings?checked={}&ok=true", escape(&name)),
        Some(Err(failure)) => {
            let why: String = failure.message().chars().take(300).collect();
            format!("/settings?checked={}&ok=false&why={}", escape(&name), escape(&why))
        }
    };
    secured(Redirect::to(&to).into_response())
}

#[derive(Deserialize)]
pub struct PersonForm {
    csrf: String,
    /// `add`, `role`, `remove` or `sign_out`.
    change: String,
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

/// `POST /settings/people`: an admin adds someone, gives them another role, removes them or signs them out
/// everywhere. Each change goes on the audit log with the admin's email.
pub async fn change_person(
    signed_in: Option<SignedIn>,
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    Form(form): Form<PersonForm>,
) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    if !admin_form(&signed_in, &form.csrf, &headers) {
        return secured(StatusCode::FORBIDDEN.into_response());
    }
    let by = signed_in.session.person.email.clone();
    let done = blocking(move || {
        let people = engine.people();
        let role = Role::parse(&form.role);
        let outcome = match (form.change.as_str(), role) {
            ("add", Some(role)) => people.add(&form.email, &form.name, role, &form.password).map(|_| "added"),
            ("role", Some(role)) => people.set_role(&form.email, role).map(|()| "changed"),
            ("remove", _) => people.remove(&form.email).map(|()| "removed"),
            ("sign_out", _) => people.sign_out_everywhere(&form.email).map(|_| "signed out everywhere"),
            _ => return Ok(Err("unknown change".to_owned())),
        };
        match outcome {
            Ok(change) => {
                let detail = json!({"person": form.email.trim().to_lowercase(), "change": change,
                                    "role": role.map(Role::as_str)});
                engine.record(AuditKind::People, &by, None, None, detail)?;
                Ok(Ok(change))
            }
            Err(tutti_engine::people::PeopleError::Store(e)) => Err(crate::error::ApiError::internal("people", e)),
            Err(e) => Ok(Err(e.to_string())),
        }
    })
    .await;
    let escape = super::deliveries::escape_query;
    match done {
        Ok(Ok(change)) => secured(Redirect::to(&format!("/settings?done={}#people", escape(change))).into_response()),
        Ok(Err(why)) => secured(Redirect::to(&format!("/settings?problem={}#people", escape(&why))).into_response()),
        Err(e) => secured(e.into_response()),
    }
}
