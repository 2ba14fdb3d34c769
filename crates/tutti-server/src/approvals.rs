//! The approvals inbox (runs waiting at an `approve` step: list, approve, edit and approve, reject) and the
//! audit log (every model call and every approval: query, or export as JSON Lines).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tutti_core::audit::{AuditFilter, AuditKind, AuditRecord};
use tutti_core::time::{format_timestamp, parse_timestamp};
use tutti_core::{ErrorCode, ProfileId};
use tutti_engine::Engine;
use tutti_flows::machine::ApprovalDecision;

use crate::admin::{Admin, ApiQuery, Caller, bad_query, blocking};
use crate::error::{ApiError, json_body};

/// The longest rejection reason kept.
pub(crate) const MAX_REASON: usize = 2000;
/// The most bytes an edit may hold.
const MAX_EDITS: usize = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsQuery {
    flow: Option<String>,
    limit: Option<usize>,
}

/// The step a run waits at for approval, and where that approval stands (`run.steps.<step>`).
fn pending_step(run: &Value) -> Option<(String, &Value)> {
    run["results"].as_object()?.iter().find(|(_, r)| r["approval"] == "pending").map(|(step, r)| (step.clone(), r))
}

/// One inbox item: what to decide on and by when.
pub(crate) fn item(run: &Value) -> Option<Value> {
    let (step, approval) = pending_step(run)?;
    let content = approval["content"].as_str().map(|c| run["results"][c].clone()).unwrap_or(Value::Null);
    Some(json!({
        "run": run["id"], "flow": run["flow"], "version": run["version"], "profile": run["profile"], "step": step,
        "reason": approval["reason"], "requested_at": approval["requested_at"], "expires_at": approval["expires_at"],
        "fallback": approval["fallback"], "escalated_to": approval["escalated_to"],
        "content_key": approval["content"], "content": content, "trigger": run["trigger"],
    }))
}

/// `GET /api/v1/approvals`: runs waiting for a person, oldest request first.
pub async fn list(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    ApiQuery(q): ApiQuery<ApprovalsQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = crate::admin::page_limit(q.limit, 100, 1000)?;
    let rows = blocking(move || Ok(engine.approvals(q.flow.as_deref(), limit)?)).await?;
    let items: Vec<Value> =
        rows.iter().filter_map(|r| serde_json::from_slice::<Value>(r).ok()).filter_map(|r| item(&r)).collect();
    Ok(Json(json!({"approvals": items})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    /// The approver: the person signed in, or whose token it is. Optional; when given it must be them.
    #[serde(default)]
    by: Option<String>,
    /// Fields of the content replaced before it goes out (`subject`, `body`, ...).
    #[serde(default)]
    edits: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RejectBody {
    #[serde(default)]
    by: Option<String>,
    reason: String,
}

/// Who decides: a person, signed in or with their personal token, as themselves (`by`, when given, must be
/// their email), recorded so. The admin token is the installation, not a person: it decides nothing.
fn approver(caller: &Caller, by: Option<&str>) -> Result<String, ApiError> {
    let Caller::Person(person) = caller else {
        return Err(ApiError::new(
            ErrorCode::NeedsPerson,
            "approvals are decided by a person: sign in, or use your personal API token (tutti_pat_...)",
        ));
    };
    if let Some(by) = by.map(str::trim)
        && !by.eq_ignore_ascii_case(&person.email)
    {
        return Err(ApiError::new(ErrorCode::Forbidden, format!("you decide as yourself: `by` is {}", person.email)));
    }
    Ok(person.email.clone())
}

pub(crate) fn check_edits(edits: &Map<String, Value>) -> Result<(), ApiError> {
    let bad = |m: String| Err(ApiError::new(ErrorCode::InvalidRequest, m));
    for (k, v) in edits {
        if k.starts_with("approved_") || k.starts_with("edited_") || k == "source" {
            return bad(format!("`edits.{k}` is recorded by Tutti and cannot be edited"));
        }
        if !v.is_string() {
            return bad(format!("`edits.{k}` must be text"));
        }
    }
    if serde_json::to_vec(edits).map_or(0, |b| b.len()) > MAX_EDITS {
        return bad(format!("`edits` is larger than {} KB", MAX_EDITS / 1024));
    }
    Ok(())
}

/// `POST /api/v1/approvals/{run}/approve`, with `edits` to edit and approve.
pub async fn approve(
    admin: Admin,
    State(engine): State<Arc<Engine>>,
    Path(run): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let b: ApproveBody = json_body(&body)?;
    let by = approver(&admin.caller, b.by.as_deref())?;
    let edits = b.edits.filter(|e| !e.is_empty());
    if let Some(e) = &edits {
        check_edits(e)?;
    }
    decide(engine, run, ApprovalDecision::Approve { by, edits }).await
}

/// `POST /api/v1/approvals/{run}/reject`, with a reason.
pub async fn reject(
    admin: Admin,
    State(engine): State<Arc<Engine>>,
    Path(run): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let b: RejectBody = json_body(&body)?;
    let by = approver(&admin.caller, b.by.as_deref())?;
    let reason = b.reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > MAX_REASON {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("`reason` says why it is rejected: 1 to {MAX_REASON} characters"),
        ));
    }
    decide(engine, run, ApprovalDecision::Reject { by, reason }).await
}

pub(crate) async fn decide(
    engine: Arc<Engine>,
    run: String,
    decision: ApprovalDecision,
) -> Result<Json<Value>, ApiError> {
    let (reader, id) = (engine.clone(), run.clone());
    let found = blocking(move || Ok(reader.run(&id)?)).await?;
    let Some((profile, body)) = found else {
        return Err(ApiError::new(ErrorCode::UnknownApproval, format!("no run `{run}`")));
    };
    let before: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::internal("a stored run is unreadable", e))?;
    let Some((step, _)) = pending_step(&before) else {
        return Err(closed(&before, None));
    };
    let by = match &decision {
        ApprovalDecision::Approve { by, .. } | ApprovalDecision::Reject { by, .. } => by.clone(),
    };
    let (flow, version) = (before["flow"].as_str().unwrap_or("").to_owned(), before["version"].as_u64().unwrap_or(0));
    let (reader, flow_for) = (engine.clone(), flow.clone());
    let four_eyes = blocking(move || Ok(reader.four_eyes(&flow_for, version)?)).await?;
    if let Some((policy, author)) = four_eyes
        && author.eq_ignore_ascii_case(&by)
    {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "{by} saved version {version} of {flow}: the policy {policy} has another approver decide its messages"
            ),
        ));
    }
    let after = engine.decide_approval(profile, &run, &step, decision).await?;
    let Some(after) = after else {
        return Err(closed(&before, Some(&step)));
    };
    let after: Value = serde_json::from_slice(&after).map_err(|e| ApiError::internal("a run is unreadable", e))?;
    let approval = &after["results"][&step];
    match approval["approval"].as_str() {
        Some("approved" | "rejected") => Ok(Json(json!({
            "run": run, "step": step, "approval": approval, "status": after["status"]["state"],
            "content": approval_content(&after, &before, &step),
        }))),
        // Decided too late: the expiry came first (and its fallback ran).
        _ => Err(closed(&after, Some(&step))),
    }
}

