//! The admin API for delivery: the connectors (what is configured, with its limits, and a health check that
//! goes the way a real send would) and the dead letters (listed, and replayed with their idempotency keys).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};
use tutti_core::ErrorCode;
use tutti_core::time::format_timestamp;
use tutti_engine::{DeadLetterFilter, Delivery, DeliveryFilter, Engine, HookError};

use crate::admin::{Admin, AdminOrSite, ApiQuery, bad_query, blocking};
use crate::error::ApiError;

/// Every connector: its operations and channel, whether this installation has it configured, and the limits
/// the dispatcher applies to it.
pub async fn connectors(_: Admin, State(engine): State<Arc<Engine>>) -> Json<Value> {
    let registry = engine.connectors().registry();
    let list: Vec<Value> = tutti_connectors::ALL
        .iter()
        .map(|kind| {
            let settings = registry.get(kind.name).map(|built| {
                let s = &built.settings;
                json!({"concurrency": s.concurrency, "rate_per_second": s.rate_per_second, "burst": s.burst,
                       "timeout_ms": s.timeout.as_millis() as u64, "max_attempts": s.max_attempts,
                       "breaker_failures": s.breaker_failures, "breaker_cooldown_ms": s.breaker_cooldown.as_millis() as u64,
                       "allow_private": s.allow_private})
            });
            json!({"name": kind.name, "channel": kind.channel, "operations": kind.operation_names(),
                   "configured": settings.is_some(), "settings": settings})
        })
        .collect();
    Json(json!({"connectors": list}))
}

/// Runs one connector's health check. 200 with `ok` true or false (and the vendor's answer or the reason);
/// 404 when the connector is not configured.
pub async fn health(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    match engine.connectors().check(&name).await {
        None => Err(ApiError::new(
            ErrorCode::UnknownConnector,
            format!("no connector named `{name}` is configured; GET /api/v1/connectors lists them"),
        )),
        Some(Ok(result)) => Ok(Json(json!({"connector": name, "ok": true, "result": result}))),
        Some(Err(failure)) => Ok(Json(json!({"connector": name, "ok": false, "error": failure.message(),
            "transient": matches!(failure, tutti_connectors::Failure::Transient { .. })}))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterQuery {
    connector: Option<String>,
    flow: Option<String>,
    /// Continue after this sequence number (the previous page's `next`).
    after: Option<u64>,
    limit: Option<usize>,
}

fn dead_letter_json(row: &tutti_store::OutboxRow, error: &str) -> Value {
    json!({"seq": row.seq, "key": row.key, "profile": row.profile.to_string(), "connector": row.connector,
           "attempts": row.attempts, "queued_at": format_timestamp(row.created_at), "error": error,
           "action": serde_json::from_slice::<Value>(&row.body).unwrap_or(Value::Null)})
}

/// Dead letters, oldest first, a page at a time.
pub async fn dead_letters(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    ApiQuery(q): ApiQuery<DeadLetterQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = crate::admin::page_limit(q.limit, 100, 1000)?;
    let filter = DeadLetterFilter { seqs: Vec::new(), connector: q.connector, flow: q.flow };
    let after = q.after.unwrap_or(0);
    let rows = blocking(move || Ok(engine.dead_letters(&filter, after, limit)?)).await?;
    let next = (rows.len() == limit).then(|| rows.last().map(|(row, _)| row.seq)).flatten();
    let letters: Vec<Value> = rows.iter().map(|(row, error)| dead_letter_json(row, error)).collect();
    Ok(Json(json!({"dead_letters": letters, "next": next})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayBody {
    #[serde(default, deserialize_with = "crate::whole::counts")]
    seqs: Vec<u64>,
    connector: Option<String>,
    flow: Option<String>,
    /// Required to replay every dead letter when nothing else narrows the choice.
    #[serde(default)]
    all: bool,
    #[serde(default, deserialize_with = "crate::whole::optional_count")]
    limit: Option<u64>,
}

/// Replays dead letters chosen by sequence numbers, connector or flow (or `all: true`), at most `limit`
/// (default 1,000): each becomes pending again with its attempts from zero and its idempotency key unchanged.
pub async fn replay(admin: Admin, State(engine): State<Arc<Engine>>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let r: ReplayBody = crate::error::json_body(&body)?;
    if r.seqs.is_empty() && r.connector.is_none() && r.flow.is_none() && !r.all {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "name what to replay: `seqs`, `connector` or `flow`, or `all: true` for every dead letter",
        ));
    }
    if r.connector.as_deref() == Some("") || r.flow.as_deref() == Some("") {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "`connector` and `flow` name one; an empty name matches nothing",
        ));
    }
    let limit = r.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::new(ErrorCode::InvalidRequest, "`limit` must be between 1 and 10,000"));
    }
    let limit = limit as usize;
    let filter = DeadLetterFilter { seqs: r.seqs, connector: r.connector, flow: r.flow };
    let rows = blocking(move || replay_noted(&engine, &filter, limit, &admin.by())).await?;
    let keys: Vec<&str> = rows.iter().map(|row| row.key.as_str()).collect();
    Ok(Json(json!({"replayed": rows.len(), "keys": keys})))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    pub profile: Option<String>,
    pub connector: Option<String>,
    pub flow: Option<String>,
    /// `pending`, `done`, `dead` or `skipped`.
    pub outcome: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    /// Continue before this sequence number (the previous page's `next`).
    pub before: Option<u64>,
    pub limit: Option<usize>,
}

