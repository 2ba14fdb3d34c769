//! Flows: the list (version, category, trigger, how many entered, reached the goal, are going now), and a
//! flow's page: its graph, what each step did (reached, acted, skipped and why, arms taken, approvals), how
//! runs ended, recent runs, and its YAML in an editor. Marketers save the YAML as a new version, or see
//! first what it would do: a preview plays it for a profile (and its recent events, or events given) on a
//! simulated clock, sending nothing, and shows each decision and each message as it would be rendered.
//!
//! The JSON of the same: `GET /api/v1/flows[/{id}]`, `GET /api/v1/flows/{id}/stats`, `GET /api/v1/runs?flow=`,
//! `PUT /api/v1/flows/{id}`, `POST /api/v1/flows/{id}/preview`.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::Value;
use tutti_engine::people::Role;
use tutti_engine::{DefinitionError, Engine, PreviewError};
use tutti_flows::Problem;
use tutti_flows::machine::Decision;

use super::editor::SourceLine;
use super::graph;
use super::{Lang, Who, Words, Zone, may_post, not_found, page, secured, text, to_sign_in};
use crate::admin::blocking;
use crate::error::ApiError;
use crate::sessions::SignedIn;

/// A flow's running totals by step ("" for the flow as a whole), then by measure.
pub(crate) type Stats = BTreeMap<String, BTreeMap<String, u64>>;

pub(crate) fn stats_of(rows: Vec<(String, String, u64)>) -> Stats {
    let mut stats = Stats::new();
    for (step, measure, n) in rows {
        stats.entry(step).or_default().insert(measure, n);
    }
    stats
}

fn measure(stats: &Stats, step: &str, name: &str) -> u64 {
    stats.get(step).and_then(|m| m.get(name)).copied().unwrap_or(0)
}

/// The measures whose names start with `prefix`, the rest of the name and the count, largest first.
fn by_reason(stats: &Stats, step: &str, prefix: &str) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = stats
        .get(step)
        .map(|m| m.iter().filter_map(|(k, n)| k.strip_prefix(prefix).map(|r| (r.to_owned(), *n))).collect())
        .unwrap_or_default();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

struct Listed {
    id: String,
    name: String,
    version: u32,
    category: String,
    trigger: String,
    status: &'static str,
    entered: u64,
    profiles: u64,
    goal: u64,
}

#[derive(Template)]
#[template(path = "flows.html")]
struct FlowsPage {
    lang: &'static str,
    title: &'static str,
    words: &'static Words,
    who: Who,
    flows: Vec<Listed>,
}

/// `GET /flows`.
pub async fn list(signed_in: Option<SignedIn>, State(engine): State<Arc<Engine>>, headers: HeaderMap) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    let lang = Lang::of(&headers);
    let words = lang.words();
    let found = blocking(move || {
        let defs = engine.flow_definitions();
        let mut flows = Vec::new();
        // Every flow's latest version, live, paused or retired.
        for flow in defs.flows.values().filter_map(|versions| versions.values().next_back()) {
            let stats = stats_of(engine.flow_stats(&flow.id)?);
            flows.push(Listed {
                id: flow.id.clone(),
                name: flow.name.clone().unwrap_or_default(),
                version: flow.version,
                category: flow.category.clone(),
                trigger: graph::trigger_label(flow),
                status: status(flow, words),
                entered: measure(&stats, "", "entered"),
                profiles: measure(&stats, "", "profiles"),
                goal: measure(&stats, "", "goal"),
            });
        }
        Ok(flows)
    })
    .await;
    match found {
        Ok(flows) => {
            page(&FlowsPage { lang: lang.code(), title: words.flows, words, who: Who::of(&signed_in.session), flows })
        }
        Err(e) => secured(e.into_response()),
    }
}

/// Whether a flow starts runs, in words.
fn status(flow: &tutti_flows::Flow, words: &Words) -> &'static str {
    match (flow.paused, flow.retired) {
        (true, _) => words.paused,
        (false, true) => words.retired,
        (false, false) => words.live,
    }
}

