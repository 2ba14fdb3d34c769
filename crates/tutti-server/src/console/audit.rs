//! The audit log, for admins: model calls, approvals, sign-ins, changes to people and definitions, replays and
//! erasures, each with who or what did it; filtered, newest first, and exported as JSON Lines through
//! `GET /api/v1/audit?format=jsonl` (the same filter).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use tutti_core::ProfileId;
use tutti_core::audit::{AuditFilter, AuditKind};
use tutti_engine::Engine;
use tutti_engine::people::Role;

use super::{Lang, Who, Words, Zone, field, not_found, page, secured, text, to_sign_in};
use crate::admin::blocking;
use crate::sessions::SignedIn;

/// Records a page shows, the newest of those that match.
const PAGE: usize = 200;

struct Entry {
    seq: u64,
    when: String,
    kind: &'static str,
    by: String,
    flow: String,
    profile: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    lang: &'static str,
    title: &'static str,
    words: &'static Words,
    who: Who,
    kinds: Vec<&'static str>,
    kind: String,
    flow: String,
    profile: String,
    since: String,
    until: String,
    entries: Vec<Entry>,
    export: String,
    problem: Option<String>,
}

/// `GET /audit`: admins only (others get the not-found page, as the API refuses them).
pub async fn log(
    signed_in: Option<SignedIn>,
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    if signed_in.session.person.role < Role::Admin {
        return not_found(&headers);
    }
    let lang = Lang::of(&headers);
    let words = lang.words();
    let zone = Zone::of(&headers);
    let get = |name: &str| field(&pairs, name);
    let (kind, flow, profile, since, until) = (get("kind"), get("flow"), get("profile"), get("since"), get("until"));
    let mut problems = Vec::new();
    let time = |t: &str, problems: &mut Vec<String>| {
        if t.is_empty() {
            return None;
        }
        let parsed = tutti_core::time::parse_timestamp(t);
        if parsed.is_none() {
            problems.push(format!("{t}: {}", words.not_a_time));
        }
        parsed
    };
    let filter = AuditFilter {
        kind: AuditKind::from_name(&kind),
        flow: Some(flow.clone()).filter(|f| !f.is_empty()),
        run: None,
        profile: if profile.is_empty() {
            None
        } else {
            let parsed = profile.parse::<ProfileId>().ok();
            if parsed.is_none() {
                problems.push(format!("{profile}: {}", words.not_a_profile_id));
            }
            parsed
        },
        since: time(&since, &mut problems),
        until: time(&until, &mut problems),
    };
    let mut export: Vec<String> = vec!["format=jsonl".into()];
    for (key, value) in [("kind", &kind), ("flow", &flow), ("profile", &profile), ("since", &since), ("until", &until)]
    {
        if !value.is_empty() {
            export.push(format!("{key}={}", super::deliveries::escape_query(value)));
        }
    }
    let rows = if problems.is_empty() {
        match blocking(move || Ok(engine.audit_newest(&filter, 0, PAGE)?)).await {
            Ok(rows) => rows,
            Err(e) => return secured(e.into_response()),
        }
    } else {
        Vec::new()
    };
    let entries = rows
        .into_iter()
        .map(|(seq, r)| {
            let mut detail = r.detail.clone();
            let by = detail.as_object_mut().and_then(|d| d.remove("by").or_else(|| d.remove("approved_by")));
            let mut shown = text(&detail);
            if shown.chars().count() > 400 {
                shown = shown.chars().take(400).collect::<String>() + "…";
            }
            Entry {
                seq,
                when: zone.show(r.at),
                kind: r.kind.as_str(),
                by: by.as_ref().map(text).unwrap_or_default(),
                flow: r.flow.unwrap_or_default(),
                profile: r.profile.map(|p| p.to_string()).unwrap_or_default(),
                detail: shown,
            }
        })
        .collect();
    page(&AuditPage {
        lang: lang.code(),
        title: words.audit,
        words,
        who: Who::of(&signed_in.session),
        kinds: AuditKind::ALL.iter().map(|k| k.as_str()).collect(),
        kind,
        flow,
        profile,
        since,
        until,
        entries,
        export: export.join("&"),
        problem: (!problems.is_empty()).then(|| problems.join("; ")),
    })
}