pub(crate) const OUTCOMES: [&str; 4] = ["pending", "done", "dead", "skipped"];

impl DeliveriesQuery {
    /// The store's filter, or what is wrong with the query. Blocking: a profile key is looked up.
    pub(crate) fn filter(&self, engine: &Engine) -> Result<DeliveryFilter, ApiError> {
        let time = |v: &Option<String>, key: &str| -> Result<Option<i64>, ApiError> {
            v.as_deref()
                .filter(|t| !t.is_empty())
                .map(|t| {
                    tutti_core::time::parse_timestamp(t)
                        .ok_or_else(|| bad_query(format!("`{key}` is an RFC 3339 time")))
                })
                .transpose()
        };
        let some = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
        let state = some(&self.outcome);
        if let Some(state) = &state
            && !OUTCOMES.contains(&state.as_str())
        {
            return Err(bad_query(format!("`outcome` is one of {}", OUTCOMES.join(", "))));
        }
        let profile = match some(&self.profile) {
            None => None,
            Some(key) => Some(crate::admin::find(engine, &key)?),
        };
        Ok(DeliveryFilter {
            state,
            profile,
            connector: some(&self.connector),
            flow: some(&self.flow),
            since: time(&self.since, "since")?,
            until: time(&self.until, "until")?,
        })
    }
}

/// One action as the delivery history shows it.
pub(crate) fn delivery_json(d: &Delivery) -> Value {
    let row = &d.row;
    let result = d.result.as_deref().map(|r| serde_json::from_str::<Value>(r).unwrap_or(Value::String(r.to_owned())));
    json!({"seq": row.seq, "key": row.key, "profile": row.profile.to_string(), "connector": row.connector,
           "outcome": d.state, "attempts": row.attempts, "queued_at": format_timestamp(row.created_at),
           "result": result, "error": d.error,
           "action": serde_json::from_slice::<Value>(&row.body).unwrap_or(Value::Null)})
}

