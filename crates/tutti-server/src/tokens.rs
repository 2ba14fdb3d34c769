//! `/api/v1/tokens`: personal API tokens. Someone signed in makes one (with their session and its CSRF token:
//! a token cannot make tokens), and lists or revokes their own with their session or a token. A token acts as
//! its person with their role (see `Admin`).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use tutti_core::ErrorCode;
use tutti_core::audit::AuditKind;
use tutti_core::time::format_timestamp;
use tutti_engine::{DEFAULT_TOKEN_DAYS, Engine, TokenInfo};

use crate::admin::{Admin, Caller, blocking};
use crate::error::{ApiError, json_body};
use crate::sessions::SignedIn;

pub(crate) fn shown(t: &TokenInfo) -> Value {
    json!({"id": t.id, "name": t.name, "created_at": format_timestamp(t.created_at),
           "last_used": t.last_used.map(format_timestamp), "expires_at": format_timestamp(t.expires_at)})
}

/// The person behind a request: the admin token has none.
fn person(admin: &Admin) -> Result<String, ApiError> {
    match &admin.caller {
        Caller::Person(p) => Ok(p.email.clone()),
        Caller::Token => Err(ApiError::new(
            ErrorCode::NeedsPerson,
            "the admin token has no tokens of its own: sign in, or use a personal token",
        )),
    }
}

/// `GET /api/v1/tokens`: your tokens, newest first (never the tokens themselves).
pub async fn list(admin: Admin, State(engine): State<Arc<Engine>>) -> Result<Json<Value>, ApiError> {
    let email = person(&admin)?;
    let tokens = blocking(move || Ok(engine.people().tokens(&email)?)).await?;
    Ok(Json(json!({"tokens": tokens.iter().map(shown).collect::<Vec<_>>()})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    days: Option<u32>,
}

/// Makes a token for someone signed in and puts it on the audit log; the token, shown this once.
pub(crate) fn make(engine: &Engine, email: &str, name: &str, days: u32) -> Result<(String, TokenInfo), ApiError> {
    let (token, info) = engine.people().create_token(email, name, days)?;
    let detail = json!({"person": email, "change": "token made", "token": info.id, "name": info.name});
    engine.record(AuditKind::People, email, None, None, detail)?;
    Ok((token, info))
}

/// `POST /api/v1/tokens`: `{name, days}` (days 1 to 365, 90 by default); 201 with the token, shown only now.
pub async fn create(
    signed_in: SignedIn,
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    signed_in.check_csrf(&headers)?;
    let b: CreateBody = json_body(&body)?;
    let email = signed_in.session.person.email.clone();
    let (token, info) = blocking(move || make(&engine, &email, &b.name, b.days.unwrap_or(DEFAULT_TOKEN_DAYS))).await?;
    let mut answer = shown(&info);
    answer["token"] = Value::String(token);
    Ok((StatusCode::CREATED, Json(answer)))
}

/// Revokes one of someone's tokens and puts that on the audit log; `false` when they have none such. Blocking.
pub(crate) fn unmake(engine: &Engine, email: &str, id: &str) -> Result<bool, ApiError> {
    let revoked = engine.people().revoke_token(email, id)?;
    if revoked {
        let detail = json!({"person": email, "change": "token revoked", "token": id});
        engine.record(AuditKind::People, email, None, None, detail)?;
    }
    Ok(revoked)
}

/// `DELETE /api/v1/tokens/{id}`: revokes one of your tokens.
pub async fn revoke(
    admin: Admin,
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let email = person(&admin)?;
    let revoked = blocking(move || unmake(&engine, &email, &id)).await?;
    if revoked {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(ErrorCode::UnknownToken, "you have no token with this id"))
    }
}
