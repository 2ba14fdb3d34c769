//! The approvals inbox: each message waiting for a person, with why it waits and until when, who it is for
//! and what started it, and the review gate's verdict with each rule it hit. Approvers (and admins) approve it,
//! edited or not (first seeing what their edit changes against the draft, if they like), or reject it with a
//! reason, through forms carrying the session's CSRF token; everyone else sees the messages without the forms,
//! and the routes refuse them too.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tutti_engine::Engine;
use tutti_engine::people::Role;
use tutti_flows::ApprovalDecision;

use super::diff::{self, Piece};
use super::{Lang, Who, Words, may_post, page, secured, text, to_sign_in};
use crate::admin::blocking;
use crate::sessions::SignedIn;

/// One message in the inbox, as the page shows it.
struct Item {
    run: String,
    flow: String,
    step: String,
    profile: String,
    reason: String,
    expires_at: String,
    fallback: String,
    subject: String,
    body: String,
    /// What started the run: the event's name and properties.
    trigger: String,
    /// The review gate's verdict, in words, and who judged (the local gate, or a model).
    verdict: Option<(bool, String)>,
    /// Each rule the draft hit: rule, severity, field, what the rule says.
    hits: Vec<(String, String, String, String)>,
    /// What an edit changes against the draft, when the approver asked to see it.
    changes: Option<Vec<(&'static str, Vec<Piece>)>>,
}

impl Item {
    fn of(item: &Value, words: &Words) -> Item {
        let content = &item["content"];
        let verdict = content["passed"].as_bool().map(|passed| {
            let revisions = content["revisions"].as_u64().unwrap_or(0);
            let how = match (passed, content["first_pass"].as_bool() == Some(true)) {
                (true, true) => words.passed_first.to_owned(),
                (true, false) => format!("{} {revisions}", words.passed_after),
                (false, _) => format!("{} {revisions}", words.did_not_pass),
            };
            let judge = [text(&content["judged_by"]), text(&content["provider"])]
                .into_iter()
                .find(|j| !j.is_empty())
                .map(|j| format!(" · {j}"))
                .unwrap_or_default();
            (passed, format!("{how}{judge}"))
        });
        let hits = content["violations"]
            .as_array()
            .map(|all| {
                all.iter()
                    .map(|v| (text(&v["rule"]), text(&v["severity"]), text(&v["field"]), text(&v["says"])))
                    .collect()
            })
            .unwrap_or_default();
        let trigger = &item["trigger"];
        let name = [&trigger["event"], &trigger["name"], &trigger["type"]]
            .into_iter()
            .map(text)
            .find(|t| !t.is_empty())
            .unwrap_or_default();
        let properties = text(&trigger["properties"]);
        let properties: String = properties.chars().take(200).collect();
        Item {
            run: text(&item["run"]),
            flow: text(&item["flow"]),
            step: text(&item["step"]),
            profile: text(&item["profile"]),
            reason: text(&item["reason"]),
            expires_at: text(&item["expires_at"]),
            fallback: text(&item["fallback"]),
            subject: text(&content["subject"]),
            body: text(&content["body"]),
            trigger: format!("{name} {properties}").trim().to_owned(),
            verdict,
            hits,
            changes: None,
        }
    }
}

/// What the approver typed, against the draft, field by field (labelled in the person's words).
fn changes(item: &Item, subject: &str, body: &str, words: &Words) -> Vec<(&'static str, Vec<Piece>)> {
    [(words.subject, &item.subject, subject), (words.body, &item.body, body)]
        .into_iter()
        .map(|(label, draft, edit)| (label, diff::words(draft, &edit.replace("\r\n", "\n"))))
        .collect()
}

#[derive(Template)]
#[template(path = "approvals.html")]
struct ApprovalsPage {
    lang: &'static str,
    title: &'static str,
    words: &'static Words,
    who: Who,
    can_decide: bool,
    notice: Option<&'static str>,
    items: Vec<Item>,
}

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

/// `GET /approvals`.
pub async fn inbox(
    signed_in: Option<SignedIn>,
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    Query(done): Query<Done>,
) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    render(engine, &headers, &signed_in, done.done.as_deref(), None).await
}

