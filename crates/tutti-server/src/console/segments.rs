//! Segments: the list with each one's members and how far its backfill has come (a new or changed segment is
//! worked out over every profile that existed before it; until that finishes, members are still being
//! added), and a segment's page with its definition, its members a page at a time, and for marketers its
//! YAML to change (problems at their line) or a new segment to define.
//!
//! The JSON of the same: `GET /api/v1/segments[/{id}]`, `GET /api/v1/segments/{id}/members` (with the
//! backfill), `PUT /api/v1/segments/{id}`.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tutti_core::ProfileId;
use tutti_engine::people::Role;
use tutti_engine::{DefinitionError, Engine};
use tutti_flows::Problem;
use tutti_store::Backfill;

use super::editor::{SourceLine, mark, unplaced};
use super::{Lang, Who, Words, Zone, may_post, not_found, page, secured, to_sign_in};
use crate::admin::blocking;
use crate::sessions::SignedIn;

/// Members a page shows.
const PAGE: usize = 100;

/// A backfill as a person reads it: `45,000 of 100,000 profiles` and whether it is done.
struct Progress {
    done: u64,
    total: u64,
    finished: bool,
    percent: u64,
}

fn progress(b: Option<&Backfill>) -> Option<Progress> {
    b.map(|b| Progress {
        done: b.done,
        total: b.total,
        finished: b.finished_at.is_some(),
        percent: (b.done * 100).checked_div(b.total).map_or(100, |p| p.min(100)),
    })
}

struct Listed {
    id: String,
    name: String,
    members: u64,
    progress: Option<Progress>,
}

#[derive(Template)]
#[template(path = "segments.html")]
struct SegmentsPage {
    lang: &'static str,
    title: &'static str,
    words: &'static Words,
    who: Who,
    segments: Vec<Listed>,
    can_edit: bool,
    new_id: String,
    source: String,
    lines: Vec<SourceLine>,
    problems: Vec<String>,
}

/// `GET /segments`.
pub async fn list(signed_in: Option<SignedIn>, State(engine): State<Arc<Engine>>, headers: HeaderMap) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    render_list(engine, &headers, &signed_in, String::new(), String::new(), Vec::new()).await
}

async fn render_list(
    engine: Arc<Engine>,
    headers: &HeaderMap,
    signed_in: &SignedIn,
    new_id: String,
    source: String,
    problems: Vec<Problem>,
) -> Response {
    let lang = Lang::of(headers);
    let words = lang.words();
    let found = blocking(move || {
        let defs = engine.flow_definitions();
        let backfills = engine.segment_backfills()?;
        let mut out = Vec::new();
        for (id, segment) in &defs.segments {
            out.push(Listed {
                id: id.clone(),
                name: segment.name.clone().unwrap_or_default(),
                members: engine.segment_members(id, 0, 1)?.1,
                progress: progress(backfills.iter().find(|b| &b.segment == id)),
            });
        }
        Ok(out)
    })
    .await;
    let segments = match found {
        Ok(segments) => segments,
        Err(e) => return secured(e.into_response()),
    };
    let (lines, problems) = mark(&source, &problems);
    page(&SegmentsPage {
        lang: lang.code(),
        title: words.segments,
        words,
        who: Who::of(&signed_in.session),
        segments,
        can_edit: signed_in.session.person.role >= Role::Marketer,
        new_id,
        source,
        lines,
        problems,
    })
}

/// Members day by day as bars, each with its day and count as its title, on a scale from zero.
fn chart(days: &[(String, u64)]) -> String {
    use std::fmt::Write;
    if days.is_empty() {
        return String::new();
    }
    let top = days.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1) as f64;
    let (w, h, gap) = (18usize, 80.0, 4usize);
    let width = days.len() * (w + gap);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="sizes" viewBox="0 0 {width} 100" width="{width}" height="100" role="img">"#
    );
    for (i, (day, n)) in days.iter().enumerate() {
        let bar = (*n as f64 / top * h).max(1.0);
        let (x, y) = (i * (w + gap), 90.0 - bar);
        // A day is YYYY-MM-DD and a count a number: nothing here needs escaping.
        let day = day.chars().filter(|c| c.is_ascii_digit() || *c == '-').collect::<String>();
        let _ =
            write!(svg, r#"<rect x="{x}" y="{y:.1}" width="{w}" height="{bar:.1}"><title>{day}: {n}</title></rect>"#);
    }
    svg.push_str("</svg>");
    svg
}

#[derive(Template)]
#[template(path = "segment.html")]
struct SegmentPage {
    lang: &'static str,
    title: &'static str,
    words: &'static Words,
    who: Who,
    id: String,
    name: String,
    count: u64,
    progress: Option<Progress>,
    /// Members day by day, as SVG bars (empty before the first day is recorded).
    chart: String,
    started: String,
    members: Vec<String>,
    next: Option<String>,
    source: String,
    lines: Vec<SourceLine>,
    problems: Vec<String>,
    notice: Option<String>,
    can_edit: bool,
}

#[derive(Deserialize)]
pub struct SegmentQuery {
    after: Option<String>,
    saved: Option<u32>,
}

