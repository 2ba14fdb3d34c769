//! Broadcasts: a one-off message to a segment, reviewed before it goes (how many it reaches, the message as a
//! few members would get it, what the policies say about each now), sent now or at a time, with its progress
//! and a link to its flow's deliveries; cancelled until sent. Marketers make and cancel them.
//!
//! The JSON of the same: `/api/v1/broadcasts[/review|/{id}/cancel]`.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tutti_engine::people::Role;
use tutti_engine::{BroadcastError, Engine};

use super::editor::{SourceLine, mark};
use super::{Lang, Who, Words, Zone, may_post, page, secured, text, to_sign_in};
use crate::admin::blocking;
use crate::broadcasts::DraftBody;
use crate::sessions::SignedIn;

struct Row {
    id: String,
    name: String,
    segment: String,
    status: String,
    send_at: String,
    progress: String,
    created_by: String,
    open: bool,
}

struct SampleRow {
    profile: String,
    fields: Vec<(String, String)>,
    error: String,
    verdict: String,
}

#[derive(Default)]
struct Draft {
    name: String,
    segment: String,
    action: String,
    with: String,
    category: String,
    send_at: String,
}

#[derive(Template)]
#[template(path = "broadcasts.html")]
struct BroadcastsPage {
    lang: &'static str,
    title: &'static str,
    words: &'static Words,
    who: Who,
    rows: Vec<Row>,
    segments: Vec<String>,
    actions: Vec<String>,
    draft: Draft,
    reached: Option<u64>,
    samples: Vec<SampleRow>,
    lines: Vec<SourceLine>,
    problems: Vec<String>,
    can_send: bool,
}

const EXAMPLE_WITH: &str = "to: \"{{ profile.traits.email }}\"\nsubject: \"Ưu đãi cuối năm cho {{ profile.traits.name }}\"\ntext: \"Chào {{ profile.traits.name }}, ...\"";

async fn render(
    engine: Arc<Engine>,
    headers: &HeaderMap,
    signed_in: &SignedIn,
    draft: Draft,
    review: Option<tutti_engine::BroadcastReview>,
    problems: Vec<tutti_flows::Problem>,
) -> Response {
    let lang = Lang::of(headers);
    let words = lang.words();
    let zone = Zone::of(headers);
    let segments: Vec<String> = engine.flow_definitions().segments.keys().cloned().collect();
    let actions: Vec<String> = tutti_connectors::ALL
        .iter()
        .filter(|k| !matches!(k.name, "ai" | "decide" | "log"))
        .flat_map(|k| k.operation_names().into_iter().map(move |o| format!("{}.{o}", k.name)))
        .collect();
    let all = match blocking(move || Ok(engine.broadcasts()?)).await {
        Ok(all) => all,
        Err(e) => return secured(e.into_response()),
    };
    let rows = all
        .iter()
        .map(|b| Row {
            id: b.id.clone(),
            name: b.name.clone(),
            segment: b.segment.clone(),
            status: b.status.clone(),
            send_at: zone.show(b.send_at),
            progress: if b.total > 0 || b.status != "scheduled" {
                format!("{} / {}", b.done, b.total)
            } else {
                String::new()
            },
            created_by: b.created_by.clone(),
            open: matches!(b.status.as_str(), "scheduled" | "sending"),
        })
        .collect();
    let (reached, samples) = match review {
        Some(r) => (
            Some(r.members),
            r.samples
                .iter()
                .map(|s| SampleRow {
                    profile: s.profile.to_string(),
                    fields: s
                        .rendered
                        .as_ref()
                        .ok()
                        .and_then(|m| m.as_object())
                        .map(|m| m.iter().map(|(k, v)| (k.clone(), text(v))).collect())
                        .unwrap_or_default(),
                    error: s.rendered.as_ref().err().cloned().unwrap_or_default(),
                    verdict: s.verdict.clone(),
                })
                .collect(),
        ),
        None => (None, Vec::new()),
    };
    let with =
        if draft.with.is_empty() && draft.action.is_empty() { EXAMPLE_WITH.to_owned() } else { draft.with.clone() };
    let (lines, problems) = mark(&with, &problems);
    page(&BroadcastsPage {
        lang: lang.code(),
        title: words.broadcasts,
        words,
        who: Who::of(&signed_in.session),
        rows,
        segments,
        actions,
        draft: Draft { with, ..draft },
        reached,
        samples,
        lines,
        problems,
        can_send: signed_in.session.person.role >= Role::Marketer,
    })
}

/// `GET /broadcasts`.
pub async fn list(signed_in: Option<SignedIn>, State(engine): State<Arc<Engine>>, headers: HeaderMap) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    render(engine, &headers, &signed_in, Draft::default(), None, Vec::new()).await
}

#[derive(Deserialize)]
pub struct BroadcastForm {
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    segment: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    with: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    send_at: String,
    /// `review` or `schedule`.
    #[serde(default)]
    intent: String,
}

/// `POST /broadcasts`: review a draft (anyone signed in) or schedule it (marketers).
pub async fn submit(
    signed_in: Option<SignedIn>,
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    Form(form): Form<BroadcastForm>,
) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    let scheduling = form.intent == "schedule";
    let least = if scheduling { Role::Marketer } else { Role::Viewer };
    if !may_post(&signed_in, least, &form.csrf, &headers) {
        return secured(StatusCode::FORBIDDEN.into_response());
    }
    let draft = Draft {
        name: form.name.clone(),
        segment: form.segment.clone(),
        action: form.action.clone(),
        with: form.with.replace("\r\n", "\n"),
        category: form.category.clone(),
        send_at: form.send_at.clone(),
    };
    let body = DraftBody {
        name: draft.name.clone(),
        segment: draft.segment.clone(),
        action: draft.action.clone(),
        with: draft.with.clone(),
        category: draft.category.clone(),
        send_at: Some(draft.send_at.clone()),
    };
    let parsed = match body.draft() {
        Ok(parsed) => parsed,
        Err(e) => {
            let problem = super::editor::unplaced(e.message);
            return render(engine, &headers, &signed_in, draft, None, vec![problem]).await;
        }
    };
    let by = signed_in.session.person.email.clone();
    let engine_for = engine.clone();
    let outcome = blocking(move || {
        Ok(if scheduling {
            engine_for.create_broadcast(&parsed, &by).map(|_| None)
        } else {
            engine_for.review_broadcast(&parsed).map(Some)
        })
    })
    .await;
    match outcome {
        Ok(Ok(None)) => secured(Redirect::to("/broadcasts").into_response()),
        Ok(Ok(Some(review))) => render(engine, &headers, &signed_in, draft, Some(review), Vec::new()).await,
        Ok(Err(BroadcastError::Invalid(problems))) => render(engine, &headers, &signed_in, draft, None, problems).await,
        Ok(Err(BroadcastError::Engine(e))) => secured(crate::error::ApiError::from(e).into_response()),
        Err(e) => secured(e.into_response()),
    }
}

#[derive(Deserialize)]
pub struct CancelForm {
    csrf: String,
}

/// `POST /broadcasts/{id}/cancel`: marketers.
pub async fn cancel(
    signed_in: Option<SignedIn>,
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CancelForm>,
) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    if !may_post(&signed_in, Role::Marketer, &form.csrf, &headers) {
        return secured(StatusCode::FORBIDDEN.into_response());
    }
    let by = signed_in.session.person.email.clone();
    match blocking(move || Ok(engine.cancel_broadcast(&id, &by)?)).await {
        Ok(_) => secured(Redirect::to("/broadcasts").into_response()),
        Err(e) => secured(e.into_response()),
    }
}
