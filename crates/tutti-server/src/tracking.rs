//! The Segment-compatible tracking API: `POST /v1/{track,identify,page,screen,group,alias,batch}`.
//!
//! Follows Segment's HTTP Tracking API: HTTP Basic auth with the write key as user name (or `writeKey` in the
//! body), 32 KB per event, 500 KB per request, 2,500 events per batch, gzip bodies, `{"success": true}` on 200.
//! Limits are enforced before parsing and, for gzip, on the decompressed size, so a zip bomb costs at most the
//! limit. 200 is answered only once every accepted event is durable.

use std::cell::Cell;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tutti_core::{BatchDefaults, EnvelopeError, ErrorCode, Event, EventError, EventType};
use tutti_engine::{Appended, Engine, NewEvent};

use crate::error::{ApiError, secret_eq};

/// Largest single event, in bytes.
pub const MAX_EVENT_BYTES: usize = 32 * 1024;
/// Largest request body after decompression, in bytes.
pub const MAX_REQUEST_BYTES: usize = 500 * 1024;
/// Most events in one batch.
pub const MAX_BATCH_EVENTS: usize = 2_500;

fn too_large_request() -> ApiError {
    ApiError::new(ErrorCode::RequestTooLarge, "the request body exceeds the 500 KB limit (after decompression)")
}

fn too_large_event(size: usize) -> ApiError {
    ApiError::new(ErrorCode::EventTooLarge, format!("the event is {size} bytes; the limit is 32 KB per event"))
}

fn unauthorized() -> ApiError {
    ApiError::new(
        ErrorCode::Unauthorized,
        "missing or invalid write key: use HTTP Basic auth with the write key as user name",
    )
}

/// What the Authorization header says.
pub(crate) enum HeaderAuth {
    Absent,
    Valid,
    Invalid,
}

pub(crate) fn header_auth(headers: &HeaderMap, write_key: &str) -> HeaderAuth {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return HeaderAuth::Absent;
    };
    let text = value.to_str().unwrap_or("");
    let Some(encoded) = text.strip_prefix("Basic ").or_else(|| text.strip_prefix("basic ")) else {
        return HeaderAuth::Invalid;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return HeaderAuth::Invalid;
    };
    let user = decoded.split(|b| *b == b':').next().unwrap_or_default();
    if secret_eq(user, write_key.as_bytes()) { HeaderAuth::Valid } else { HeaderAuth::Invalid }
}

/// Reads the body within the server's body read timeout (a client trickling its body holds a connection and
/// a buffer; it gets 408 instead).
async fn read_body_in_time(engine: &Engine, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let limit = engine.config.server.body_read_timeout;
    tokio::time::timeout(limit, read_body(headers, body)).await.unwrap_or_else(|_| {
        Err(ApiError::new(
            ErrorCode::RequestTimeout,
            format!("the request body did not arrive within {} s", limit.as_secs_f64()),
        ))
    })
}

/// Reads a body of at most `limit` bytes; a longer one is `too_large`. A body declared longer is refused without
/// being kept, after reading (and dropping) up to twice the limit, so that a client still writing its body can
/// read the answer instead of failing on a reset connection; anything beyond twice the limit is cut off.
pub(crate) async fn read_bounded(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    too_large: impl Fn() -> ApiError,
) -> Result<Bytes, ApiError> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n > limit as u64) {
        if n <= 2 * limit as u64 {
            let _ = axum::body::to_bytes(body, 2 * limit).await;
        }
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|_| too_large())
}

async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let raw = read_bounded(headers, body, MAX_REQUEST_BYTES, too_large_request).await?;
    let encoding = headers.get(header::CONTENT_ENCODING).map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("") | Some("identity") => Ok(raw),
        Some("gzip") | Some("x-gzip") => {
            let mut out = Vec::with_capacity((raw.len() * 4).min(MAX_REQUEST_BYTES + 1));
            flate2::read::MultiGzDecoder::new(&raw[..])
                .take(MAX_REQUEST_BYTES as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| {
                    ApiError::new(ErrorCode::UnsupportedEncoding, format!("the gzip body cannot be decoded: {e}"))
                })?;
            if out.len() > MAX_REQUEST_BYTES {
                return Err(too_large_request());
            }
            Ok(out.into())
        }
        Some(other) => Err(ApiError::new(
            ErrorCode::UnsupportedEncoding,
            format!("Content-Encoding {other:?} is not supported; send gzip or no encoding"),
        )),
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, ApiError> {
    std::str::from_utf8(bytes).map_err(|e| {
        ApiError::new(ErrorCode::InvalidJson, format!("the body is not valid JSON: it is not UTF-8 ({e})"))
    })
}

fn event_error(e: EventError) -> ApiError {
    match e {
        EventError::Syntax(reason) => {
            ApiError::new(ErrorCode::InvalidJson, format!("the event is not valid JSON: {reason}"))
        }
        EventError::Field(f) => field_error(f),
    }
}

fn json_error(e: serde_json::Error) -> ApiError {
    match e.classify() {
        serde_json::error::Category::Data => {
            ApiError::new(ErrorCode::InvalidEvent, format!("the body must be a JSON object: {e}"))
        }
        _ => ApiError::new(ErrorCode::InvalidJson, format!("the body is not valid JSON: {e}")),
    }
}

fn field_error(e: tutti_core::FieldError) -> ApiError {
    ApiError::new(ErrorCode::InvalidEvent, e.to_string()).with("field", Value::String(e.field))
}

fn body_write_key_ok(write_key: Option<&RawValue>, expected: &str) -> bool {
    write_key
        .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
        .is_some_and(|k| secret_eq(k.as_bytes(), expected.as_bytes()))
}