struct StepRow {
    id: String,
    label: String,
    reached: u64,
    acted: u64,
    skipped: Vec<(String, u64)>,
    arms: Vec<(String, u64)>,
    decided: String,
}

struct RunRow {
    id: String,
    profile: String,
    version: String,
    state: String,
    started: String,
}

/// One decision of a preview, as a person reads it.
struct Played {
    when: String,
    step: String,
    decision: String,
    detail: String,
    message: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "flow.html")]
struct FlowPage {
    lang: &'static str,
    title: &'static str,
    words: &'static Words,
    who: Who,
    id: String,
    name: String,
    version: u32,
    category: String,
    trigger: String,
    status: &'static str,
    paused: bool,
    svg: String,
    totals: Vec<(&'static str, u64)>,
    ended: Vec<(String, u64)>,
    not_entered: Vec<(String, u64)>,
    steps: Vec<StepRow>,
    runs: Vec<RunRow>,
    source: String,
    lines: Vec<SourceLine>,
    problems: Vec<String>,
    notice: Option<String>,
    can_edit: bool,
    preview: Option<Vec<Played>>,
    preview_problem: Option<String>,
    profile_key: String,
    events: String,
}

/// What the page shows beyond the flow as it is: an edit that did not save, or a preview.
#[derive(Default)]
struct Extra {
    source: Option<String>,
    problems: Vec<Problem>,
    notice: Option<String>,
    preview: Option<Vec<Played>>,
    preview_problem: Option<String>,
    profile_key: String,
    events: String,
}

#[derive(Deserialize)]
pub struct Saved {
    saved: Option<u32>,
}

/// `GET /flows/{id}`.
pub async fn show(
    signed_in: Option<SignedIn>,
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(saved): Query<Saved>,
) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    let words = Lang::of(&headers).words();
    let notice = saved.saved.map(|v| format!("{} {v}", words.saved_version));
    render(engine, &headers, &signed_in, id, Extra { notice, ..Extra::default() }).await
}

