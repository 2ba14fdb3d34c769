//! The Copilot page: a goal written in words made into a plan, shown with what it assumed, the audience now
//! (count, sample, who can be reached where), the budget split and estimated cost, the steps, a sample message
//! per channel and language with its review verdict, and the YAML it will create. Marketers make plans and
//! change them in words; approvers approve (the segment and flow are created and start) or reject them; every
//! role may look. The JSON of the same is `/api/v1/plans`.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::Value;
use tutti_engine::Engine;
use tutti_engine::people::Role;

use super::{Lang, Who, Words, field, may_post, page, secured, to_sign_in};
use crate::admin::blocking;
use crate::sessions::SignedIn;

struct PlanRow {
    id: String,
    version: String,
    status: String,
    goal: String,
}

struct MessageShown {
    channel: String,
    language: String,
    subject: String,
    body: String,
    passed: bool,
}

struct PlanShown {
    id: String,
    version: String,
    status: String,
    goal: String,
    proposed: bool,
    assumptions: Vec<String>,
    count: String,
    /// (profile, name, city)
    sample: Vec<(String, String, String)>,
    /// (channel, reachable)
    reach: Vec<(String, String)>,
    budget: String,
    cost: String,
    /// (channel, messages, price, cost)
    split: Vec<(String, String, String, String)>,
    steps: Vec<String>,
    messages: Vec<MessageShown>,
    changes: String,
    segment_yaml: String,
    flow_yaml: String,
}

#[derive(Template)]
#[template(path = "copilot.html")]
struct CopilotPage {
    lang: &'static str,
    title: &'static str,
    words: &'static Words,
    who: Who,
    placeholder: &'static str,
    may_propose: bool,
    may_decide: bool,
    plans: Vec<PlanRow>,
    plan: Option<PlanShown>,
    problem: Option<String>,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn money(v: &Value) -> String {
    if v.is_null() {
        return "—".into();
    }
    tutti_core::money::Money::new(v["micros"].as_i64().unwrap_or(0), v["currency"].as_str().unwrap_or("")).to_string()
}

fn placeholder(lang: Lang) -> &'static str {
    match lang {
        Lang::Vi => "Kéo lại khách VIP lâu không mua ở Hà Nội, ngân sách 50 triệu, email và Zalo, trong hai tuần",
        Lang::Zh => "召回河内的流失VIP客户，预算5000万越南盾，邮件和Zalo，两周",
        Lang::En => "Bring back lapsed VIP customers in Hanoi, budget 50 million VND, email and Zalo, two weeks",
    }
}

fn shown(p: &Value) -> PlanShown {
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let steps = list(&p["steps"])
        .iter()
        .map(|s| match s["type"].as_str().unwrap_or("") {
            "content" => format!("+{} d · {} · {}", text(&s["day"]), text(&s["channel"]), text(&s["prompt"])),
            "budget_split" => {
                let channels: Vec<String> = s["channels"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| format!("{} {}", text(&c["channel"]), money(&c["cost"])))
                    .collect();
                format!("budget split: {}", channels.join(", "))
            }
            "holdout" => format!("holdout {}%", (s["share"].as_f64().unwrap_or(0.0) * 100.0).round()),
            "schedule" => format!("schedule: {} d, quiet hours {}", text(&s["days"]), text(&s["quiet_hours"])),
            "goal" => format!("goal: {} ≤ {} d", text(&s["event"]), text(&s["within_days"])),
            "exit" => format!("exit: {}", text(&s["when"])),
            "segment" => format!("segment {}", text(&s["id"])),
            other => other.to_owned(),
        })
        .collect();
    let changes = if p["changes"].is_object() {
        let lines = text(&p["changes"]["segment"]) + &text(&p["changes"]["flow"]);
        lines.lines().filter(|l| l.starts_with('+') || l.starts_with('-')).collect::<Vec<_>>().join("\n")
    } else {
        String::new()
    };
    PlanShown {
        id: text(&p["id"]),
        version: text(&p["version"]),
        status: text(&p["status"]),
        goal: text(&p["goal"]),
        proposed: p["status"] == "proposed",
        assumptions: list(&p["assumptions"]).iter().map(text).collect(),
        count: text(&p["audience"]["count"]),
        sample: list(&p["audience"]["sample"])
            .iter()
            .map(|s| (text(&s["profile"]), text(&s["name"]), text(&s["city"])))
            .collect(),
        reach: list(&p["audience"]["reach"]).iter().map(|r| (text(&r["channel"]), text(&r["count"]))).collect(),
        budget: money(&p["budget"]),
        cost: money(&p["cost_estimate"]),
        split: list(&p["budget_split"])
            .iter()
            .map(|c| (text(&c["channel"]), text(&c["messages"]), money(&c["price"]), money(&c["cost"])))
            .collect(),
        steps,
        messages: list(&p["messages"])
            .iter()
            .map(|m| MessageShown {
                channel: text(&m["channel"]),
                language: text(&m["language"]),
                subject: text(&m["subject"]),
                body: text(&m["body"]),
                passed: m["review"]["passed"] == true,
            })
            .collect(),
        changes,
        segment_yaml: text(&p["audience"]["segment_yaml"]),
        flow_yaml: text(&p["flow_yaml"]),
    }
}

