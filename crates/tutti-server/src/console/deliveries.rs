//! Deliveries and dead letters: every action meant for a customer or a tool, newest first, filtered by
//! connector, flow, profile, outcome and time; marketers replay dead letters, chosen or all that match.
//!
//! The JSON of the same: `GET /api/v1/deliveries`, `POST /api/v1/dead-letters/replay`.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::Value;
use tutti_engine::people::Role;
use tutti_engine::{DeadLetterFilter, Engine};

use super::{Lang, Who, Words, Zone, field, may_post, page, secured, text, to_sign_in};
use crate::admin::blocking;
use crate::delivery::{DeliveriesQuery, OUTCOMES};
use crate::sessions::SignedIn;

const PAGE: usize = 100;

struct Row {
    seq: u64,
    when: String,
    connector: String,
    operation: String,
    flow: String,
    step: String,
    profile: String,
    outcome: &'static str,
    dead: bool,
    attempts: u32,
    why: String,
}

#[derive(Template)]
#[template(path = "deliveries.html")]
struct DeliveriesPage {
    lang: &'static str,
    title: &'static str,
    words: &'static Words,
    who: Who,
    connectors: Vec<&'static str>,
    outcomes: Vec<(&'static str, &'static str)>,
    chosen: Chosen,
    rows: Vec<Row>,
    problem: Option<String>,
    notice: Option<String>,
    next: Option<String>,
    can_replay: bool,
}

/// The filter as the form shows it again.
#[derive(Default)]
struct Chosen {
    connector: String,
    flow: String,
    profile: String,
    outcome: String,
    since: String,
    until: String,
}

/// `GET /deliveries`.
pub async fn list(
    signed_in: Option<SignedIn>,
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    let lang = Lang::of(&headers);
    let words = lang.words();
    let zone = Zone::of(&headers);
    let get = |name: &str| field(&pairs, name);
    let chosen = Chosen {
        connector: get("connector"),
        flow: get("flow"),
        profile: get("profile"),
        outcome: get("outcome"),
        since: get("since"),
        until: get("until"),
    };
    let replayed = get("replayed");
    let before = get("before").parse::<u64>().unwrap_or(0);
    let query = DeliveriesQuery {
        profile: Some(chosen.profile.clone()),
        connector: Some(chosen.connector.clone()),
        flow: Some(chosen.flow.clone()),
        outcome: Some(chosen.outcome.clone()),
        since: Some(chosen.since.clone()),
        until: Some(chosen.until.clone()),
        ..DeliveriesQuery::default()
    };
    let found = blocking(move || {
        let filter = query.filter(&engine)?;
        Ok(engine.deliveries(&filter, before, PAGE)?)
    })
    .await;
    let (rows, problem) = match found {
        Ok(rows) => (rows, None),
        Err(e) if (400..500).contains(&e.code.http_status()) => (Vec::new(), Some(e.message.clone())),
        Err(e) => return secured(e.into_response()),
    };
    let next = (rows.len() == PAGE).then(|| rows.last().map(|d| d.row.seq)).flatten().map(|seq| {
        let mut link: Vec<(String, String)> =
            pairs.iter().filter(|(k, _)| k != "before" && k != "replayed").cloned().collect();
        link.push(("before".into(), seq.to_string()));
        link.iter().map(|(k, v)| format!("{}={}", escape_query(k), escape_query(v))).collect::<Vec<_>>().join("&")
    });
    let rows = rows
        .iter()
        .map(|d| {
            let action: Value = serde_json::from_slice(&d.row.body).unwrap_or(Value::Null);
            Row {
                seq: d.row.seq,
                when: zone.show(d.row.created_at),
                connector: d.row.connector.clone(),
                operation: text(&action["operation"]),
                flow: text(&action["flow"]),
                step: text(&action["step"]),
                profile: d.row.profile.to_string(),
                outcome: words.outcome(&d.state),
                dead: d.state == "dead",
                attempts: d.row.attempts,
                why: d.error.clone().unwrap_or_default(),
            }
        })
        .collect();
    let notice = replayed.parse::<usize>().ok().map(|n| format!("{} {n}", words.replayed));
    page(&DeliveriesPage {
        lang: lang.code(),
        title: words.deliveries,
        words,
        who: Who::of(&signed_in.session),
        connectors: tutti_connectors::ALL.iter().map(|k| k.name).collect(),
        outcomes: OUTCOMES.iter().map(|o| (*o, words.outcome(o))).collect(),
        chosen,
        rows,
        problem,
        notice,
        next,
        can_replay: signed_in.session.person.role >= Role::Marketer,
    })
}

/// Percent-encodes a query string's key or value.
pub(super) fn escape_query(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `POST /deliveries/replay`: the chosen dead letters (`seq`, repeated), or with `all` every dead letter of the
/// connector and flow given (at most 1,000). Marketers and above, with the session's CSRF token.
pub async fn replay(
    signed_in: Option<SignedIn>,
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    let get = |name: &str| Some(field(&pairs, name));
    if !may_post(&signed_in, Role::Marketer, &field(&pairs, "csrf"), &headers) {
        return secured(StatusCode::FORBIDDEN.into_response());
    }
    let seqs: Vec<u64> = pairs.iter().filter(|(k, _)| k == "seq").filter_map(|(_, v)| v.parse().ok()).collect();
    let all = get("all").is_some();
    if seqs.is_empty() && !all {
        return secured(Redirect::to("/deliveries?outcome=dead").into_response());
    }
    let filter = DeadLetterFilter {
        seqs: if all { Vec::new() } else { seqs },
        connector: get("connector").filter(|c| !c.is_empty()),
        flow: get("flow").filter(|f| !f.is_empty()),
    };
    let by = signed_in.session.person.email.clone();
    match blocking(move || crate::delivery::replay_noted(&engine, &filter, 1000, &by)).await {
        Ok(rows) => secured(Redirect::to(&format!("/deliveries?replayed={}", rows.len())).into_response()),
        Err(e) => secured(e.into_response()),
    }
}
