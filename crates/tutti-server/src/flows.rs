//! The admin API for flows, segments and policies (YAML in, versions out), runs, segment members, the outbox
//! and the JSON Schemas editors use.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tutti_core::time::format_timestamp;
use tutti_core::{ErrorCode, ProfileId};
use tutti_engine::{DefinitionError, Engine};

use crate::admin::{Admin, ApiQuery, bad_query, blocking, find};
use crate::error::ApiError;

/// The JSON Schemas of the three kinds of definition, kept in `crates/tutti-server/schemas/`.
pub const SCHEMAS: [(&str, &str); 3] = [
    ("flow", include_str!("../schemas/flow.json")),
    ("segment", include_str!("../schemas/segment.json")),
    ("policy", include_str!("../schemas/policy.json")),
];

/// `/api/v1/flows/{id}` -> `flow`, and the code for "no such one".
fn kind_of(matched: &MatchedPath) -> Result<(&'static str, ErrorCode), ApiError> {
    match matched.as_str().split('/').nth(3).unwrap_or("") {
        "flows" => Ok(("flow", ErrorCode::UnknownFlow)),
        "segments" => Ok(("segment", ErrorCode::UnknownSegment)),
        "policies" => Ok(("policy", ErrorCode::UnknownPolicy)),
        _ => Err(ApiError::new(ErrorCode::NotFound, "no such route")),
    }
}

fn definition_error(e: DefinitionError) -> ApiError {
    match e {
        DefinitionError::Invalid(problems) => {
            let list: Vec<Value> = problems
                .iter()
                .map(|p| {
                    json!({"line": p.pos.line, "column": p.pos.column, "pointer": p.pointer, "message": p.message,
                           "hint": p.hint})
                })
                .collect();
            let first = problems.first().map(ToString::to_string).unwrap_or_default();
            ApiError::new(ErrorCode::InvalidDefinition, format!("{} problem(s); the first: {first}", problems.len()))
                .with("problems", Value::Array(list))
        }
        DefinitionError::Engine(e) => e.into(),
        other => ApiError::new(ErrorCode::InvalidDefinition, other.to_string()),
    }
}

pub async fn list(_: Admin, State(engine): State<Arc<Engine>>, matched: MatchedPath) -> Result<Json<Value>, ApiError> {
    let (kind, _) = kind_of(&matched)?;
    let plural = matched.as_str().rsplit('/').next().unwrap_or("items").to_owned();
    let items = blocking(move || Ok(engine.definitions(kind)?)).await?;
    let items: Vec<Value> = items
        .iter()
        .map(|d| json!({"id": d.id, "version": d.version, "updated_at": format_timestamp(d.created_at)}))
        .collect();
    Ok(Json(json!({ plural: items })))
}

pub async fn get(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    matched: MatchedPath,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (kind, missing) = kind_of(&matched)?;
    let found = blocking(move || Ok(engine.definitions(kind)?)).await?.into_iter().find(|d| d.id == id);
    let d = found.ok_or_else(|| ApiError::new(missing, format!("no {kind} `{id}`")))?;
    Ok(Json(json!({"id": d.id, "kind": d.kind, "version": d.version, "updated_at": format_timestamp(d.created_at),
                   "source": d.source})))
}

pub async fn put(
    admin: Admin,
    State(engine): State<Arc<Engine>>,
    matched: MatchedPath,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (kind, _) = kind_of(&matched)?;
    let source = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::new(ErrorCode::InvalidDefinition, "the body must be YAML text in UTF-8"))?;
    let id_for = id.clone();
    let version =
        blocking(move || engine.put_definition(kind, &id_for, &source, Some(&admin.by())).map_err(definition_error))
            .await?;
    Ok((StatusCode::OK, Json(json!({"id": id, "kind": kind, "version": version}))))
}

pub async fn delete(
    admin: Admin,
    State(engine): State<Arc<Engine>>,
    matched: MatchedPath,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let (kind, missing) = kind_of(&matched)?;
    let id_for = id.clone();
    let existed =
        blocking(move || engine.delete_definition(kind, &id_for, Some(&admin.by())).map_err(definition_error)).await?;
    if existed { Ok(StatusCode::NO_CONTENT) } else { Err(ApiError::new(missing, format!("no {kind} `{id}`"))) }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    profile: Option<String>,
    flow: Option<String>,
    limit: Option<usize>,
}