/// `GET /segments/{id}`.
pub async fn show(
    signed_in: Option<SignedIn>,
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<SegmentQuery>,
) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    let words = Lang::of(&headers).words();
    let after = q.after.and_then(|a| a.parse::<ProfileId>().ok()).map_or(0, |p| p.0);
    let notice = q.saved.map(|v| format!("{} {v}", words.saved_version));
    render(engine, &headers, &signed_in, id, after, None, Vec::new(), notice).await
}

#[allow(clippy::too_many_arguments)]
async fn render(
    engine: Arc<Engine>,
    headers: &HeaderMap,
    signed_in: &SignedIn,
    id: String,
    after: u64,
    edited: Option<String>,
    problems: Vec<Problem>,
    notice: Option<String>,
) -> Response {
    let lang = Lang::of(headers);
    let words = lang.words();
    let zone = Zone::of(headers);
    let Some(segment) = engine.flow_definitions().segments.get(&id).cloned() else { return not_found(headers) };
    let segment_id = id.clone();
    let found = blocking(move || {
        // The backfill before the members, as in the API: finished means every member it added is counted.
        let backfill = engine.segment_backfills()?.into_iter().find(|b| b.segment == segment_id);
        let (members, count) = engine.segment_members(&segment_id, after, PAGE)?;
        let history = engine.segment_history(&segment_id, 30)?;
        Ok((members, count, backfill, history))
    })
    .await;
    let (members, count, backfill, history) = match found {
        Ok(found) => found,
        Err(e) => return secured(e.into_response()),
    };
    let next = (members.len() == PAGE).then(|| members.last().map(ToString::to_string)).flatten();
    let source = edited.unwrap_or_else(|| segment.source.clone());
    let (lines, problems) = mark(&source, &problems);
    page(&SegmentPage {
        lang: lang.code(),
        title: words.segment,
        words,
        who: Who::of(&signed_in.session),
        id,
        name: segment.name.clone().unwrap_or_default(),
        count,
        chart: chart(&history),
        started: backfill.as_ref().map(|b| zone.show(b.started_at)).unwrap_or_default(),
        progress: progress(backfill.as_ref()),
        members: members.iter().map(ToString::to_string).collect(),
        next,
        source,
        lines,
        problems,
        notice,
        can_edit: signed_in.session.person.role >= Role::Marketer,
    })
}

#[derive(Deserialize)]
pub struct SegmentForm {
    csrf: String,
    source: String,
    /// For a new segment: its id (the YAML's `segment:` must say the same).
    #[serde(default)]
    id: String,
}

/// The most YAML the editor takes.
const MAX_SOURCE: usize = 64 * 1024;

/// Saves a segment's YAML as its new definition, on the audit log; the problems, located, when it does not.
async fn save(
    engine: &Arc<Engine>,
    by: String,
    id: String,
    source: String,
) -> Result<Result<u32, Vec<Problem>>, Response> {
    let engine = engine.clone();
    let saved = blocking(move || match engine.put_definition("segment", &id, &source, Some(&by)) {
        Ok(version) => Ok(Ok(version)),
        Err(DefinitionError::Invalid(problems)) => Ok(Err(problems)),
        Err(e) => Ok(Err(vec![unplaced(e.to_string())])),
    })
    .await;
    saved.map_err(|e| secured(e.into_response()))
}

/// The form's YAML, when a marketer may post it and it is not too long; else the status that refuses it.
fn posted(signed_in: &SignedIn, form: &SegmentForm, headers: &HeaderMap) -> Result<String, StatusCode> {
    if !may_post(signed_in, Role::Marketer, &form.csrf, headers) {
        return Err(StatusCode::FORBIDDEN);
    }
    if form.source.len() > MAX_SOURCE {
        return Err(StatusCode::PAYLOAD_TOO_LARGE);
    }
    Ok(form.source.replace("\r\n", "\n"))
}

/// `POST /segments/{id}`: marketers save a segment's YAML; its backfill starts at once.
pub async fn edit(
    signed_in: Option<SignedIn>,
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<SegmentForm>,
) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    let source = match posted(&signed_in, &form, &headers) {
        Ok(source) => source,
        Err(refused) => return secured(refused.into_response()),
    };
    let by = signed_in.session.person.email.clone();
    match save(&engine, by, id.clone(), source.clone()).await {
        Ok(Ok(version)) => secured(Redirect::to(&format!("/segments/{id}?saved={version}")).into_response()),
        Ok(Err(problems)) => render(engine, &headers, &signed_in, id, 0, Some(source), problems, None).await,
        Err(response) => response,
    }
}

/// `POST /segments`: marketers define a new segment.
pub async fn create(
    signed_in: Option<SignedIn>,
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    Form(form): Form<SegmentForm>,
) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    let source = match posted(&signed_in, &form, &headers) {
        Ok(source) => source,
        Err(refused) => return secured(refused.into_response()),
    };
    let id = form.id.trim().to_owned();
    let by = signed_in.session.person.email.clone();
    match save(&engine, by, id.clone(), source.clone()).await {
        Ok(Ok(version)) => secured(Redirect::to(&format!("/segments/{id}?saved={version}")).into_response()),
        Ok(Err(problems)) => render_list(engine, &headers, &signed_in, id, source, problems).await,
        Err(response) => response,
    }
}
