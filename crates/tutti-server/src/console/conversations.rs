//! Conversations: the questions and objections customers raise in calls and chats, most raised first, each with
//! its weekly trend drawn on the server, its win rate, what customers said, and the reply that wins for it.
//!
//! The JSON of the same: `GET /api/v1/conversations/topics` and `GET /api/v1/conversations/scripts`.

use std::fmt::Write;
use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use tutti_conversations::service::{Report, TopicView};
use tutti_engine::Engine;

use super::{Lang, Who, Words, page, secured, to_sign_in};
use crate::admin::blocking;
use crate::sessions::SignedIn;

struct TopicRow {
    label: String,
    label_en: String,
    language: String,
    kind: &'static str,
    conversations: u64,
    turns: u64,
    won: String,
    trend: String,
    said: String,
    best: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "conversations.html")]
struct ConversationsPage {
    lang: &'static str,
    title: &'static str,
    words: &'static Words,
    who: Who,
    conversations: usize,
    sentences: usize,
    unassigned: usize,
    grouped_by: String,
    labelled_by: String,
    notes: Vec<String>,
    topics: Vec<TopicRow>,
}

/// A topic's conversations week by week as bars, on the topic's own scale; the last week is the right-most bar.
fn trend(t: &TopicView) -> String {
    let weeks: Vec<u64> = t.trend.iter().rev().take(12).rev().map(|w| w.conversations).collect();
    let top = weeks.iter().copied().max().unwrap_or(0).max(1) as f64;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="trend" viewBox="0 0 {w} 20" width="{w}" height="20" role="img" aria-label="{}">"#,
        weeks.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
        w = weeks.len().max(1) * 8,
    );
    for (i, n) in weeks.iter().enumerate() {
        let h = (*n as f64 / top * 18.0).max(if *n > 0 { 1.0 } else { 0.0 });
        let _ = write!(svg, r#"<rect x="{}" y="{:.1}" width="6" height="{h:.1}"/>"#, i * 8, 20.0 - h);
    }
    svg.push_str("</svg>");
    svg
}

fn rows(report: &Report, words: &Words) -> Vec<TopicRow> {
    report
        .topics
        .iter()
        .map(|t| {
            let best = report
                .scripts
                .iter()
                .find(|s| s.topic == t.id)
                .and_then(|s| s.scripts.iter().find(|r| r.winner))
                .map(|r| {
                    (
                        r.reply.clone(),
                        format!("{:+.0} pt ({:+.0}–{:+.0})", r.lift * 100.0, r.lift_low * 100.0, r.lift_high * 100.0),
                    )
                });
            TopicRow {
                label: t.label.clone(),
                label_en: t.label_en.clone(),
                language: t.language.clone(),
                kind: if t.kind == tutti_conversations::mine::Kind::Objection {
                    words.kind_objection
                } else {
                    words.kind_question
                },
                conversations: t.conversations,
                turns: t.turns,
                won: t.win_rate.map_or_else(|| "–".to_owned(), |r| format!("{:.0}%", r * 100.0)),
                trend: trend(t),
                said: t.examples.first().cloned().unwrap_or_default(),
                best,
            }
        })
        .collect()
}

/// `GET /conversations`.
pub async fn show(signed_in: Option<SignedIn>, State(engine): State<Arc<Engine>>, headers: HeaderMap) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    let lang = Lang::of(&headers);
    let words = lang.words();
    let report = match blocking(move || {
        engine.conversations().report().map_err(|e| crate::error::ApiError::internal("conversation store", e))
    })
    .await
    {
        Ok(report) => report,
        Err(e) => return secured(e.into_response()),
    };
    page(&ConversationsPage {
        lang: lang.code(),
        title: words.conversations_page,
        words,
        who: Who::of(&signed_in.session),
        conversations: report.conversations,
        sentences: report.sentences,
        unassigned: report.unassigned,
        grouped_by: report.grouped_by.clone(),
        labelled_by: report.labelled_by.clone(),
        notes: report.notes.clone(),
        topics: rows(&report, words),
    })
}