pub async fn runs(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    ApiQuery(q): ApiQuery<RunsQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = crate::admin::page_limit(q.limit, 50, 1000)?;
    let runs = blocking(move || {
        let profile: Option<ProfileId> = match &q.profile {
            Some(key) => Some(find(&engine, key)?),
            None => None,
        };
        Ok(engine.runs(profile, q.flow.as_deref(), limit)?)
    })
    .await?;
    let runs: Vec<Value> = runs.iter().filter_map(|r| serde_json::from_slice::<Value>(r).ok()).map(readable).collect();
    Ok(Json(json!({ "runs": runs })))
}

/// Times in a run (milliseconds inside) as RFC 3339 for people.
fn readable(mut run: Value) -> Value {
    fn fix(v: &mut Value, key: &str) {
        if let Some(ms) = v.get(key).and_then(Value::as_i64) {
            v[key] = Value::String(format_timestamp(ms));
        }
    }
    for key in ["started_at", "ended_at", "goal_at"] {
        fix(&mut run, key);
    }
    fix(&mut run["status"], "until");
    if let Some(path) = run.get_mut("path").and_then(Value::as_array_mut) {
        for d in path {
            fix(d, "at");
            fix(d, "until");
        }
    }
    run
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembersQuery {
    after: Option<String>,
    limit: Option<usize>,
}

pub async fn members(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<MembersQuery>,
) -> Result<Json<Value>, ApiError> {
    if !engine.flow_definitions().segments.contains_key(&id) {
        return Err(ApiError::new(ErrorCode::UnknownSegment, format!("no segment `{id}`")));
    }
    let after = match &q.after {
        Some(text) => text.parse::<ProfileId>().map_err(|_| bad_query("`after` is a profile id such as p42"))?.0,
        None => 0,
    };
    let limit = crate::admin::page_limit(q.limit, 100, 10_000)?;
    let segment = id.clone();
    let (members, count, backfill) = blocking(move || {
        // The backfill first: it commits with the memberships it adds, so once it reads as finished, the
        // members read after it include them all.
        let backfill = engine.segment_backfills()?.into_iter().find(|b| b.segment == segment);
        let (members, count) = engine.segment_members(&segment, after, limit)?;
        Ok((members, count, backfill))
    })
    .await?;
    let next = (members.len() == limit).then(|| members.last().map(ToString::to_string)).flatten();
    let members: Vec<String> = members.iter().map(ToString::to_string).collect();
    Ok(Json(json!({"segment": id, "count": count, "members": members, "next": next,
                   "backfill": backfill.as_ref().map(backfill_json)})))
}

/// `GET /api/v1/segments/{id}/history`: the segment's members day by day, the last 90 days recorded.
pub async fn history(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if !engine.flow_definitions().segments.contains_key(&id) {
        return Err(ApiError::new(ErrorCode::UnknownSegment, format!("no segment `{id}`")));
    }
    let segment = id.clone();
    let days = blocking(move || Ok(engine.segment_history(&segment, 90)?)).await?;
    let days: Vec<Value> = days.iter().map(|(day, count)| json!({"day": day, "members": count})).collect();
    Ok(Json(json!({"segment": id, "days": days})))
}

/// How far a segment's backfill over the profiles that existed before it has come.
pub(crate) fn backfill_json(b: &tutti_store::Backfill) -> Value {
    json!({"done": b.done, "total": b.total, "started_at": format_timestamp(b.started_at),
           "finished_at": b.finished_at.map(format_timestamp)})
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxQuery {
    state: Option<String>,
    limit: Option<usize>,
}

pub async fn outbox(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    ApiQuery(q): ApiQuery<OutboxQuery>,
) -> Result<Json<Value>, ApiError> {
    let state = q.state.unwrap_or_else(|| "dead".into());
    if !matches!(state.as_str(), "pending" | "done" | "dead" | "skipped") {
        return Err(bad_query("`state` is pending, done, dead or skipped"));
    }
    let limit = crate::admin::page_limit(q.limit, 100, 1000)?;
    let state_for = state.clone();
    let rows = blocking(move || Ok(engine.outbox(&state_for, limit)?)).await?;
    let actions: Vec<Value> = rows
        .into_iter()
        .map(|(row, error)| {
            json!({"key": row.key, "profile": row.profile.to_string(), "connector": row.connector,
                   "attempts": row.attempts, "queued_at": format_timestamp(row.created_at), "error": error,
                   "action": serde_json::from_slice::<Value>(&row.body).unwrap_or(Value::Null)})
        })
        .collect();
    Ok(Json(json!({"state": state, "actions": actions})))
}

/// A JSON Schema, public so that editors can fetch it.
pub async fn schema(Path(name): Path<String>) -> Result<Response, ApiError> {
    let kind = name.strip_suffix(".json").unwrap_or(&name);
    let (_, text) = SCHEMAS
        .iter()
        .find(|(k, _)| *k == kind)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "schemas: flow.json, segment.json, policy.json"))?;
    Ok(([(header::CONTENT_TYPE, "application/schema+json")], *text).into_response())
}