/// The content as it now goes out, after any edits.
fn approval_content(after: &Value, before: &Value, step: &str) -> Value {
    before["results"][step]["content"].as_str().map(|c| after["results"][c].clone()).unwrap_or(Value::Null)
}

fn closed(run: &Value, step: Option<&str>) -> ApiError {
    // How the approval ended (approved, rejected, expired), else where the run is.
    fn decided(r: &Value) -> Option<&str> {
        r["approval"].as_str().filter(|a| matches!(*a, "approved" | "rejected" | "expired"))
    }
    let state = match step {
        Some(s) => decided(&run["results"][s]),
        None => run["results"].as_object().and_then(|m| m.values().find_map(decided)),
    }
    .unwrap_or_else(|| run["status"]["state"].as_str().unwrap_or("unknown"))
    .to_owned();
    ApiError::new(
        ErrorCode::ApprovalClosed,
        format!("run `{}` is not waiting for approval (it is {state})", run["id"].as_str().unwrap_or("?")),
    )
    .with("state", Value::String(state))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    kind: Option<String>,
    flow: Option<String>,
    run: Option<String>,
    profile: Option<String>,
    since: Option<String>,
    until: Option<String>,
    after: Option<u64>,
    limit: Option<usize>,
    /// `json` (a page) or `jsonl` (an export: one record per line).
    format: Option<String>,
}

/// A record as the API shows it.
fn readable(seq: u64, r: &AuditRecord) -> Value {
    json!({"seq": seq, "at": format_timestamp(r.at), "kind": r.kind.as_str(), "flow": r.flow, "run": r.run,
           "profile": r.profile.map(|p| p.to_string()), "detail": r.detail})
}

/// `GET /api/v1/audit`: the audit log, oldest first, filtered; `format=jsonl` exports it as JSON Lines (up to
/// 100,000 records a request; `after` continues).
pub async fn audit(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Response, ApiError> {
    let time = |v: &Option<String>, key: &str| -> Result<Option<i64>, ApiError> {
        v.as_deref()
            .map(|t| parse_timestamp(t).ok_or_else(|| bad_query(format!("`{key}` is an RFC 3339 time"))))
            .transpose()
    };
    let filter = AuditFilter {
        kind: match q.kind.as_deref() {
            None => None,
            Some(k) => Some(AuditKind::from_name(k).ok_or_else(|| {
                let kinds: Vec<&str> = AuditKind::ALL.iter().map(|k| k.as_str()).collect();
                bad_query(format!("`kind` is one of {}", kinds.join(", ")))
            })?),
        },
        flow: q.flow.clone(),
        run: q.run.clone(),
        profile: match q.profile.as_deref() {
            None => None,
            Some(p) => Some(p.parse::<ProfileId>().map_err(|_| bad_query("`profile` is a profile id such as p42"))?),
        },
        since: time(&q.since, "since")?,
        until: time(&q.until, "until")?,
    };
    let jsonl = match q.format.as_deref() {
        None | Some("json") => false,
        Some("jsonl") => true,
        Some(_) => return Err(bad_query("`format` is json or jsonl")),
    };
    // One bound for both formats (the document states one); JSON answers 100 records unless asked for more.
    let (default, most) = if jsonl { (100_000, 100_000) } else { (100, 100_000) };
    let limit = crate::admin::page_limit(q.limit, default, most)?;
    let after = q.after.unwrap_or(0);
    let rows = blocking(move || Ok(engine.audit(&filter, after, limit)?)).await?;
    let next = (rows.len() == limit).then(|| rows.last().map(|(seq, _)| *seq)).flatten();
    if jsonl {
        let mut out = Vec::with_capacity(rows.len() * 512);
        for (seq, r) in &rows {
            serde_json::to_writer(&mut out, &readable(*seq, r)).expect("JSON always serialises");
            out.push(b'\n');
        }
        let mut response = ([(header::CONTENT_TYPE, "application/x-ndjson")], out).into_response();
        if let Some(n) = next {
            response.headers_mut().insert("x-next-after", n.into());
        }
        return Ok(response);
    }
    let records: Vec<Value> = rows.iter().map(|(seq, r)| readable(*seq, r)).collect();
    Ok(Json(json!({"records": records, "next": next})).into_response())
}