/// `GET /api/v1/deliveries`: every action, newest first, filtered by profile, connector, flow, outcome and time.
pub async fn deliveries(
    _: Admin,
    State(engine): State<Arc<Engine>>,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = crate::admin::page_limit(q.limit, 100, 1000)?;
    let before = q.before.unwrap_or(0);
    // The console sends empty fields for filters not used; the API names only what it filters by.
    let named = [
        ("profile", &q.profile),
        ("connector", &q.connector),
        ("flow", &q.flow),
        ("since", &q.since),
        ("until", &q.until),
    ];
    for (name, given) in named {
        if given.as_deref() == Some("") {
            return Err(bad_query(format!("`{name}` is empty: leave it out to not filter by it")));
        }
    }
    let rows = blocking(move || {
        let filter = q.filter(&engine)?;
        Ok(engine.deliveries(&filter, before, limit)?)
    })
    .await?;
    let next = (rows.len() == limit).then(|| rows.last().map(|d| d.row.seq)).flatten();
    Ok(Json(json!({"deliveries": rows.iter().map(delivery_json).collect::<Vec<_>>(), "next": next})))
}

/// Replays dead letters and puts what was replayed, and by whom, on the audit log. Blocking.
pub(crate) fn replay_noted(
    engine: &Engine,
    filter: &DeadLetterFilter,
    limit: usize,
    by: &str,
) -> Result<Vec<tutti_store::OutboxRow>, ApiError> {
    let rows = engine.replay(filter, limit)?;
    if !rows.is_empty() {
        let seqs: Vec<u64> = rows.iter().map(|row| row.seq).collect();
        let detail = json!({"replayed": rows.len(), "seqs": seqs});
        engine.record(tutti_core::audit::AuditKind::Replay, by, filter.flow.as_deref(), None, detail)?;
    }
    Ok(rows)
}

/// Replays one dead letter.
pub async fn replay_one(
    admin: Admin,
    State(engine): State<Arc<Engine>>,
    Path(seq): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    // Nothing in the body is used; it is read so the connection can serve the client's next request.
    read_small_body(&headers, body).await?;
    let seq: u64 = seq.parse().map_err(|_| bad_query("a dead letter is named by its sequence number (`seq`)"))?;
    let filter = DeadLetterFilter { seqs: vec![seq], ..DeadLetterFilter::default() };
    let rows = blocking(move || replay_noted(&engine, &filter, 1, &admin.by())).await?;
    match rows.first() {
        Some(row) => Ok(Json(json!({"replayed": 1, "keys": [row.key]}))),
        None => {
            Err(ApiError::new(ErrorCode::UnknownDeadLetter, format!("no dead letter has the sequence number {seq}")))
        }
    }
}

/// The page behind a `List-Unsubscribe` link opened in a browser: a button, never an unsubscribe on GET (mail
/// scanners follow links). Public: the token is signed.
pub async fn unsubscribe_page(
    Path(token): Path<String>,
    State(engine): State<Arc<Engine>>,
) -> Result<axum::response::Html<String>, ApiError> {
    if tutti_connectors::smtp::verify_unsubscribe(&engine.secrets.link_key(), &token).is_none() {
        return Err(ApiError::new(ErrorCode::InvalidLink, "this unsubscribe link is not valid"));
    }
    Ok(axum::response::Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>Unsubscribe</title></head><body style=\"font-family:sans-serif;max-width:30em;margin:3em auto\">\
         <form method=\"post\" action=\"/u/{token}\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
         <p>Stop receiving these emails? · Ngừng nhận những email này? · 不再接收这些邮件？</p>\
         <button type=\"submit\">Unsubscribe · Hủy đăng ký · 退订</button></form></body></html>"
    )))
}

