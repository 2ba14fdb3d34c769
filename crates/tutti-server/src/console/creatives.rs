//! Creatives: which traits of our creatives go with better click-through and conversion, per channel (each
//! value's rates with their 95% intervals, drawn as bars on the server), the comparisons the analysis called,
//! and budget proposals: marketers have one computed and kept, approvers approve or reject it.
//!
//! The JSON of the same: `GET /api/v1/insights/creatives`, `GET|POST /api/v1/insights/budget/proposals`,
//! `POST /api/v1/insights/budget/proposals/{id}/approve|reject`. Alerts stay in the API: asking for them
//! moves their "last look", which a page view must not.

use std::fmt::Write;
use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tutti_engine::Engine;
use tutti_engine::people::Role;
use tutti_insights::analysis::{Interval, Verdict};

use super::{Lang, Who, Words, may_post, page, secured, text, to_sign_in};
use crate::admin::blocking;
use crate::sessions::SignedIn;

struct ValueRow {
    value: String,
    creatives: usize,
    impressions: u64,
    click_through: String,
    conversion: String,
    bar: String,
}

struct TraitBlock {
    name: String,
    values: Vec<ValueRow>,
}

struct ChannelBlock {
    channel: String,
    creatives: usize,
    impressions: u64,
    clicks: u64,
    conversions: u64,
    traits: Vec<TraitBlock>,
    findings: Vec<String>,
}

struct ProposalRow {
    id: String,
    proposed: String,
    channel: String,
    budget: String,
    status: String,
    decided: String,
    open: bool,
    allocations: Vec<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "creatives.html")]
struct CreativesPage {
    lang: &'static str,
    title: &'static str,
    words: &'static Words,
    who: Who,
    channels: Vec<ChannelBlock>,
    proposals: Vec<ProposalRow>,
    can_propose: bool,
    can_decide: bool,
    problem: Option<String>,
}

fn percent(i: &Option<Interval>, words: &Words) -> String {
    i.as_ref().map_or_else(
        || words.not_enough_data.to_owned(),
        |i| format!("{:.2}% ({:.2}–{:.2})", i.mean * 100.0, i.low * 100.0, i.high * 100.0),
    )
}

/// A value's click-through as a bar (the mean) with its interval, on a scale shared by the trait's values.
fn bar(i: &Option<Interval>, top: f64) -> String {
    let Some(i) = i else { return String::new() };
    let x = |v: f64| if top > 0.0 { (v / top * 200.0).clamp(0.0, 200.0) } else { 0.0 };
    let mut svg = String::from(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="rate" viewBox="0 0 204 14" width="204" height="14" aria-hidden="true">"#,
    );
    let _ = write!(svg, r#"<rect class="mean" x="0" y="3" width="{:.1}" height="8"/>"#, x(i.mean));
    let _ = write!(svg, r#"<line class="interval" x1="{:.1}" x2="{:.1}" y1="7" y2="7"/>"#, x(i.low), x(i.high));
    svg.push_str("</svg>");
    svg
}

fn channels(report: &tutti_insights::analysis::Report, words: &Words) -> Vec<ChannelBlock> {
    report
        .channels
        .iter()
        .map(|ch| {
            let traits = ch
                .traits
                .iter()
                .map(|t| {
                    let top =
                        t.values.iter().filter_map(|v| v.click_through.as_ref().map(|i| i.high)).fold(0.0, f64::max);
                    TraitBlock {
                        name: t.name.clone(),
                        values: t
                            .values
                            .iter()
                            .map(|v| ValueRow {
                                value: v.value.clone(),
                                creatives: v.creatives,
                                impressions: v.totals.impressions,
                                click_through: percent(&v.click_through, words),
                                conversion: percent(&v.conversion, words),
                                bar: bar(&v.click_through, top),
                            })
                            .collect(),
                    }
                })
                .collect();
            let findings = ch
                .traits
                .iter()
                .flat_map(|t| {
                    t.comparisons
                        .iter()
                        .filter(|c| matches!(c.verdict, Verdict::Better | Verdict::Worse))
                        .map(|c| tutti_insights::render::sentence(&ch.channel, &t.name, c))
                })
                .collect();
            ChannelBlock {
                channel: ch.channel.clone(),
                creatives: ch.creatives,
                impressions: ch.totals.impressions,
                clicks: ch.totals.clicks,
                conversions: ch.totals.conversions,
                traits,
                findings,
            }
        })
        .collect()
}

fn money(micros: &Value) -> String {
    micros.as_i64().map_or_else(String::new, |m| format!("{:.2}", m as f64 / 1e6))
}

fn proposal_row(p: &Value) -> ProposalRow {
    let inner = &p["proposal"];
    let allocations = inner["allocations"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|a| {
                    let share = a["share"].as_f64().map_or_else(String::new, |s| format!("{:.1}%", s * 100.0));
                    (text(&a["creative"]), share, money(&a["budget_micros"]))
                })
                .collect()
        })
        .unwrap_or_default();
    ProposalRow {
        id: text(&p["id"]),
        proposed: format!("{} · {}", text(&p["proposed_at"]), text(&p["proposed_by"])),
        channel: text(&inner["channel"]),
        budget: format!("{} ({})", money(&inner["budget_micros"]), text(&inner["objective"])),
        status: text(&p["status"]),
        decided: [text(&p["decided_by"]), text(&p["reason"])]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" · "),
        open: p["status"] == "proposed",
        allocations,
    }
}

