//! `/api/v1/questions` (a question in words), `/api/v1/analytics/query` (a structured query, as reports send)
//! and `/api/v1/analytics/metrics` (the metrics layer in force). Questions change nothing, so every role may ask.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde::Deserialize;
use serde_json::Value;
use tutti_core::ErrorCode;
use tutti_core::time::parse_timestamp;
use tutti_engine::{AskError, Engine};

use crate::admin::{Admin, blocking};
use crate::error::{ApiError, json_body};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuestionBody {
    question: String,
    /// The instant the question is asked at (RFC 3339); the server's clock when absent.
    #[serde(default)]
    now: Option<String>,
    /// The IANA time zone periods are read in; `[analytics] time_zone` when absent.
    #[serde(default)]
    time_zone: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryBody {
    query: tutti_analytics::Query,
    /// The language of the answer's sentence: en, vi or zh.
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    time_zone: Option<String>,
}

pub(crate) fn ask_error(e: AskError) -> ApiError {
    match e {
        AskError::NotUnderstood(message) => ApiError::new(ErrorCode::QuestionNotUnderstood, message),
        AskError::Invalid(message) => ApiError::new(ErrorCode::InvalidRequest, message),
        AskError::Failed(message) if message.contains("longer than") => ApiError::new(ErrorCode::QueryTimeout, message),
        AskError::Failed(message) => {
            tracing::error!(error = %message, "a question's query failed");
            ApiError::new(ErrorCode::Internal, "the query failed; details are in the server log")
        }
    }
}

/// `POST /api/v1/questions`: `{"question", "now"?, "time_zone"?}` → the answer, or 422 with what can be asked.
pub async fn ask(_: Admin, State(engine): State<Arc<Engine>>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let body = json_body::<QuestionBody>(&body)?;
    if body.question.trim().is_empty() || body.question.chars().count() > tutti_analytics::ask::MAX_QUESTION_CHARS {
        return Err(ApiError::new(ErrorCode::InvalidRequest, "`question` is 1 to 1,000 characters"));
    }
    let now = match body.now.as_deref() {
        None => None,
        Some(t) => Some(parse_timestamp(t).ok_or_else(|| {
            ApiError::new(ErrorCode::InvalidRequest, "`now` is an RFC 3339 instant, such as 2026-12-05T09:00:00+07:00")
        })?),
    };
    let answer =
        blocking(move || Ok(engine.ask(&body.question, now, body.time_zone.as_deref()))).await?.map_err(ask_error)?;
    Ok(Json(serde_json::to_value(answer).expect("an answer serialises")))
}

/// `POST /api/v1/analytics/query`: a structured query → the answer.
pub async fn query(_: Admin, State(engine): State<Arc<Engine>>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let body = json_body::<QueryBody>(&body)?;
    let lang = body.language.unwrap_or_else(|| "en".into());
    let answer = blocking(move || Ok(engine.run_query(body.query, &lang, body.time_zone.as_deref())))
        .await?
        .map_err(ask_error)?;
    Ok(Json(serde_json::to_value(answer).expect("an answer serialises")))
}

/// `GET /api/v1/analytics/metrics`: the measures, dimensions and grains in force.
pub async fn metrics(_: Admin, State(engine): State<Arc<Engine>>) -> Json<Value> {
    Json(serde_json::to_value(engine.metrics_layer()).expect("the layer serialises"))
}

/// `POST /api/v1/analytics/rebuild` (admins): empties the analytics tables, which are then made again from the
/// log; `GET /api/v1/analytics/status` follows it.
pub async fn rebuild(
    _: Admin,
    State(engine): State<Arc<Engine>>,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
    blocking(move || Ok(engine.rebuild_analytics()?)).await?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(serde_json::json!({"rebuilding": true}))))
}

/// `GET /api/v1/analytics/status`: how far the analytics tables have come.
pub async fn status(_: Admin, State(engine): State<Arc<Engine>>) -> Result<Json<Value>, ApiError> {
    let (projected, processed, head) = blocking(move || Ok(engine.analytics_status()?)).await?;
    Ok(Json(serde_json::json!({"projected": projected, "processed": processed, "head": head})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// The attribution window (`7d`, `48h`); the flow goal's `within` when absent.
    #[serde(default)]
    window: Option<String>,
}

/// `GET /api/v1/flows/{id}/report`: per version, runs entered and how they ended, each step's outcomes, goal
/// conversion with its 95% interval, each split's arms against the control with the difference's interval,
/// and order revenue within the attribution window.
pub async fn flow_report(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    crate::admin::ApiQuery(query): crate::admin::ApiQuery<ReportQuery>,
) -> Result<Json<Value>, ApiError> {
    let window = match query.window.as_deref() {
        None => None,
        Some(w) => match tutti_core::time::parse_duration(w) {
            Ok(ms) if ms > 0 && ms <= 366 * 86_400_000 => Some(ms),
            _ => return Err(ApiError::new(ErrorCode::InvalidQuery, "`window` is a duration up to 366d, such as 7d")),
        },
    };
    let id_for = id.clone();
    let report = blocking(move || Ok(engine.flow_report(&id_for, window)?)).await?;
    match report {
        Some(r) => Ok(Json(serde_json::to_value(r).expect("a report serialises"))),
        None => Err(ApiError::new(ErrorCode::UnknownFlow, format!("no flow `{id}`"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessagesQuery {
    /// One step of the flow; all its messages when absent.
    #[serde(default)]
    step: Option<String>,
    /// RFC 3339; 30 days before `until` when absent.
    #[serde(default)]
    since: Option<String>,
    /// RFC 3339; now when absent.
    #[serde(default)]
    until: Option<String>,
    #[serde(default)]
    time_zone: Option<String>,
}

/// `GET /api/v1/flows/{id}/messages`: a flow's messages day by day: sent, delivered, failed, opened, clicked,
/// the rates, and the channel's bounces, unsubscribes and complaints beside them.
pub async fn messages(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    crate::admin::ApiQuery(query): crate::admin::ApiQuery<MessagesQuery>,
) -> Result<Json<Value>, ApiError> {
    if !engine.flow_definitions().flows.contains_key(&id) {
        return Err(ApiError::new(ErrorCode::UnknownFlow, format!("no flow `{id}`")));
    }
    let time = |t: &Option<String>, name: &str| -> Result<Option<i64>, ApiError> {
        match t.as_deref() {
            None => Ok(None),
            Some(t) => parse_timestamp(t)
                .map(Some)
                .ok_or_else(|| ApiError::new(ErrorCode::InvalidQuery, format!("`{name}` is an RFC 3339 instant"))),
        }
    };
    let until = time(&query.until, "until")?.unwrap_or_else(|| engine.clock.now_ms());
    let since = time(&query.since, "since")?.unwrap_or(until - 30 * 86_400_000);
    if since >= until || until - since > 400 * 86_400_000 {
        return Err(ApiError::new(ErrorCode::InvalidQuery, "`since` comes before `until`, at most 400 days before"));
    }
    let report = blocking(move || {
        Ok(engine.message_report(&id, query.step.as_deref(), since, until, query.time_zone.as_deref()))
    })
    .await?
    .map_err(ask_error)?;
    Ok(Json(serde_json::to_value(report).expect("a report serialises")))
}