async fn render(
    engine: Arc<Engine>,
    headers: &HeaderMap,
    signed_in: &SignedIn,
    plan_id: Option<String>,
    problem: Option<String>,
) -> Response {
    let lang = Lang::of(headers);
    let words = lang.words();
    let found = blocking(move || {
        let plans = engine.plans(50).map_err(crate::plans::plan_error)?;
        let plan = match plan_id {
            Some(id) => engine.plan(&id).map_err(crate::plans::plan_error)?,
            None => None,
        };
        Ok((plans, plan))
    })
    .await;
    let (plans, plan) = match found {
        Ok(found) => found,
        Err(e) => return secured(e.into_response()),
    };
    let role = signed_in.session.person.role;
    page(&CopilotPage {
        lang: lang.code(),
        title: words.copilot,
        words,
        who: Who::of(&signed_in.session),
        placeholder: placeholder(lang),
        may_propose: role >= Role::Marketer,
        may_decide: role >= Role::Approver,
        plans: plans
            .iter()
            .map(|p| PlanRow {
                id: text(&p["id"]),
                version: text(&p["version"]),
                status: text(&p["status"]),
                goal: text(&p["goal"]),
            })
            .collect(),
        plan: plan.as_ref().map(shown),
        problem,
    })
}

/// `GET /copilot[?plan=p3]`.
pub async fn show(
    signed_in: Option<SignedIn>,
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    let plan = Some(field(&pairs, "plan").to_owned()).filter(|p| !p.is_empty());
    render(engine, &headers, &signed_in, plan, None).await
}

#[derive(Deserialize)]
pub struct GoalForm {
    csrf: String,
    goal: String,
}

/// `POST /copilot`: marketers make a plan of a goal.
pub async fn propose(
    signed_in: Option<SignedIn>,
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    Form(form): Form<GoalForm>,
) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    if !may_post(&signed_in, Role::Marketer, &form.csrf, &headers) {
        return secured(StatusCode::FORBIDDEN.into_response());
    }
    let by = signed_in.session.person.email.clone();
    let engine_for = engine.clone();
    match blocking(move || engine_for.propose_plan(&form.goal, &by).map_err(crate::plans::plan_error)).await {
        Ok(plan) => secured(Redirect::to(&format!("/copilot?plan={}", text(&plan["id"]))).into_response()),
        Err(e) if (400..500).contains(&e.code.http_status()) => {
            render(engine, &headers, &signed_in, None, Some(e.message)).await
        }
        Err(e) => secured(e.into_response()),
    }
}

#[derive(Deserialize)]
pub struct ChangeForm {
    csrf: String,
    change: String,
}

/// `POST /copilot/{id}/change`: the next version, from a change in words.
pub async fn change(
    signed_in: Option<SignedIn>,
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ChangeForm>,
) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    if !may_post(&signed_in, Role::Marketer, &form.csrf, &headers) {
        return secured(StatusCode::FORBIDDEN.into_response());
    }
    let by = signed_in.session.person.email.clone();
    let (engine_for, id_for) = (engine.clone(), id.clone());
    let changed = blocking(move || {
        engine_for.change_plan(&id_for, Some(&form.change), None, &by).map_err(crate::plans::plan_error)
    })
    .await;
    match changed {
        Ok(_) => secured(Redirect::to(&format!("/copilot?plan={id}")).into_response()),
        Err(e) if (400..500).contains(&e.code.http_status()) => {
            render(engine, &headers, &signed_in, Some(id), Some(e.message)).await
        }
        Err(e) => secured(e.into_response()),
    }
}

#[derive(Deserialize)]
pub struct DecideForm {
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// `POST /copilot/{id}/{verdict}`: approvers approve or reject, as themselves.
pub async fn decide(
    signed_in: Option<SignedIn>,
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    Path((id, verdict)): Path<(String, String)>,
    Form(form): Form<DecideForm>,
) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    if !may_post(&signed_in, Role::Approver, &form.csrf, &headers) {
        return secured(StatusCode::FORBIDDEN.into_response());
    }
    let approve = match verdict.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return super::not_found(&headers),
    };
    let by = signed_in.session.person.email.clone();
    let (engine_for, id_for) = (engine.clone(), id.clone());
    let decided = blocking(move || {
        engine_for.decide_plan(&id_for, approve, &by, form.reason.trim()).map_err(crate::plans::plan_error)
    })
    .await;
    match decided {
        Ok(_) => secured(Redirect::to(&format!("/copilot?plan={id}")).into_response()),
        Err(e) if (400..500).contains(&e.code.http_status()) => {
            render(engine, &headers, &signed_in, Some(id), Some(e.message)).await
        }
        Err(e) => secured(e.into_response()),
    }
}
