//! The admin API under `/api/v1/`, authenticated with the bearer admin token.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{FromRequestParts, MatchedPath, Path, Query, State};
use axum::http::header;
use axum::http::request::Parts;
use serde::Deserialize;
use serde_json::{Value, json};
use tutti_core::audit::AuditKind;
use tutti_core::time::format_timestamp;
use tutti_core::{ErrorCode, ProfileId};
use tutti_engine::Engine;
use tutti_store::StoredEvent;

use crate::error::{ApiError, secret_eq};
use tutti_engine::people::Role;

/// Proof that the request may use this route of the admin API: it carried the admin token, or a personal API
/// token or the session of someone whose role the route allows ([`needed_role`]) (a session with its CSRF token
/// when it changes something).
pub struct Admin {
    pub caller: Caller,
}

impl Admin {
    /// Who the audit log names for this request: the person's email, or `admin token`.
    pub fn by(&self) -> String {
        match &self.caller {
            Caller::Token => "admin token".to_owned(),
            Caller::Person(person) => person.email.clone(),
        }
    }
}

/// Who made an admin API request.
pub enum Caller {
    /// The admin token: the installation itself (the CLI on its machine, scripts).
    Token,
    /// A person: signed in, or with their personal API token.
    Person(tutti_engine::Person),
}

/// The least role that may use a route: reading is for everyone signed in; changing flows, definitions,
/// creatives and dead letters is for marketers; deciding approvals and budget proposals for approvers; people,
/// erasure, the audit log and connector checks for admins.
pub fn needed_role(method: &axum::http::Method, route: &str) -> Role {
    use axum::http::Method;
    // Everyone manages their own tokens.
    if route.starts_with("/api/v1/tokens") {
        return Role::Viewer;
    }
    let admin_only = route.starts_with("/api/v1/people")
        || route.starts_with("/api/v1/audit")
        || route.starts_with("/api/v1/connectors/")
        || route == "/api/v1/analytics/rebuild"
        || (route == "/api/v1/profiles/{key}" && method == Method::DELETE);
    if admin_only {
        return Role::Admin;
    }
    if route.starts_with("/api/v1/approvals/")
        || route == "/api/v1/insights/budget/proposals/{id}/{verdict}"
        || route == "/api/v1/plans/{id}/{verdict}"
    {
        return Role::Approver;
    }
    // A preview changes nothing: anyone who may read a flow may see what an edit of it would do. Questions
    // change nothing either.
    let previews =
        ["/api/v1/flows/{id}/preview", "/api/v1/broadcasts/review", "/api/v1/questions", "/api/v1/analytics/query"];
    if method == Method::GET || method == Method::HEAD || previews.contains(&route) {
        return Role::Viewer;
    }
    Role::Marketer
}

impl FromRequestParts<Arc<Engine>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, engine: &Arc<Engine>) -> Result<Admin, ApiError> {
        if carries_admin_token(&parts.headers, engine) {
            return Ok(Admin { caller: Caller::Token });
        }
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map_or_else(|| parts.uri.path().to_owned(), |m| m.as_str().to_owned());
        let needed = needed_role(&parts.method, &route);
        // A personal token acts as its person, with no CSRF token: no browser sends it by itself.
        if let Some(token) = bearer(&parts.headers).filter(|t| t.starts_with(tutti_engine::TOKEN_PREFIX)) {
            let (engine_for, token) = (engine.clone(), token.to_owned());
            let person = blocking(move || Ok(engine_for.people().person_for_token(&token)?)).await?;
            let Some(person) = person else {
                engine.metrics.reject(ErrorCode::Unauthorized, 1);
                return Err(ApiError::new(
                    ErrorCode::Unauthorized,
                    "the personal token is unknown, revoked or expired",
                ));
            };
            return allowed(engine, person, needed);
        }
        if crate::sessions::cookie(&parts.headers, crate::sessions::COOKIE).is_none() {
            engine.metrics.reject(ErrorCode::Unauthorized, 1);
            return Err(ApiError::new(
                ErrorCode::Unauthorized,
                "missing or invalid token: send Authorization: Bearer <admin or personal token>, or sign in",
            ));
        }
        let signed_in =
            <crate::sessions::SignedIn as FromRequestParts<Arc<Engine>>>::from_request_parts(parts, engine).await?;
        let admin = allowed(engine, signed_in.session.person.clone(), needed)?;
        let safe = parts.method == axum::http::Method::GET || parts.method == axum::http::Method::HEAD;
        if !safe {
            signed_in.check_csrf(&parts.headers)?;
        }
        Ok(admin)
    }
}

/// A person may use the route when their role is at least the one it needs.
fn allowed(engine: &Engine, person: tutti_engine::Person, needed: Role) -> Result<Admin, ApiError> {
    if person.role < needed {
        engine.metrics.reject(ErrorCode::Forbidden, 1);
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("this needs the role {} or above; {} is {}", needed.as_str(), person.email, person.role.as_str()),
        ));
    }
    Ok(Admin { caller: Caller::Person(person) })
}

