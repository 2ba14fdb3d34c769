//! `/api/v1/broadcasts`: one-off messages to a segment's members. Review a draft (members reached, the message
//! rendered for a few, what the policies say about each), schedule it now or at a time, list, cancel.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tutti_core::ErrorCode;
use tutti_core::time::{format_timestamp, parse_timestamp};
use tutti_engine::{Broadcast, BroadcastDraft, BroadcastError, BroadcastReview, Engine};

use crate::admin::{Admin, blocking};
use crate::error::{ApiError, json_body};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DraftBody {
    #[serde(default)]
    pub name: String,
    pub segment: String,
    pub action: String,
    pub with: String,
    #[serde(default)]
    pub category: String,
    /// RFC 3339; now when absent.
    pub send_at: Option<String>,
}

impl DraftBody {
    pub(crate) fn draft(self) -> Result<BroadcastDraft, ApiError> {
        let send_at = match self.send_at.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            None => None,
            Some(t) => Some(parse_timestamp(t).ok_or_else(|| {
                ApiError::new(ErrorCode::InvalidRequest, "`send_at` is an RFC 3339 time, such as 2026-12-24T02:00:00Z")
            })?),
        };
        if self.with.len() > 64 * 1024 || self.name.chars().count() > 200 {
            return Err(ApiError::new(ErrorCode::InvalidRequest, "`with` is at most 64 KB and `name` 200 characters"));
        }
        Ok(BroadcastDraft {
            name: self.name,
            segment: self.segment,
            action: self.action,
            with: self.with,
            category: self.category,
            send_at,
        })
    }
}

pub(crate) fn broadcast_error(e: BroadcastError) -> ApiError {
    match e {
        BroadcastError::Invalid(problems) => {
            let listed: Vec<Value> = problems
                .iter()
                .map(|p| json!({"line": p.pos.line, "column": p.pos.column, "message": p.message, "hint": p.hint}))
                .collect();
            ApiError::new(
                ErrorCode::InvalidDefinition,
                format!("{} problem(s); the first: {}", problems.len(), problems[0]),
            )
            .with("problems", Value::Array(listed))
        }
        BroadcastError::Engine(e) => e.into(),
    }
}

pub(crate) fn shown(b: &Broadcast) -> Value {
    json!({"id": b.id, "name": b.name, "segment": b.segment, "status": b.status, "flow": format!("broadcast-{}", b.id),
           "send_at": format_timestamp(b.send_at), "created_by": b.created_by, "created_at": format_timestamp(b.created_at),
           "total": b.total, "done": b.done, "finished_at": b.finished_at.map(format_timestamp)})
}

pub(crate) fn review_json(r: &BroadcastReview) -> Value {
    let samples: Vec<Value> = r
        .samples
        .iter()
        .map(|s| match &s.rendered {
            Ok(message) => json!({"profile": s.profile.to_string(), "message": message, "policies": s.verdict}),
            Err(e) => json!({"profile": s.profile.to_string(), "error": e, "policies": s.verdict}),
        })
        .collect();
    json!({"members": r.members, "samples": samples})
}

/// `GET /api/v1/broadcasts`: newest first.
pub async fn list(_: Admin, State(engine): State<Arc<Engine>>) -> Result<Json<Value>, ApiError> {
    let all = blocking(move || Ok(engine.broadcasts()?)).await?;
    Ok(Json(json!({"broadcasts": all.iter().map(shown).collect::<Vec<_>>()})))
}

/// `POST /api/v1/broadcasts/review`: what a draft would do now; nothing is stored.
pub async fn review(_: Admin, State(engine): State<Arc<Engine>>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let draft = json_body::<DraftBody>(&body)?.draft()?;
    let review = blocking(move || engine.review_broadcast(&draft).map_err(broadcast_error)).await?;
    Ok(Json(review_json(&review)))
}

/// `POST /api/v1/broadcasts`: schedules a broadcast (marketers); 201 with it.
pub async fn create(
    admin: Admin,
    State(engine): State<Arc<Engine>>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let draft = json_body::<DraftBody>(&body)?.draft()?;
    let by = admin.by();
    let made = blocking(move || engine.create_broadcast(&draft, &by).map_err(broadcast_error)).await?;
    Ok((StatusCode::CREATED, Json(shown(&made))))
}

/// `POST /api/v1/broadcasts/{id}/cancel`: stops a broadcast not yet sent.
pub async fn cancel(
    admin: Admin,
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let by = admin.by();
    let cancelled = blocking(move || Ok(engine.cancel_broadcast(&id, &by)?)).await?;
    if cancelled {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(ErrorCode::NotFound, "no broadcast with this id waits or is sending"))
    }
}