/// One-click unsubscribe (RFC 8058): the mail client POSTs `List-Unsubscribe=One-Click`. Public: the token is
/// signed. The change is durable before the answer.
pub async fn unsubscribe(
    Path(token): Path<String>,
    State(engine): State<Arc<Engine>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<axum::response::Html<String>, ApiError> {
    // `List-Unsubscribe=One-Click`, or the page's form: read so the connection can serve the next request.
    read_small_body(&headers, body).await?;
    match engine.connectors().unsubscribe(&token).await {
        Ok(Some(_)) => Ok(axum::response::Html(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Unsubscribed</title></head>\
             <body style=\"font-family:sans-serif;max-width:30em;margin:3em auto\">\
             <p>You are unsubscribed. · Bạn đã hủy đăng ký. · 您已退订。</p></body></html>"
                .to_owned(),
        )),
        Ok(None) => Err(ApiError::new(ErrorCode::InvalidLink, "this unsubscribe link is not valid")),
        Err(e) => Err(e.into()),
    }
}

/// The most a body these routes ignore may be.
const MAX_IGNORED_BYTES: usize = 16 * 1024;

/// Reads (and drops) a body a route has no use for: left unread, it would cost the connection, and a client
/// reusing it for its next request would find it closed.
pub(crate) async fn read_small_body(headers: &axum::http::HeaderMap, body: axum::body::Body) -> Result<(), ApiError> {
    let too_large = || {
        ApiError::new(ErrorCode::RequestTooLarge, format!("this route takes no body over {MAX_IGNORED_BYTES} bytes"))
    };
    crate::tracking::read_bounded(headers, body, MAX_IGNORED_BYTES, too_large).await.map(|_| ())
}

/// The most an inbound webhook body may be.
const MAX_HOOK_BYTES: usize = 1024 * 1024;

/// An inbound webhook, POSTed (JSON or a form) or, for providers that report by GET, in the query. Public: the
/// source's signature (or its explicit `verify: none`) decides.
pub async fn hook(
    State(engine): State<Arc<Engine>>,
    Path(source): Path<String>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorCode::RequestTooLarge,
            format!("an inbound webhook body is at most {} KiB", MAX_HOOK_BYTES >> 10),
        )
    };
    let body = crate::tracking::read_bounded(&headers, body, MAX_HOOK_BYTES, too_large).await?;
    let path_and_query = uri.path_and_query().map_or(uri.path(), |p| p.as_str()).to_owned();
    // Slack checks a new Events API endpoint with a signed `url_verification` request and expects the challenge
    // back.
    let slack_challenge = serde_json::from_slice::<Value>(&body)
        .ok()
        .filter(|v| v["type"] == "url_verification")
        .and_then(|v| v["challenge"].as_str().map(str::to_owned));
    let request = tutti_engine::HookRequest {
        method: method.as_str(),
        path_and_query: &path_and_query,
        headers: &headers,
        body: &body,
    };
    let stored = if slack_challenge.is_some() {
        engine
            .connectors()
            .verify_hook(&source, &request)
            .map(|()| tutti_engine::HookDelivery { appended: Vec::new(), conversations: None })
    } else {
        engine.connectors().hook(&source, &request).await
    };
    match stored {
        Ok(_) if slack_challenge.is_some() => Ok(Json(json!({"challenge": slack_challenge}))),
        Ok(tutti_engine::HookDelivery { appended, conversations }) => {
            let duplicates = appended.iter().filter(|a| matches!(a, tutti_engine::Appended::Duplicate)).count();
            let mut answer = json!({"accepted": appended.len() - duplicates, "duplicates": duplicates});
            if let Some(changes) = conversations {
                answer["conversations"] = json!(changes);
                if changes.inserted + changes.updated > 0 {
                    engine.mine_conversations_soon();
                }
            }
            if let (Some(extra), Some(object)) = (engine.connectors().hook_answer(&source), answer.as_object_mut()) {
                object.extend(extra.clone());
            }
            Ok(Json(answer))
        }
        Err(HookError::UnknownSource) => {
            Err(ApiError::new(ErrorCode::UnknownHook, format!("no hook file serves the source `{source}`")))
        }
        Err(HookError::Signature(why)) => Err(ApiError::new(ErrorCode::InvalidSignature, why)),
        Err(HookError::Payload(why)) => Err(ApiError::new(ErrorCode::InvalidPayload, why)),
        Err(HookError::Engine(e)) => Err(e.into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecideQuery {
    profile: String,
    slot: String,
}

/// What a website slot shows a profile (set by `decide.set` steps). Answers from memory; `content` is null when
/// nothing is decided (the site shows its default). Authorised by the admin token or, for the website itself,
/// the write key (HTTP Basic, as the tracking API).
pub async fn decide(
    AdminOrSite { admin }: AdminOrSite,
    State(engine): State<Arc<Engine>>,
    ApiQuery(q): ApiQuery<DecideQuery>,
) -> Result<Json<Value>, ApiError> {
    // A placeholder value (`user_id:null`) identifies nobody: nothing is decided for it.
    if let Some(kind) = tutti_profiles::identity::placeholder_kind(&q.profile)
        && (admin || kind == "user_id" || kind == "anonymous_id")
    {
        return Ok(Json(json!({"profile": null, "slot": q.slot, "content": null})));
    }
    let key = engine.parse_key(&q.profile).ok_or_else(|| {
        ApiError::new(ErrorCode::InvalidProfileKey, "a profile key is p<id> or type:value, such as user_id:42")
    })?;
    // A browser holds the write key, so anyone may: with it, only the ids a site itself gives its visitors
    // are asked about. An email or phone key would tell whether an address is a customer.
    let site_key = matches!(&key, tutti_engine::ProfileKey::Identity(id)
        if matches!(id.kind, tutti_profiles::IdKind::UserId | tutti_profiles::IdKind::AnonymousId));
    if !admin && !site_key {
        engine.metrics.reject(ErrorCode::Forbidden, 1);
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "with the write key, decide answers for user_id: and anonymous_id: keys; other keys need the admin token",
        ));
    }
    let profile = match key {
        tutti_engine::ProfileKey::Id(id) => Some(id),
        key => {
            let engine = engine.clone();
            blocking(move || Ok(engine.resolve_key(&key)?)).await?
        }
    };
    let decision = profile.and_then(|id| engine.connectors().decision(id, &q.slot));
    // Internal profile ids are for the admin token.
    let profile = if admin { profile.map(|p| p.to_string()) } else { None };
    Ok(Json(match decision {
        Some(d) => {
            json!({"profile": profile, "slot": q.slot, "content": d.content, "data": d.data,
                          "flow": d.flow, "set_at": format_timestamp(d.set_at), "expires_at": d.expires_at.map(format_timestamp)})
        }
        None => json!({"profile": profile, "slot": q.slot, "content": null}),
    }))
}