/// Who may ask what a website shows: the admin token, or the site itself with the write key (HTTP Basic, as the
/// tracking API). `admin` says which; the site is held to what it may ask.
pub struct AdminOrSite {
    pub admin: bool,
}

impl FromRequestParts<Arc<Engine>> for AdminOrSite {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, engine: &Arc<Engine>) -> Result<AdminOrSite, ApiError> {
        if carries_admin_token(&parts.headers, engine) {
            return Ok(AdminOrSite { admin: true });
        }
        let site = crate::tracking::header_auth(&parts.headers, &engine.secrets.write_key);
        if matches!(site, crate::tracking::HeaderAuth::Valid) {
            return Ok(AdminOrSite { admin: false });
        }
        engine.metrics.reject(ErrorCode::Unauthorized, 1);
        Err(ApiError::new(ErrorCode::Unauthorized, "send the admin token (Bearer) or the write key (HTTP Basic)"))
    }
}

/// The token of the request's `Authorization: Bearer`, if any.
pub(crate) fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
}

/// Whether the request's `Authorization: Bearer` is the admin token (compared in constant time).
pub(crate) fn carries_admin_token(headers: &axum::http::HeaderMap, engine: &Engine) -> bool {
    bearer(headers).is_some_and(|t| secret_eq(t.as_bytes(), engine.secrets.admin_token.as_bytes()))
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::internal("blocking task failed", e))?
}

pub(crate) fn find(engine: &Engine, key: &str) -> Result<ProfileId, ApiError> {
    if tutti_profiles::identity::placeholder_kind(key).is_some() {
        return Err(ApiError::new(ErrorCode::ProfileNotFound, format!("no profile matches {key:?}")));
    }
    let parsed = engine.parse_key(key).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidProfileKey,
            format!("{key:?} is not a profile key: use a profile id (p42) or type:value (user_id:42, anonymous_id:abc, email:a@b.c, phone:+84912345678)"),
        )
    })?;
    engine
        .resolve_key(&parsed)?
        .ok_or_else(|| ApiError::new(ErrorCode::ProfileNotFound, format!("no profile matches {key:?}")))
}

pub(crate) fn bad_query(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::InvalidQuery, e.to_string())
}

/// A query string read into `T`; a malformed one answers `invalid_query`, naming what is wrong. Listed after
/// [`Admin`] in a handler's arguments, so a request without the token is refused before its query is read.
pub struct ApiQuery<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<ApiQuery<T>, ApiError> {
        let Query(query) = Query::<T>::from_request_parts(parts, state).await.map_err(bad_query)?;
        Ok(ApiQuery(query))
    }
}

/// A page size from the query: `default` when absent, an error naming the range when outside 1..=`most`
/// (as the OpenAPI document declares it) rather than a silent clamp.
pub(crate) fn page_limit(given: Option<usize>, default: usize, most: usize) -> Result<usize, ApiError> {
    let limit = given.unwrap_or(default);
    if !(1..=most).contains(&limit) {
        return Err(bad_query(format!("limit must be between 1 and {most}")));
    }
    Ok(limit)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileQuery {
    /// Wait until every event received before this request is reflected (read-your-writes).
    #[serde(default)]
    consistent: bool,
}

const CONSISTENT_WAIT: Duration = Duration::from_secs(10);

pub async fn get_profile(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    Path(key): Path<String>,
    ApiQuery(query): ApiQuery<ProfileQuery>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        if query.consistent && !engine.sync(CONSISTENT_WAIT) {
            return Err(ApiError::new(ErrorCode::Unavailable, "profiles did not catch up within 10 s; retry"));
        }
        let id = find(&engine, &key)?;
        let profile = engine
            .profile(id)?
            .ok_or_else(|| ApiError::new(ErrorCode::ProfileNotFound, format!("no profile matches {key:?}")))?;
        Ok(Json(profile.to_public_json()))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    limit: Option<usize>,
    before: Option<u64>,
}

fn event_json(e: &StoredEvent) -> Value {
    let event: Value = serde_json::from_slice(&e.body).unwrap_or(Value::Null);
    json!({"seq": e.seq, "received_at": format_timestamp(e.received_at), "event": event})
}

pub async fn profile_events(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    Path(key): Path<String>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = page_limit(query.limit, 100, 1000)?;
    blocking(move || {
        let id = find(&engine, &key)?;
        let events = engine.profile_events(id, query.before, limit)?;
        let next = (events.len() == limit).then(|| events.last().map(|e| e.seq)).flatten();
        Ok(Json(json!({
            "profile": id.to_string(),
            "events": events.iter().map(event_json).collect::<Vec<_>>(),
            "next_before": next,
        })))
    })
    .await
}

/// `GET /api/v1/profiles/{key}/segments`: the segments in force the profile is a member of.
pub async fn profile_segments(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let id = find(&engine, &key)?;
        Ok(Json(json!({"profile": id.to_string(), "segments": engine.segments_of(id)?})))
    })
    .await
}