async fn render(engine: Arc<Engine>, headers: &HeaderMap, signed_in: &SignedIn, id: String, extra: Extra) -> Response {
    let lang = Lang::of(headers);
    let words = lang.words();
    let zone = Zone::of(headers);
    let defs = engine.flow_definitions();
    let Some(flow) = defs.flows.get(&id).and_then(|versions| versions.values().next_back()).cloned() else {
        return not_found(headers);
    };
    let flow_id = id.clone();
    let found = blocking(move || Ok((engine.flow_stats(&flow_id)?, engine.runs(None, Some(&flow_id), 20)?))).await;
    let (stats, runs) = match found {
        Ok((stats, runs)) => (stats_of(stats), runs),
        Err(e) => return secured(e.into_response()),
    };
    let reached: BTreeMap<String, u64> =
        flow.steps.iter().map(|s| (s.id.clone(), measure(&stats, &s.id, "reached"))).collect();
    let svg = graph::draw(&flow, &reached, measure(&stats, "", "entered"));
    let steps = flow
        .steps
        .iter()
        .map(|s| {
            let decided = ["approved", "rejected", "expired"]
                .iter()
                .map(|m| (*m, measure(&stats, &s.id, m)))
                .filter(|(_, n)| *n > 0)
                .map(|(m, n)| format!("{m} {n}"))
                .collect::<Vec<_>>()
                .join(" · ");
            StepRow {
                id: s.id.clone(),
                label: graph::step_label(s),
                reached: measure(&stats, &s.id, "reached"),
                acted: measure(&stats, &s.id, "acted"),
                skipped: by_reason(&stats, &s.id, "skipped:"),
                arms: by_reason(&stats, &s.id, "arm:")
                    .into_iter()
                    .map(|(arm, n)| (graph::arm_label(s, &arm), n))
                    .collect(),
                decided,
            }
        })
        .collect();
    let entered = measure(&stats, "", "entered");
    // A run fails at a step; completion and exits are the flow's.
    let failed: u64 = stats.values().filter_map(|m| m.get("failed")).sum();
    let ended_total: u64 = measure(&stats, "", "completed")
        + failed
        + by_reason(&stats, "", "exited:").iter().map(|(_, n)| n).sum::<u64>();
    let totals = vec![
        (words.entered, entered),
        (words.unique_profiles, measure(&stats, "", "profiles")),
        (words.goal_reached, measure(&stats, "", "goal")),
        (words.completed, measure(&stats, "", "completed")),
        (words.failed, failed),
        (words.going_now, entered.saturating_sub(ended_total)),
    ];
    let runs = runs
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(r).ok())
        .map(|r| RunRow {
            id: text(&r["id"]),
            profile: text(&r["profile"]),
            version: text(&r["version"]),
            state: text(&r["status"]["state"]),
            started: r["started_at"].as_i64().map(|ms| zone.show(ms)).unwrap_or_default(),
        })
        .collect();
    let source = extra.source.unwrap_or_else(|| flow.source.clone());
    let (lines, problems) = super::editor::mark(&source, &extra.problems);
    page(&FlowPage {
        lang: lang.code(),
        title: words.flow,
        words,
        who: Who::of(&signed_in.session),
        id,
        name: flow.name.clone().unwrap_or_default(),
        version: flow.version,
        category: flow.category.clone(),
        trigger: graph::trigger_label(&flow),
        status: status(&flow, words),
        paused: flow.paused,
        svg,
        totals,
        ended: by_reason(&stats, "", "exited:"),
        not_entered: by_reason(&stats, "", "not_entered:"),
        steps,
        runs,
        source,
        lines,
        problems,
        notice: extra.notice,
        can_edit: signed_in.session.person.role >= Role::Marketer,
        preview: extra.preview,
        preview_problem: extra.preview_problem,
        profile_key: extra.profile_key,
        events: extra.events,
    })
}

#[derive(Deserialize)]
pub struct EditForm {
    csrf: String,
    source: String,
    /// `save`, or `preview`.
    #[serde(default)]
    intent: String,
    #[serde(default)]
    profile: String,
    #[serde(default)]
    events: String,
}

#[derive(Deserialize)]
pub struct PauseForm {
    csrf: String,
}

/// `POST /flows/{id}/pause` and `/resume`: marketers.
pub async fn pause(
    signed_in: Option<SignedIn>,
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    Path((id, verb)): Path<(String, String)>,
    Form(form): Form<PauseForm>,
) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    if !may_post(&signed_in, Role::Marketer, &form.csrf, &headers) {
        return secured(StatusCode::FORBIDDEN.into_response());
    }
    let paused = match verb.as_str() {
        "pause" => true,
        "resume" => false,
        _ => return not_found(&headers),
    };
    if !engine.flow_definitions().flows.contains_key(&id) {
        return not_found(&headers);
    }
    let (by, id_for) = (signed_in.session.person.email.clone(), id.clone());
    match blocking(move || Ok(engine.pause_flow(&id_for, paused, &by)?)).await {
        Ok(_) => secured(Redirect::to(&format!("/flows/{id}")).into_response()),
        Err(e) => secured(e.into_response()),
    }
}

/// The most YAML the editor takes, as the API takes.
const MAX_SOURCE: usize = 256 * 1024;