/// A transparent GIF of one pixel (the smallest GIF89a).
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02,
    0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// `GET /t/o/{token}`: an email was opened (its one-pixel image fetched). Public: the token is signed. Answers
/// the pixel, never cached, once the `Email Opened` event is durable.
pub async fn opened(
    Path(token): Path<String>,
    State(engine): State<Arc<Engine>>,
) -> Result<axum::response::Response, ApiError> {
    match engine.connectors().track(&token, false).await? {
        Some(_) => Ok((
            [(axum::http::header::CONTENT_TYPE, "image/gif"), (axum::http::header::CACHE_CONTROL, "no-store")],
            PIXEL,
        )
            .into_response()),
        None => Err(ApiError::new(ErrorCode::InvalidLink, "this tracking link is not valid")),
    }
}

/// `GET /t/c/{token}`: a link in an email was clicked. Public: the token is signed, and it is the only place the
/// destination comes from, so this redirects nowhere but to a link that was in the message. 302 once the
/// `Email Link Clicked` event is durable.
pub async fn clicked(
    Path(token): Path<String>,
    State(engine): State<Arc<Engine>>,
) -> Result<axum::response::Response, ApiError> {
    match engine.connectors().track(&token, true).await? {
        Some(Some(url)) => match axum::http::HeaderValue::from_str(&url) {
            Ok(location) => Ok((
                axum::http::StatusCode::FOUND,
                [
                    (axum::http::header::LOCATION, location),
                    (axum::http::header::CACHE_CONTROL, "no-store".parse().expect("a header value")),
                ],
            )
                .into_response()),
            Err(_) => Err(ApiError::new(ErrorCode::InvalidLink, "this link cannot be followed")),
        },
        _ => Err(ApiError::new(ErrorCode::InvalidLink, "this tracking link is not valid")),
    }
}