pub async fn profile_merges(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let id = find(&engine, &key)?;
        let merges: Vec<Value> = engine
            .merges(id)?
            .iter()
            .map(|m| {
                json!({"into": m.into.to_string(), "from": m.from.to_string(), "at": format_timestamp(m.at),
                       "seq": m.seq, "message_id": m.message_id})
            })
            .collect();
        Ok(Json(json!({"profile": id.to_string(), "merges": merges})))
    })
    .await
}

/// Erases a profile and puts the erasure on the audit log with who asked (`by`); `None` when the profile is
/// gone already.
pub(crate) async fn erase_noted(
    engine: &Arc<Engine>,
    id: ProfileId,
    by: String,
) -> Result<Option<tutti_engine::ErasureReport>, ApiError> {
    let Some(report) = engine.erase(id).await? else { return Ok(None) };
    let counts = json!({"identities": report.identities, "events": report.events});
    let engine = engine.clone();
    blocking(move || Ok(engine.record(AuditKind::Erasure, &by, None, Some(id), counts)?)).await?;
    Ok(Some(report))
}

pub async fn delete_profile(
    admin: Admin,
    State(engine): State<Arc<Engine>>,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = {
        let engine = engine.clone();
        blocking(move || {
            engine.sync(CONSISTENT_WAIT);
            find(&engine, &key)
        })
        .await?
    };
    match erase_noted(&engine, id, admin.by()).await? {
        Some(report) => Ok(Json(json!({
            "erased": report.profile.to_string(),
            "identities": report.identities,
            "events": report.events,
        }))),
        None => Err(ApiError::new(ErrorCode::ProfileNotFound, format!("profile {id} no longer exists"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TailQuery {
    after: Option<u64>,
    limit: Option<usize>,
}

/// The global log, oldest first after `after`; without `after`, the newest `limit` events.
pub async fn events(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    ApiQuery(query): ApiQuery<TailQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = page_limit(query.limit, 100, 1000)?;
    blocking(move || {
        let head = engine.log_head();
        let after = query.after.unwrap_or_else(|| head.saturating_sub(limit as u64));
        let events = engine.events_after(after, limit)?;
        let next = events.last().map_or(after.max(head.min(after)), |e| e.seq);
        Ok(Json(json!({"events": events.iter().map(event_json).collect::<Vec<_>>(), "next_after": next, "head": head})))
    })
    .await
}

pub async fn metrics(_: Admin, State(engine): State<Arc<Engine>>) -> ([(header::HeaderName, &'static str); 1], String) {
    let mut text = engine.metrics.render();
    let ai = engine.connectors().ai_stats();
    if !ai.is_empty() {
        use std::fmt::Write;
        let label = |flow: &str| flow.replace('\\', "\\\\").replace('"', "\\\"");
        for (name, help, pick) in [
            ("tutti_ai_messages_total", "Messages written by generate steps.", 0),
            ("tutti_ai_first_pass_total", "Generated messages whose chosen variant passed review without revision.", 1),
            ("tutti_ai_final_pass_total", "Generated messages that passed review, revised or not.", 2),
            (
                "tutti_ai_fallbacks_total",
                "Generated messages the local provider wrote because the model failed or was over budget.",
                3,
            ),
        ] {
            let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} counter");
            for (flow, c) in &ai {
                let v = [c.messages, c.first_pass, c.final_pass, c.fallbacks][pick];
                let _ = writeln!(text, "{name}{{flow=\"{}\"}} {v}", label(flow));
            }
        }
    }
    // Counted in the store when scraped (an index scan), so it is exact across restarts.
    let pending = tokio::task::spawn_blocking({
        let engine = engine.clone();
        move || engine.pending_timers().map_err(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    match pending {
        Ok(n) => text.push_str(&format!(
            "# HELP tutti_timers_pending Profiles with a timer set.\n# TYPE tutti_timers_pending gauge\ntutti_timers_pending {n}\n"
        )),
        Err(e) => tracing::warn!(error = %e, "cannot count pending timers for /metrics"),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
}

/// `GET /api/v1/workers`: the workers sharing the event log and each partition's lease; `{"workers": [],
/// "partitions": []}` when this process has the log alone.
pub async fn workers(_: Admin, State(engine): State<Arc<Engine>>) -> Result<Json<Value>, ApiError> {
    let view = blocking(move || Ok(engine.cluster()?)).await?;
    Ok(Json(match view {
        Some(view) => serde_json::to_value(view).map_err(|e| ApiError::internal("showing the workers", e))?,
        None => json!({"workers": [], "partitions": [], "lease_ms": 0}),
    }))
}
