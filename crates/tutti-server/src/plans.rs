//! `/api/v1/plans`: the copilot (story S8). A marketer states a goal and gets a plan, dry-run on the real
//! profiles (audience count and sample, cost, sample messages with their review, the YAML); they change it in
//! words or by fields, each change a new version; an approver approves it (its segment and flow are created and
//! start) or rejects it (nothing happens). Reading plans is for every role.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};
use tutti_core::ErrorCode;
use tutti_engine::{Engine, PlanError};

use crate::admin::{Admin, ApiQuery, Caller, blocking};
use crate::error::{ApiError, json_body};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GoalBody {
    goal: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeBody {
    /// A change in words ("only customers who bought twice").
    #[serde(default)]
    change: Option<String>,
    /// Or fields edited: `channels`, `budget`, `days`, `holdout`.
    #[serde(default)]
    fields: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<usize>,
}

pub(crate) fn plan_error(e: PlanError) -> ApiError {
    match e {
        PlanError::NotUnderstood(m) => ApiError::new(ErrorCode::GoalNotUnderstood, m),
        PlanError::Unknown(_) => ApiError::new(ErrorCode::NotFound, e.to_string()),
        PlanError::Closed(..) => ApiError::new(ErrorCode::ApprovalClosed, e.to_string()),
        PlanError::Invalid(m) => ApiError::new(ErrorCode::InvalidRequest, m),
        PlanError::Definitions(m) => ApiError::new(ErrorCode::InvalidDefinition, m),
        PlanError::Engine(e) => e.into(),
    }
}

/// `POST /api/v1/plans` `{"goal"}`: a plan, proposed; 422 `goal_not_understood` with what can be planned.
pub async fn propose(admin: Admin, State(engine): State<Arc<Engine>>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let b = json_body::<GoalBody>(&body)?;
    let by = admin.by();
    let plan = blocking(move || engine.propose_plan(&b.goal, &by).map_err(plan_error)).await?;
    Ok(Json(plan))
}

/// `GET /api/v1/plans`: the newest version of each plan, newest first.
pub async fn list(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = crate::admin::page_limit(q.limit, 50, 500)?;
    let plans = blocking(move || engine.plans(limit).map_err(plan_error)).await?;
    Ok(Json(json!({ "plans": plans })))
}

/// `GET /api/v1/plans/{id}`: its newest version, with the versions before it.
pub async fn show(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id_for = id.clone();
    match blocking(move || engine.plan(&id_for).map_err(plan_error)).await? {
        Some(plan) => Ok(Json(plan)),
        None => Err(ApiError::new(ErrorCode::NotFound, format!("no plan `{id}`"))),
    }
}

/// `POST /api/v1/plans/{id}/versions` `{"change"}` or `{"fields"}`: the next version.
pub async fn change(
    admin: Admin,
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let b = json_body::<ChangeBody>(&body)?;
    let by = admin.by();
    let plan =
        blocking(move || engine.change_plan(&id, b.change.as_deref(), b.fields.as_ref(), &by).map_err(plan_error))
            .await?;
    Ok(Json(plan))
}

/// `POST /api/v1/plans/{id}/approve` and `/reject`: an approver, as themselves.
pub async fn decide(
    admin: Admin,
    State(engine): State<Arc<Engine>>,
    Path((id, verdict)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let Caller::Person(person) = &admin.caller else {
        return Err(ApiError::new(
            ErrorCode::NeedsPerson,
            "a plan is decided by a person: sign in, or use your personal token",
        ));
    };
    let approve = match verdict.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return Err(ApiError::new(ErrorCode::NotFound, "approve or reject")),
    };
    let b: DecisionBody = if body.is_empty() { DecisionBody::default() } else { json_body(&body)? };
    if b.reason.chars().count() > crate::approvals::MAX_REASON {
        return Err(ApiError::new(ErrorCode::InvalidRequest, "`reason` is at most 2,000 characters"));
    }
    let by = person.email.clone();
    let decided = blocking(move || engine.decide_plan(&id, approve, &by, b.reason.trim()).map_err(plan_error)).await?;
    Ok(Json(decided))
}