/// `POST /flows/{id}`: saves the YAML as a new version (marketers and above), or previews it (anyone signed in).
/// Problems come back on the page, at their line and column.
pub async fn edit(
    signed_in: Option<SignedIn>,
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<EditForm>,
) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    let words = Lang::of(&headers).words();
    let saving = form.intent != "preview";
    let least = if saving { Role::Marketer } else { Role::Viewer };
    if !may_post(&signed_in, least, &form.csrf, &headers) {
        return secured(StatusCode::FORBIDDEN.into_response());
    }
    if form.source.len() > MAX_SOURCE {
        return secured(StatusCode::PAYLOAD_TOO_LARGE.into_response());
    }
    let source = form.source.replace("\r\n", "\n");
    if saving {
        let by = signed_in.session.person.email.clone();
        let (engine_for, id_for, source_for) = (engine.clone(), id.clone(), source.clone());
        let saved = blocking(move || match engine_for.put_definition("flow", &id_for, &source_for, Some(&by)) {
            Ok(version) => Ok(Ok(version)),
            Err(DefinitionError::Invalid(problems)) => Ok(Err(problems)),
            Err(e) => Ok(Err(vec![super::editor::unplaced(e.to_string())])),
        })
        .await;
        return match saved {
            Ok(Ok(version)) => secured(Redirect::to(&format!("/flows/{id}?saved={version}")).into_response()),
            // The page again with the problems, as a page: 200, so a browser does not report it as a failed load.
            Ok(Err(problems)) => {
                let extra = Extra { source: Some(source), problems, ..Extra::default() };
                render(engine, &headers, &signed_in, id, extra).await
            }
            Err(e) => secured(e.into_response()),
        };
    }
    let zone = Zone::of(&headers);
    let (engine_for, source_for, key, events) =
        (engine.clone(), source.clone(), form.profile.trim().to_owned(), form.events.clone());
    let played = blocking(move || {
        let profile = match key.as_str() {
            "" => None,
            key => match crate::admin::find(&engine_for, key) {
                Ok(id) => Some(id),
                Err(e) => return Ok(Err((Vec::new(), e.message))),
            },
        };
        Ok(match engine_for.preview_flow(&source_for, profile, Some(&events)) {
            Ok(decisions) => Ok(decisions),
            Err(PreviewError::Invalid(problems)) => Err((problems, String::new())),
            Err(PreviewError::Input(why)) => Err((Vec::new(), why)),
            Err(PreviewError::Engine(e)) => return Err(ApiError::from(e)),
        })
    })
    .await;
    let mut extra = Extra { source: Some(source), profile_key: form.profile, events: form.events, ..Extra::default() };
    match played {
        Ok(Ok(decisions)) => extra.preview = Some(decisions.iter().map(|d| played_of(d, &zone)).collect()),
        Ok(Err((problems, why))) => {
            if problems.is_empty() {
                extra.preview_problem = Some(why);
            } else {
                extra.preview_problem = Some(words.fix_problems_first.to_owned());
                extra.problems = problems;
            }
        }
        Err(e) => return secured(e.into_response()),
    }
    render(engine, &headers, &signed_in, id, extra).await
}

/// A decision as the preview shows it: what was decided, why, and for a message its rendered fields.
fn played_of(d: &Decision, zone: &Zone) -> Played {
    let value = serde_json::to_value(&d.kind).unwrap_or(Value::Null);
    let decision = text(&value["decision"]);
    let mut detail = Vec::new();
    for key in ["reason", "trigger", "arm", "connector", "operation", "fallback", "event"] {
        if let Some(v) = value.get(key).filter(|v| !v.is_null()) {
            detail.push(format!("{key}: {}", text(v)));
        }
    }
    // An action's rendered fields, or the copy a `generate` step wrote (with `by`: who wrote it).
    let message = value["payload"]
        .as_object()
        .or(value["copy"].as_object())
        .map(|fields| {
            fields
                .iter()
                .filter(|(k, v)| !matches!(k.as_str(), "url" | "headers") && !v.is_null())
                .map(|(k, v)| (k.clone(), text(v)))
                .collect()
        })
        .unwrap_or_default();
    Played {
        when: zone.show(d.at),
        step: d.step.clone().unwrap_or_default(),
        decision,
        detail: detail.join(" · "),
        message,
    }
}