fn prepare(
    engine: &Engine,
    text: &str,
    kind: Option<EventType>,
    defaults: &BatchDefaults,
    now: i64,
) -> Result<NewEvent, ApiError> {
    let generated = Cell::new(false);
    let event = Event::parse(text, kind, defaults, now, || {
        generated.set(true);
        engine.new_message_id()
    })
    .map_err(event_error)?;
    if let Some(field) = event.reserved_identifier() {
        return Err(event_error(tutti_core::EventError::Field(tutti_core::FieldError::new(
            field,
            format!(
                "values beginning with `{}` are reserved for Tutti's own events",
                tutti_core::event::RESERVED_ID_PREFIX
            ),
        ))));
    }
    if event.body.len() > MAX_EVENT_BYTES + 1024 {
        return Err(too_large_event(event.body.len()));
    }
    Ok(NewEvent::of(event, !generated.get()))
}

#[derive(Deserialize)]
struct SingleProbe<'a> {
    #[serde(rename = "writeKey", borrow, default)]
    write_key: Option<&'a RawValue>,
}

/// Handles one of the single-event endpoints.
pub async fn single(
    engine: Arc<Engine>,
    kind: EventType,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let auth = header_auth(&headers, &engine.secrets.write_key);
    if matches!(auth, HeaderAuth::Invalid) {
        engine.metrics.reject(ErrorCode::Unauthorized, 1);
        return Err(unauthorized());
    }
    let result = async {
        let bytes = read_body_in_time(&engine, &headers, body).await?;
        if matches!(auth, HeaderAuth::Absent) {
            let probe = serde_json::from_slice::<SingleProbe>(&bytes).ok();
            if !body_write_key_ok(probe.and_then(|p| p.write_key), &engine.secrets.write_key) {
                return Err(unauthorized());
            }
        }
        engine.metrics.events_received.fetch_add(1, Ordering::Relaxed);
        if bytes.len() > MAX_EVENT_BYTES {
            return Err(too_large_event(bytes.len()));
        }
        let text = utf8(&bytes)?;
        let now = engine.clock.now_ms();
        let event = prepare(&engine, text, Some(kind), &BatchDefaults::default(), now)?;
        engine.ingest(vec![event]).await?;
        Ok(Json(json!({"success": true})).into_response())
    }
    .await;
    if let Err(e) = &result {
        engine.metrics.reject(e.code, 1);
    }
    result
}

/// Handles `/v1/batch` (and its alias `/v1/import`).
pub async fn batch(engine: Arc<Engine>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let auth = header_auth(&headers, &engine.secrets.write_key);
    if matches!(auth, HeaderAuth::Invalid) {
        engine.metrics.reject(ErrorCode::Unauthorized, 1);
        return Err(unauthorized());
    }
    let result = batch_inner(&engine, matches!(auth, HeaderAuth::Absent), headers, body).await;
    if let Err(e) = &result
        && e.code != ErrorCode::AllEventsRejected
    {
        engine.metrics.reject(e.code, 1);
    }
    result
}

async fn batch_inner(
    engine: &Arc<Engine>,
    need_body_key: bool,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body_in_time(engine, &headers, body).await?;
    let (write_key, envelope) = tutti_core::read_envelope(&bytes);
    if need_body_key && !body_write_key_ok(write_key, &engine.secrets.write_key) {
        return Err(unauthorized());
    }
    let envelope = envelope.map_err(|e| match e {
        EnvelopeError::Json(e) => json_error(e),
        EnvelopeError::Field(e) => field_error(e),
    })?;
    let Some(items) = envelope.items.as_ref() else {
        return Err(field_error(tutti_core::FieldError { field: "batch".into(), reason: "is required".into() }));
    };
    engine.metrics.events_received.fetch_add(items.len() as u64, Ordering::Relaxed);
    if items.len() > MAX_BATCH_EVENTS {
        return Err(ApiError::new(
            ErrorCode::BatchTooLarge,
            format!("the batch holds {} events; the limit is 2,500 per batch", items.len()),
        ));
    }
    let defaults = envelope.defaults().map_err(event_error)?;
    let now = engine.clock.now_ms();
    let mut accepted = Vec::with_capacity(items.len());
    let mut rejected = Vec::new();
    for (index, raw) in items.iter().enumerate() {
        let text = raw.get();
        let outcome = if text.len() > MAX_EVENT_BYTES {
            Err(too_large_event(text.len()))
        } else {
            prepare(engine, text, None, &defaults, now)
        };
        match outcome {
            Ok(e) => accepted.push(e),
            Err(e) => {
                engine.metrics.reject(e.code, 1);
                let mut entry = json!({"index": index, "code": e.code.as_str(), "message": e.message});
                if let Some(field) = e.extra.get("field") {
                    entry["field"] = field.clone();
                }
                rejected.push(entry);
            }
        }
    }
    if accepted.is_empty() && !rejected.is_empty() {
        let first = rejected[0]["message"].as_str().unwrap_or_default().to_owned();
        return Err(ApiError::new(
            ErrorCode::AllEventsRejected,
            format!("all {} events were rejected; item 0: {first}", rejected.len()),
        )
        .with("rejected", Value::Array(rejected)));
    }
    let outcomes = if accepted.is_empty() { Vec::new() } else { engine.ingest(accepted).await? };
    let duplicates = outcomes.iter().filter(|o| matches!(o, Appended::Duplicate)).count();
    let mut answer = json!({"success": true});
    if !rejected.is_empty() {
        answer["rejected"] = Value::Array(rejected);
    }
    if duplicates > 0 {
        answer["duplicates"] = json!(duplicates);
    }
    Ok(Json(answer).into_response())
}