/// `POST /api/v1/flows/{id}/pause` and `/resume`: a paused flow starts no runs (runs already going finish); its
/// new versions stay paused until resumed. Marketers; on the audit log.
pub async fn pause(
    admin: Admin,
    State(engine): State<Arc<Engine>>,
    Path((id, verb)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    crate::delivery::read_small_body(&headers, body).await?;
    let paused = match verb.as_str() {
        "pause" => true,
        "resume" => false,
        _ => return Err(ApiError::new(ErrorCode::NotFound, "pause or resume")),
    };
    if !engine.flow_definitions().flows.contains_key(&id) {
        return Err(ApiError::new(ErrorCode::UnknownFlow, format!("no flow `{id}`")));
    }
    let (by, id_for) = (admin.by(), id.clone());
    let changed = blocking(move || Ok(engine.pause_flow(&id_for, paused, &by)?)).await?;
    Ok(Json(json!({"flow": id, "paused": paused, "changed": changed})))
}

/// `GET /api/v1/flows/{id}/stats`: what the flow's runs did, summed over its versions: per step and for the
/// flow as a whole, each measure's count (see `tutti_store::FlowMeasure`).
pub async fn stats(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if !engine.flow_definitions().flows.contains_key(&id) {
        return Err(ApiError::new(ErrorCode::UnknownFlow, format!("no flow `{id}`")));
    }
    let id_for = id.clone();
    let rows = blocking(move || Ok(engine.flow_stats(&id_for)?)).await?;
    let mut flow = serde_json::Map::new();
    let mut steps: serde_json::Map<String, Value> = serde_json::Map::new();
    for (step, measure, n) in rows {
        if step.is_empty() {
            flow.insert(measure, json!(n));
        } else {
            steps.entry(step).or_insert_with(|| json!({}))[measure] = json!(n);
        }
    }
    Ok(Json(json!({"flow": id, "totals": flow, "steps": steps})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewBody {
    source: String,
    profile: Option<String>,
    events: Option<String>,
}

/// `POST /api/v1/flows/{id}/preview`: plays unsaved YAML for a profile and events with nothing sent (see
/// `Engine::preview_flow`); the flow's decisions, or its problems located.
pub async fn preview(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    Path(_id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let b: PreviewBody = crate::error::json_body(&body)?;
    let decisions = blocking(move || {
        let profile = b.profile.as_deref().filter(|k| !k.is_empty()).map(|k| find(&engine, k)).transpose()?;
        engine.preview_flow(&b.source, profile, b.events.as_deref()).map_err(|e| match e {
            tutti_engine::PreviewError::Invalid(problems) => definition_error(DefinitionError::Invalid(problems)),
            tutti_engine::PreviewError::Input(why) => ApiError::new(ErrorCode::InvalidRequest, why),
            tutti_engine::PreviewError::Engine(e) => e.into(),
        })
    })
    .await?;
    Ok(Json(json!({"decisions": decisions})))
}
