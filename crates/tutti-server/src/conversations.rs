//! The admin API for conversations: import JSON lines, the topics customers raise, the golden scripts, the best
//! replies for a customer's words, and people's edits to topics. Each answers the JSON `tutti conversations`
//! prints with `--format json`.

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};
use tutti_conversations::service;
use tutti_conversations::store::{StoreError, TopicEdit};
use tutti_core::ErrorCode;
use tutti_engine::Engine;

use crate::admin::{Admin, ApiQuery, bad_query, blocking};
use crate::error::{ApiError, json_body, to_json};

/// Largest body of JSON lines accepted through the API; bigger files go through `tutti conversations import`,
/// which streams.
const MAX_IMPORT_BYTES: usize = 64 * 1024 * 1024;

/// Longest text `suggest` reads.
const MAX_SUGGEST_CHARS: usize = 2_000;

fn store_error(e: StoreError) -> ApiError {
    ApiError::internal("conversation store", e)
}

/// `POST /api/v1/conversations/import`: conversations as JSON lines; the answer is the import's summary.
pub async fn import(_: Admin, State(engine): State<Arc<Engine>>, body: Body) -> Result<Json<Value>, ApiError> {
    let bytes = axum::body::to_bytes(body, MAX_IMPORT_BYTES).await.map_err(|_| {
        ApiError::new(
            ErrorCode::RequestTooLarge,
            format!(
                "the body is larger than {} MiB; import it with `tutti conversations import`",
                MAX_IMPORT_BYTES >> 20
            ),
        )
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(ErrorCode::InvalidRequest, "the body is empty: send conversations as JSON lines"));
    }
    let importer = engine.clone();
    let summary =
        blocking(move || importer.conversations().import_lines(std::io::Cursor::new(bytes)).map_err(store_error))
            .await?;
    if summary.changes.inserted + summary.changes.updated > 0 {
        // Mined at once, so flows hear of topics without waiting for someone to read them.
        engine.mine_conversations_now();
    }
    to_json("import summary", &summary)
}

/// `GET /api/v1/conversations/mining`: the last mining in brief, with what grouped and named its topics.
pub async fn mining(_: Admin, State(engine): State<Arc<Engine>>) -> Result<Json<Value>, ApiError> {
    let r = blocking(move || engine.conversations().report().map_err(store_error)).await?;
    Ok(Json(json!({
        "mined_at": tutti_core::time::format_timestamp(r.mined_at),
        "conversations": r.conversations,
        "turns": r.turns,
        "sentences": r.sentences,
        "unassigned": r.unassigned,
        "topics": r.topics.len(),
        "grouped_by": r.grouped_by,
        "labelled_by": r.labelled_by,
        "notes": r.notes,
    })))
}

/// `GET /api/v1/conversations/topics`: the topics, most raised first.
pub async fn topics(_: Admin, State(engine): State<Arc<Engine>>) -> Result<Json<Value>, ApiError> {
    let report = blocking(move || engine.conversations().report().map_err(store_error)).await?;
    to_json("topics", &report.topics)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptsQuery {
    topic: Option<String>,
}

/// `GET /api/v1/conversations/scripts[?topic=]`: each topic's replies, best first.
pub async fn scripts(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    ApiQuery(q): ApiQuery<ScriptsQuery>,
) -> Result<Json<Value>, ApiError> {
    let mut report = blocking(move || engine.conversations().report().map_err(store_error)).await?;
    if let Some(topic) = &q.topic {
        report.scripts.retain(|s| &s.topic == topic);
        if report.scripts.is_empty() {
            return Err(ApiError::new(ErrorCode::UnknownTopic, format!("no topic `{topic}` in the last mining")));
        }
    }
    to_json("scripts", &report.scripts)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuggestQuery {
    text: String,
}

/// `GET /api/v1/conversations/suggest?text=`: for each question or objection in the words, its topic and the
/// replies that win for it.
pub async fn suggest(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    ApiQuery(q): ApiQuery<SuggestQuery>,
) -> Result<Json<Value>, ApiError> {
    let chars = q.text.chars().count();
    if chars == 0 || chars > MAX_SUGGEST_CHARS {
        return Err(bad_query(format!("text: between 1 and {MAX_SUGGEST_CHARS} characters, not {chars}")));
    }
    let report = blocking(move || engine.conversations().report().map_err(store_error)).await?;
    to_json("suggestions", &service::suggest(&report, &q.text))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditBody {
    label: Option<String>,
    label_en: Option<String>,
    merged_into: Option<String>,
    split_on: Option<String>,
}

/// `PUT /api/v1/conversations/topics/{id}` `{"label"?, "label_en"?, "merged_into"?, "split_on"?}`: a rename, a
/// merge, or the sentences holding a word split off into a topic of their own, kept on every later mining.
pub async fn edit(
    admin: Admin,
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let b = json_body::<EditBody>(&body)?;
    let invalid = |m: String| ApiError::new(ErrorCode::InvalidRequest, m);
    if b.label.is_none() && b.label_en.is_none() && b.merged_into.is_none() && b.split_on.is_none() {
        return Err(invalid("give `label`, `label_en`, `merged_into` or `split_on`".into()));
    }
    for (name, value) in [("label", &b.label), ("label_en", &b.label_en), ("split_on", &b.split_on)] {
        if let Some(v) = value
            && (v.trim().is_empty() || v.chars().count() > 200 || v.chars().any(char::is_control))
        {
            return Err(invalid(format!("`{name}`: 1 to 200 characters, no control characters")));
        }
    }
    if b.merged_into.as_ref() == Some(&id) {
        return Err(invalid("a topic cannot be merged into itself".into()));
    }
    let by = admin.by();
    let now = engine.clock.now_ms();
    let answer = blocking(move || {
        let report = engine.conversations().report().map_err(store_error)?;
        for topic in std::iter::once(&id).chain(b.merged_into.as_ref()) {
            if !report.topics.iter().any(|t| &t.id == topic) {
                return Err(ApiError::new(ErrorCode::UnknownTopic, format!("no topic `{topic}` in the last mining")));
            }
        }
        let edit = TopicEdit {
            topic: id,
            label: b.label.map(|l| l.trim().to_owned()),
            label_en: b.label_en.map(|l| l.trim().to_owned()),
            merged_into: b.merged_into,
            split_on: b.split_on.map(|w| w.trim().to_owned()),
            by,
            at: now,
        };
        engine.conversations().store().put_edit(&edit).map_err(store_error)?;
        Ok(json!({ "edit": edit }))
    })
    .await?;
    Ok(Json(answer))
}