/// The inbox; with `edit`, one message shown with what the approver's edit (run, subject, body) changes.
async fn render(
    engine: Arc<Engine>,
    headers: &HeaderMap,
    signed_in: &SignedIn,
    done: Option<&str>,
    edit: Option<(&str, &str, &str)>,
) -> Response {
    let words = Lang::of(headers).words();
    let rows = match blocking(move || Ok(engine.approvals(None, 200)?)).await {
        Ok(rows) => rows,
        Err(e) => return secured(e.into_response()),
    };
    let items = rows
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(r).ok())
        .filter_map(|r| crate::approvals::item(&r))
        .map(|i| {
            let mut item = Item::of(&i, words);
            if let Some((_, subject, body)) = edit.filter(|(run, ..)| *run == item.run) {
                item.changes = Some(changes(&item, subject, body, words));
                (item.subject, item.body) = (subject.to_owned(), body.to_owned());
            }
            item
        })
        .collect();
    let notice = match done {
        Some("approved") => Some(words.approved),
        Some("rejected") => Some(words.rejected),
        Some("closed") => Some(words.closed),
        Some("four_eyes") => Some(words.four_eyes),
        _ => None,
    };
    page(&ApprovalsPage {
        lang: Lang::of(headers).code(),
        title: words.approvals,
        words,
        who: Who::of(&signed_in.session),
        can_decide: signed_in.session.person.role >= Role::Approver,
        notice,
        items,
    })
}

#[derive(Deserialize)]
pub struct DecisionForm {
    csrf: String,
    subject: Option<String>,
    body: Option<String>,
    reason: Option<String>,
    /// `changes`: show what the edit changes against the draft instead of approving.
    #[serde(default)]
    intent: String,
}

/// `POST /approvals/{run}/approve` and `/reject`: the inbox's forms. The person decides as themselves.
pub async fn decide(
    signed_in: Option<SignedIn>,
    State(engine): State<Arc<Engine>>,
    Path((run, verdict)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<DecisionForm>,
) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    let person = signed_in.session.person.clone();
    if !may_post(&signed_in, Role::Approver, &form.csrf, &headers) {
        return secured(StatusCode::FORBIDDEN.into_response());
    }
    if verdict == "approve" && form.intent == "changes" {
        let (subject, body) = (form.subject.unwrap_or_default(), form.body.unwrap_or_default());
        return render(engine, &headers, &signed_in, None, Some((&run, &subject, &body))).await;
    }
    let decision = match verdict.as_str() {
        "approve" => {
            // What the approver changed in the form, and nothing else, goes out edited.
            let mut edits = Map::new();
            let current = current_content(&engine, &run).await;
            for (field, given) in [("subject", form.subject), ("body", form.body)] {
                let Some(given) = given else { continue };
                let given = given.replace("\r\n", "\n");
                if current.get(field).and_then(Value::as_str) != Some(given.as_str()) {
                    edits.insert(field.into(), json!(given));
                }
            }
            if let Err(e) = crate::approvals::check_edits(&edits) {
                return secured(e.into_response());
            }
            ApprovalDecision::Approve { by: person.email.clone(), edits: (!edits.is_empty()).then_some(edits) }
        }
        "reject" => {
            let reason = form.reason.unwrap_or_default().trim().to_owned();
            if reason.is_empty() || reason.chars().count() > crate::approvals::MAX_REASON {
                return secured(StatusCode::BAD_REQUEST.into_response());
            }
            ApprovalDecision::Reject { by: person.email.clone(), reason }
        }
        _ => return secured(StatusCode::NOT_FOUND.into_response()),
    };
    let done = match crate::approvals::decide(engine, run, decision).await {
        Ok(_) if verdict == "approve" => "approved",
        Ok(_) => "rejected",
        Err(e)
            if e.code == tutti_core::ErrorCode::ApprovalClosed || e.code == tutti_core::ErrorCode::UnknownApproval =>
        {
            "closed"
        }
        Err(e) if e.code == tutti_core::ErrorCode::Forbidden => "four_eyes",
        Err(e) => return secured(e.into_response()),
    };
    secured(Redirect::to(&format!("/approvals?done={done}")).into_response())
}

/// The message as it waits now, to tell what the approver changed.
async fn current_content(engine: &Arc<Engine>, run: &str) -> Map<String, Value> {
    let (engine, run) = (engine.clone(), run.to_owned());
    let found = blocking(move || Ok(engine.run(&run)?)).await.ok().flatten();
    let Some((_, body)) = found else { return Map::new() };
    let Ok(stored) = serde_json::from_slice::<Value>(&body) else { return Map::new() };
    crate::approvals::item(&stored).and_then(|i| i["content"].as_object().cloned()).unwrap_or_default()
}