async fn render(engine: Arc<Engine>, headers: &HeaderMap, signed_in: &SignedIn, problem: Option<String>) -> Response {
    let lang = Lang::of(headers);
    let words = lang.words();
    let found = blocking(move || {
        let options = tutti_insights::Options::default();
        let report = tutti_insights::service::analyze(&*engine.insights().creatives(), &options)
            .map_err(|e| crate::error::ApiError::internal("creative analysis", e))?;
        Ok((report, engine.insights().budget_proposals()?))
    })
    .await;
    let (report, proposals) = match found {
        Ok(found) => found,
        Err(e) => return secured(e.into_response()),
    };
    let role = signed_in.session.person.role;
    page(&CreativesPage {
        lang: lang.code(),
        title: words.creatives,
        words,
        who: Who::of(&signed_in.session),
        channels: channels(&report, words),
        proposals: proposals.iter().map(proposal_row).collect(),
        can_propose: role >= Role::Marketer,
        can_decide: role >= Role::Approver,
        problem,
    })
}

/// `GET /creatives`.
pub async fn show(signed_in: Option<SignedIn>, State(engine): State<Arc<Engine>>, headers: HeaderMap) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    render(engine, &headers, &signed_in, None).await
}

#[derive(Deserialize)]
pub struct ProposeForm {
    csrf: String,
    channel: String,
    budget: String,
    objective: String,
}

/// `POST /creatives/proposals`: marketers have a split computed and kept.
pub async fn propose(
    signed_in: Option<SignedIn>,
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    Form(form): Form<ProposeForm>,
) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    if !may_post(&signed_in, Role::Marketer, &form.csrf, &headers) {
        return secured(StatusCode::FORBIDDEN.into_response());
    }
    let Ok(budget) = form.budget.trim().replace(',', "").parse::<f64>() else {
        let words = Lang::of(&headers).words();
        return render(engine, &headers, &signed_in, Some(words.not_a_budget.to_owned())).await;
    };
    let body = json!({"channel": form.channel.trim(), "budget": budget, "objective": form.objective.trim()});
    let by = signed_in.session.person.email.clone();
    let (engine_for, body) = (engine.clone(), body.to_string());
    match blocking(move || crate::insights::propose(&engine_for, &by, body.as_bytes())).await {
        Ok(_) => secured(Redirect::to("/creatives#proposals").into_response()),
        Err(e) if (400..500).contains(&e.code.http_status()) => {
            render(engine, &headers, &signed_in, Some(e.message)).await
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

/// `POST /creatives/proposals/{id}/{verdict}`: approvers decide a kept proposal as themselves.
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
    let engine_for = engine.clone();
    match blocking(move || crate::insights::decide_proposal(&engine_for, &id, &by, approve, &form.reason)).await {
        Ok(_) => secured(Redirect::to("/creatives#proposals").into_response()),
        Err(e) if (400..500).contains(&e.code.http_status()) => {
            render(engine, &headers, &signed_in, Some(e.message)).await
        }
        Err(e) => secured(e.into_response()),
    }
}
