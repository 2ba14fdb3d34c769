//! The admin API for creatives and creative insights: import exports, list and tag creatives, override tags,
//! and the analysis of which traits win where.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tutti_core::ErrorCode;
use tutti_engine::Engine;
use tutti_insights::import::ImportOptions;
use tutti_insights::service::{self, ServiceError};

use crate::admin::{Admin, bad_query, blocking};
use crate::error::ApiError;

/// Largest CSV accepted through the API; bigger files go through `tutti insights import`, which streams.
const MAX_IMPORT_BYTES: usize = 64 * 1024 * 1024;

fn service_error(e: ServiceError) -> ApiError {
    match e {
        ServiceError::Import(e) => ApiError::new(ErrorCode::InvalidImport, e.to_string()),
        ServiceError::UnknownCreative(id) => ApiError::new(ErrorCode::UnknownCreative, format!("no creative `{id}`")),
        ServiceError::Store(e) => ApiError::internal("creative store", e),
    }
}

fn store_error(e: tutti_store::StoreError) -> ApiError {
    ApiError::internal("creative store", e)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    layout: Option<String>,
    channel: Option<String>,
    competitor: Option<String>,
}

pub async fn import(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    query: Result<Query<ImportQuery>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(bad_query)?;
    let layout = q.layout.map(|l| l.parse()).transpose().map_err(|e: String| bad_query(format!("layout: {e}")))?;
    let bytes = axum::body::to_bytes(body, MAX_IMPORT_BYTES).await.map_err(|_| {
        ApiError::new(
            ErrorCode::RequestTooLarge,
            format!("the CSV is larger than {} MiB; import it with `tutti insights import`", MAX_IMPORT_BYTES >> 20),
        )
    })?;
    let options = ImportOptions { layout, channel: q.channel, competitor: q.competitor };
    let summary = blocking(move || {
        let store = engine.creatives();
        let input = std::io::Cursor::new(bytes.to_vec());
        service::import(&*store, Some(engine.tagger()), input, options, &mut |_| {}).map_err(service_error)
    })
    .await?;
    Ok(Json(serde_json::to_value(summary).map_err(|e| ApiError::internal("import summary", e))?))
}

pub async fn list(_: Admin, State(engine): State<Arc<Engine>>) -> Result<Json<Value>, ApiError> {
    let creatives = blocking(move || engine.creatives().creatives().map_err(store_error)).await?;
    Ok(Json(json!({ "creatives": creatives })))
}

pub async fn get(_: Admin, State(engine): State<Arc<Engine>>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id_for = id.clone();
    let found = blocking(move || engine.creatives().creative(&id_for).map_err(store_error)).await?;
    let creative = found.ok_or_else(|| ApiError::new(ErrorCode::UnknownCreative, format!("no creative `{id}`")))?;
    Ok(Json(serde_json::to_value(creative).map_err(|e| ApiError::internal("creative", e))?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TagBody {
    #[serde(default)]
    all: bool,
}

pub async fn tag(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let request: TagBody = if body.iter().all(u8::is_ascii_whitespace) {
        TagBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::new(ErrorCode::InvalidJson, e.to_string()))?
    };
    let tagged = blocking(move || {
        let store = engine.creatives();
        service::tag(&*store, engine.tagger(), request.all).map_err(service_error)
    })
    .await?;
    Ok(Json(json!({ "tagged": tagged })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualTag {
    value: String,
}

pub async fn set_tag(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    Path((id, name)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let tag: ManualTag = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(ErrorCode::InvalidJson, format!("expected {{\"value\": \"...\"}}: {e}")))?;
    if tag.value.trim().is_empty() || name.trim().is_empty() {
        return Err(ApiError::new(ErrorCode::InvalidJson, "a tag needs a trait name and a non-empty value"));
    }
    let (id_for, name_for, value) = (id.clone(), name.clone(), tag.value.clone());
    blocking(move || {
        let store = engine.creatives();
        service::set_manual_tag(&*store, &id_for, &name_for, &value).map_err(service_error)
    })
    .await?;
    Ok(Json(json!({ "creative": id, "name": name, "value": tag.value, "source": "manual" })))
}

pub async fn clear_tag(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (id_for, name_for) = (id.clone(), name.clone());
    let (exists, cleared) = blocking(move || {
        let store = engine.creatives();
        let exists = store.creative(&id_for).map_err(store_error)?.is_some();
        let cleared = exists && store.clear_manual_tag(&id_for, &name_for).map_err(store_error)?;
        Ok((exists, cleared))
    })
    .await?;
    if !exists {
        return Err(ApiError::new(ErrorCode::UnknownCreative, format!("no creative `{id}`")));
    }
    Ok(Json(json!({ "creative": id, "name": name, "cleared": cleared })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InsightsQuery {
    from: Option<String>,
    to: Option<String>,
    threshold: Option<f64>,
}

pub async fn creatives(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    query: Result<Query<InsightsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Query(q) = query.map_err(bad_query)?;
    let date = |d: Option<String>, what: &str| {
        d.map(|d| tutti_insights::import::parse_date(&d)).transpose().map_err(|e| bad_query(format!("{what}: {e}")))
    };
    let mut options =
        tutti_insights::Options { from: date(q.from, "from")?, to: date(q.to, "to")?, ..Default::default() };
    if let Some(t) = q.threshold {
        if !(0.5..1.0).contains(&t) {
            return Err(bad_query("threshold: a probability from 0.5 up to (not including) 1"));
        }
        options.threshold = t;
    }
    let report = blocking(move || service::analyze(&*engine.creatives(), &options).map_err(service_error)).await?;
    Ok((StatusCode::OK, Json(serde_json::to_value(report).map_err(|e| ApiError::internal("report", e))?)))
}
