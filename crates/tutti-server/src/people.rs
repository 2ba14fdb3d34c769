//! `/api/v1/people`: the people who sign in to the console, and their roles. Admin token only.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tutti_core::ErrorCode;
use tutti_core::audit::AuditKind;
use tutti_engine::people::{PeopleError, Role};
use tutti_engine::{Engine, Person};

use crate::admin::{Admin, blocking};
use crate::error::{ApiError, json_body};

impl From<PeopleError> for ApiError {
    fn from(e: PeopleError) -> ApiError {
        match e {
            PeopleError::Invalid(message) => ApiError::new(ErrorCode::InvalidPerson, message),
            PeopleError::Exists(_) => ApiError::new(ErrorCode::PersonExists, e.to_string()),
            PeopleError::NotFound(_) => ApiError::new(ErrorCode::UnknownPerson, e.to_string()),
            PeopleError::TooManyAttempts { retry_after_ms } => ApiError::new(ErrorCode::TooManyAttempts, e.to_string())
                .with("retry_after_s", json!((retry_after_ms.max(0) as u64).div_ceil(1000))),
            PeopleError::Store(store) => ApiError::internal("people store", store),
        }
    }
}

fn shown(p: &Person) -> Value {
    json!({"email": p.email, "name": p.name, "role": p.role.as_str(), "created_at": p.created_at,
           "password_set_at": p.password_set_at})
}

fn role(text: &str) -> Result<Role, ApiError> {
    Role::parse(text).ok_or_else(|| {
        ApiError::new(ErrorCode::InvalidPerson, format!("`{text}` is not a role: viewer, marketer, approver or admin"))
    })
}

/// `GET /api/v1/people`: everyone, by email.
pub async fn list(_: Admin, State(engine): State<Arc<Engine>>) -> Result<Json<Value>, ApiError> {
    let people = blocking(move || Ok(engine.people().list()?)).await?;
    Ok(Json(json!({"people": people.iter().map(shown).collect::<Vec<_>>()})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    email: String,
    #[serde(default)]
    name: String,
    role: String,
    password: String,
}

/// `POST /api/v1/people`: adds someone with a role and a first password.
pub async fn add(
    admin: Admin,
    State(engine): State<Arc<Engine>>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let b: AddBody = json_body(&body)?;
    let role = role(&b.role)?;
    let person = blocking(move || {
        let person = engine.people().add(&b.email, &b.name, role, &b.password)?;
        let detail = json!({"person": person.email, "change": "added", "role": role.as_str()});
        engine.record(AuditKind::People, &admin.by(), None, None, detail)?;
        Ok(person)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(shown(&person))))
}

/// `GET /api/v1/people/{email}`.
pub async fn get(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    Path(email): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let person = blocking(move || Ok(engine.people().get(&email)?)).await?;
    Ok(Json(shown(&person)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeBody {
    role: Option<String>,
    password: Option<String>,
}

/// `PATCH /api/v1/people/{email}`: a new role, a new password, or both.
pub async fn change(
    admin: Admin,
    State(engine): State<Arc<Engine>>,
    Path(email): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let b: ChangeBody = json_body(&body)?;
    let role = b.role.as_deref().map(role).transpose()?;
    if role.is_none() && b.password.is_none() {
        return Err(ApiError::new(ErrorCode::InvalidPerson, "give a `role`, a `password`, or both"));
    }
    let person = blocking(move || {
        let people = engine.people();
        if let Some(password) = &b.password {
            people.set_password(&email, password)?;
        }
        if let Some(role) = role {
            people.set_role(&email, role)?;
        }
        let person = people.get(&email)?;
        let detail = json!({"person": person.email, "change": "changed", "role": role.map(Role::as_str),
                            "password": b.password.is_some()});
        engine.record(AuditKind::People, &admin.by(), None, None, detail)?;
        Ok(person)
    })
    .await?;
    Ok(Json(shown(&person)))
}

/// `DELETE /api/v1/people/{email}`.
pub async fn remove(
    admin: Admin,
    State(engine): State<Arc<Engine>>,
    Path(email): Path<String>,
) -> Result<StatusCode, ApiError> {
    blocking(move || {
        engine.people().remove(&email)?;
        let detail = json!({"person": email.trim().to_lowercase(), "change": "removed"});
        Ok(engine.record(AuditKind::People, &admin.by(), None, None, detail)?)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
