//! Local stand-ins for the vendors, for tests (feature `testing`).
//!
//! One HTTP server plays Slack (`/slack/api/...` and an incoming webhook at `/slack-hook/...`), Trello
//! (`/trello/1/...`), Asana (`/asana/api/1.0/...`), HubSpot (`/hubspot/crm/v3/...`) and any webhook receiver
//! (`/hook/...`). Each enforces what the vendor's documentation (cited in each connector's module) says a
//! request must carry: the auth header in the vendor's scheme with the right credentials, the content type,
//! the body's shape and its required fields, the formats of ids and dates. What it would reject, it answers the
//! way the vendor does (Slack's `{"ok": false}`, Trello's text errors, Asana's and HubSpot's error objects), and
//! it records every request, accepted or not, so a test can assert that nothing Tutti sent was refused.
//!
//! It also plays an OpenAI-compatible model endpoint (`/openai/v1/chat/completions`), enforcing OpenAI's API
//! reference for chat completions (bearer key, messages and roles, `response_format` in OpenAI's own forms,
//! tools and a `tool_choice` that names one of them, `stream_options` only with `stream`) and answering what a
//! test scripts ([`Reply`]), streamed as server-sent events when asked; and `/openai/v1/embeddings`
//! (API reference, "Create embeddings": `model`, `input` as a string or an array of at most 2,048 non-empty
//! strings, `encoding_format` `float` or `base64`, nothing else but `dimensions` and `user`), answering with
//! the vectors of the test's [`Embedder`].
//!
//! Faults can be injected per vendor: answer the next requests with a status (with or without `Retry-After`),
//! hang, or be down (503) until told otherwise.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub const SLACK_TOKEN: &str = "xoxb-test-123";
pub const TRELLO_KEY: &str = "trello-key-abc";
pub const TRELLO_TOKEN: &str = "trello-token-def";
pub const ASANA_TOKEN: &str = "asana-pat-ghi";
pub const HUBSPOT_TOKEN: &str = "pat-na1-hubspot";
pub const WEBHOOK_SECRET: &str = "whsec-test";
pub const AUDIENCE_TOKEN: &str = "EAAB-audience-token";
pub const OPENAI_KEY: &str = "sk-test-openai";
/// The platform id the stand-in gives the `pricing-visitors` audience.
pub const AUDIENCE_ID: &str = "23850000000001";
/// The Asana workspace and project the stand-in knows.
pub const ASANA_WORKSPACE: &str = "1200000000000001";
pub const ASANA_PROJECT: &str = "1200000000000002";
/// The Trello list the stand-in knows.
pub const TRELLO_LIST: &str = "5f0c0ffee0c0ffee0c0ffee0";

/// A link key for tests.
pub const LINK_KEY: [u8; 32] = [42; 32];

/// [`env`], [`LINK_KEY`] and the given shared state as a build context.
pub fn context(shared: &crate::Shared) -> crate::Context<'_> {
    crate::Context { env: &env, link_key: &LINK_KEY, shared }
}

/// The environment variables [`Vendors::connectors`] names, with the stand-in's credentials.
pub fn env(name: &str) -> Option<String> {
    let value = match name {
        "T_SLACK_TOKEN" => SLACK_TOKEN,
        "T_TRELLO_KEY" => TRELLO_KEY,
        "T_TRELLO_TOKEN" => TRELLO_TOKEN,
        "T_ASANA_TOKEN" => ASANA_TOKEN,
        "T_HUBSPOT_TOKEN" => HUBSPOT_TOKEN,
        "T_WEBHOOK_SECRET" => WEBHOOK_SECRET,
        "T_AUDIENCE_TOKEN" => AUDIENCE_TOKEN,
        "T_OPENAI_KEY" => OPENAI_KEY,
        _ => return None,
    };
    Some(value.to_owned())
}

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub vendor: &'static str,
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
    /// The status answered.
    pub status: u16,
    /// Why it was refused, when it was (a fault injected is not a refusal).
    pub refused: Option<String>,
}

/// An injected fault.
#[derive(Debug, Clone)]
pub enum Fault {
    Status(u16),
    /// 429 with `Retry-After` in seconds.
    RateLimited(u64),
    /// Never answers.
    Hang,
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    faults: HashMap<&'static str, VecDeque<Fault>>,
    down: HashMap<&'static str, bool>,
    next_id: u64,
    trello_cards: BTreeMap<String, Value>,
    asana_tasks: BTreeMap<String, Value>,
    hubspot_contacts: BTreeMap<String, String>,
    /// Audience id to the members' email hashes (or phone hashes, when there is no email).
    audiences: BTreeMap<String, std::collections::BTreeSet<String>>,
    /// What the model endpoint answers next (then `ok`).
    replies: VecDeque<Reply>,
    /// What the embeddings endpoint answers with.
    embedder: Option<Embedder>,
}

/// A test's embedding model: a text's vector.
pub type Embedder = Arc<dyn Fn(&str) -> Vec<f32> + Send + Sync>;

/// What the model endpoint answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// The assistant's text.
    Text(String),
    /// A call of this tool with these arguments (JSON text, sent as given).
    Call { name: String, arguments: String },
    /// A 200 with this body, whatever was asked (a broken server).
    Raw(String),
    /// A stream that stops after these pieces of text, without a finish reason or `[DONE]`.
    CutStream(Vec<String>),
}

/// The running stand-in.
#[derive(Clone)]
pub struct Vendors {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Vendors {
    /// Starts on an ephemeral port of 127.0.0.1, on the current Tokio runtime.
    pub async fn start() -> Vendors {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let state = shared.clone();
            async move { handle(state, method, uri, headers, body).await }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Vendors { addr, state }
    }

    /// `[connectors]` tables that point every connector at this stand-in (credentials from [`env`]).
    pub fn connectors(&self) -> BTreeMap<String, Value> {
        let base = format!("http://{}", self.addr);
        let local = json!(["127.0.0.1"]);
        serde_json::from_value(json!({
            "webhook": {"allow_private": local, "signing_secret_env": "T_WEBHOOK_SECRET"},
            "slack": {"allow_private": local, "token_env": "T_SLACK_TOKEN", "api_base": format!("{base}/slack/api")},
            "trello": {"allow_private": local, "key_env": "T_TRELLO_KEY", "token_env": "T_TRELLO_TOKEN",
                       "api_base": format!("{base}/trello/1"), "default_list": TRELLO_LIST},
            "asana": {"allow_private": local, "token_env": "T_ASANA_TOKEN", "workspace": ASANA_WORKSPACE,
                      "api_base": format!("{base}/asana/api/1.0")},
            "hubspot": {"allow_private": local, "token_env": "T_HUBSPOT_TOKEN", "api_base": format!("{base}/hubspot")},
            "audience": {"allow_private": local, "format": "meta", "token_env": "T_AUDIENCE_TOKEN",
                         "endpoint": format!("{base}/meta/{{audience_id}}/users"), "default_country_code": "84",
                         "audiences": {"pricing-visitors": AUDIENCE_ID}, "flush_every": "1s"},
        }))
        .expect("tables")
    }

    /// The URL of a webhook receiver path (`/hook/...`).
    pub fn hook_url(&self, path: &str) -> String {
        format!("http://{}/hook/{}", self.addr, path.trim_start_matches('/'))
    }

    /// The URL of the Slack incoming webhook.
    pub fn slack_hook_url(&self) -> String {
        format!("http://{}/slack-hook/services/T0001/B0001/XXXXXXXXXXXXXXXX", self.addr)
    }

    pub fn received(&self, vendor: &str) -> Vec<Received> {
        self.state.lock().unwrap().received.iter().filter(|r| r.vendor == vendor).cloned().collect()
    }

    /// Every request refused for its content (not for an injected fault), with why.
    pub fn refusals(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.iter().filter(|r| r.refused.is_some()).cloned().collect()
    }

    /// The next requests to `vendor` meet these faults, in order.
    pub fn inject(&self, vendor: &'static str, faults: impl IntoIterator<Item = Fault>) {
        self.state.lock().unwrap().faults.entry(vendor).or_default().extend(faults);
    }

    /// The members of a Meta-style audience (hashes), as the stand-in holds them after every batch so far.
    pub fn audience(&self, id: &str) -> Vec<String> {
        self.state.lock().unwrap().audiences.get(id).map(|m| m.iter().cloned().collect()).unwrap_or_default()
    }

    /// While down, every request to `vendor` is answered 503.
    pub fn set_down(&self, vendor: &'static str, down: bool) {
        self.state.lock().unwrap().down.insert(vendor, down);
    }

    /// Scripts the model endpoint's next answers.
    pub fn reply(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().unwrap().replies.extend(replies);
    }

    /// What the embeddings endpoint answers (by default, a vector of eight numbers hashed from the text).
    pub fn embed_with(&self, embedder: Embedder) {
        self.state.lock().unwrap().embedder = Some(embedder);
    }

    /// The base URL of the model endpoint (`[ai.providers.<name>] base_url`).
    pub fn openai_base(&self) -> String {
        format!("http://{}/openai/v1", self.addr)
    }
}

fn vendor_of(path: &str) -> Option<(&'static str, &str)> {
    for (prefix, vendor) in [
        ("/slack/api", "slack"),
        ("/slack-hook/", "slack-hook"),
        ("/trello/1", "trello"),
        ("/asana/api/1.0", "asana"),
        ("/hubspot", "hubspot"),
        ("/meta/", "meta"),
        ("/google/", "google"),
        ("/hook/", "hook"),
        ("/openai/v1", "openai"),
    ] {
        if let Some(rest) = path.strip_prefix(prefix) {
            return Some((vendor, rest));
        }
    }
    None
}

async fn handle(state: Arc<Mutex<State>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    let Some((vendor, rest)) = vendor_of(&path) else {
        return (StatusCode::NOT_FOUND, "no such vendor").into_response();
    };
    let fault = {
        let mut s = state.lock().unwrap();
        if s.down.get(vendor).copied().unwrap_or(false) {
            Some(Fault::Status(503))
        } else {
            s.faults.get_mut(vendor).and_then(VecDeque::pop_front)
        }
    };
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let record = |status: u16, refused: Option<String>| Received {
        vendor,
        method: method.to_string(),
        path: uri.to_string(),
        headers: headers.clone(),
        body: parsed.clone(),
        status,
        refused,
    };
    if let Some(fault) = fault {
        let response = match fault {
            Fault::Status(code) => (StatusCode::from_u16(code).unwrap(), "injected").into_response(),
            Fault::RateLimited(seconds) => {
                (StatusCode::TOO_MANY_REQUESTS, [("retry-after", seconds.to_string())], "slow down").into_response()
            }
            Fault::Hang => {
                state.lock().unwrap().received.push(record(0, None));
                std::future::pending::<()>().await;
                unreachable!()
            }
        };
        state.lock().unwrap().received.push(record(response.status().as_u16(), None));
        return response;
    }
    if vendor == "openai" {
        let (status, response, refused) = {
            let mut s = state.lock().unwrap();
            openai(&mut s, &method, rest, &headers, &parsed)
        };
        state.lock().unwrap().received.push(record(status, refused));
        return response;
    }
    let outcome = {
        let mut s = state.lock().unwrap();
        let query = uri.query().unwrap_or("");
        match vendor {
            "slack" => slack(&mut s, &method, rest, &headers, &body),
            "slack-hook" => slack_hook(&method, &headers, &body),
            "trello" => trello(&mut s, &method, rest, &headers, &body),
            "asana" => asana(&mut s, &method, rest, &headers, &body),
            "hubspot" => hubspot(&mut s, &method, rest, query, &headers, &body),
            "meta" => meta(&mut s, &method, rest, &headers, &body),
            "google" => google(&mut s, &method, rest, &headers, &body),
            _ => hook(&method, rest, &headers, &body),
        }
    };
    let (status, answer, refused) = match outcome {
        Ok((status, answer)) => (status, answer, None),
        Err((status, answer, why)) => (status, answer, Some(why)),
    };
    state.lock().unwrap().received.push(record(status.as_u16(), refused));
    match answer {
        Value::String(text) => (status, text).into_response(),
        json => (status, axum::Json(json)).into_response(),
    }
}

/// An accepted request's answer, or a refusal: the status and body the vendor gives, and why (for the test).
type Outcome = Result<(StatusCode, Value), (StatusCode, Value, String)>;

fn refuse(status: u16, answer: Value, why: impl Into<String>) -> Outcome {
    Err((StatusCode::from_u16(status).unwrap(), answer, why.into()))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn is_json(headers: &HeaderMap) -> bool {
    header(headers, "content-type").split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

fn next_id(s: &mut State, width: usize, hex: bool) -> String {
    s.next_id += 1;
    if hex { format!("{:0width$x}", s.next_id + 0xabc000) } else { format!("{:0width$}", s.next_id + 1_300_000) }
}

fn is_hex24(text: &str) -> bool {
    text.len() == 24 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// <https://docs.slack.dev/reference/methods/chat.postMessage/>: errors are HTTP 200 with `ok: false`.
fn slack(s: &mut State, method: &Method, rest: &str, headers: &HeaderMap, body: &[u8]) -> Outcome {
    let fail = |error: &str| refuse(200, json!({"ok": false, "error": error}), format!("slack: {error}"));
    if method != Method::POST {
        return fail("method_not_supported_for_channel_type");
    }
    match header(headers, "authorization").strip_prefix("Bearer ") {
        None => return fail("not_authed"),
        Some(token) if token != SLACK_TOKEN => return fail("invalid_auth"),
        Some(_) => {}
    }
    match rest {
        "/auth.test" => Ok((StatusCode::OK, json!({"ok": true, "team": "Tutti", "user": "tutti-bot"}))),
        "/chat.postMessage" => {
            if !is_json(headers) {
                return fail("invalid_form_data");
            }
            let Ok(Value::Object(args)) = serde_json::from_slice::<Value>(body) else { return fail("invalid_json") };
            if args.contains_key("token") {
                return fail("invalid_arg_name");
            }
            let Some(channel) = args.get("channel").and_then(Value::as_str).filter(|c| !c.is_empty()) else {
                return fail("channel_not_found");
            };
            let text = args.get("text").and_then(Value::as_str).unwrap_or("");
            let blocks = args.get("blocks");
            if let Some(blocks) = blocks {
                let ok = blocks.as_array().is_some_and(|b| {
                    !b.is_empty() && b.len() <= 50 && b.iter().all(|x| x.get("type").and_then(Value::as_str).is_some())
                });
                if !ok {
                    return fail("invalid_blocks");
                }
            }
            if text.is_empty() && blocks.is_none() && args.get("attachments").is_none() {
                return fail("no_text");
            }
            if text.chars().count() > 40_000 {
                return fail("msg_too_long");
            }
            if let Some(metadata) = args.get("metadata")
                && (metadata.get("event_type").and_then(Value::as_str).is_none()
                    || !metadata.get("event_payload").is_some_and(Value::is_object))
            {
                return fail("invalid_metadata_format");
            }
            s.next_id += 1;
            let ts = format!("1700000000.{:06}", s.next_id);
            Ok((StatusCode::OK, json!({"ok": true, "channel": channel, "ts": ts, "message": {"text": text}})))
        }
        _ => fail("unknown_method"),
    }
}

/// <https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks>: `ok` as text, or an error word.
fn slack_hook(method: &Method, headers: &HeaderMap, body: &[u8]) -> Outcome {
    if method != Method::POST {
        return refuse(405, json!("invalid_method"), "slack webhook: method");
    }
    if !is_json(headers) {
        return refuse(400, json!("invalid_payload"), "slack webhook: content type");
    }
    let Ok(Value::Object(args)) = serde_json::from_slice::<Value>(body) else {
        return refuse(400, json!("invalid_payload"), "slack webhook: not a JSON object");
    };
    let has_text = args.get("text").and_then(Value::as_str).is_some_and(|t| !t.is_empty());
    if !has_text && !args.contains_key("blocks") && !args.contains_key("attachments") {
        return refuse(400, json!("no_text"), "slack webhook: no_text");
    }
    Ok((StatusCode::OK, json!("ok")))
}

/// <https://developer.atlassian.com/cloud/trello/rest/api-group-cards/>: text errors with 400, 401 and 404.
fn trello(s: &mut State, method: &Method, rest: &str, headers: &HeaderMap, body: &[u8]) -> Outcome {
    let expected = format!(r#"OAuth oauth_consumer_key="{TRELLO_KEY}", oauth_token="{TRELLO_TOKEN}""#);
    if header(headers, "authorization") != expected {
        return refuse(401, json!("invalid key"), "trello: authorization");
    }
    if rest == "/members/me" && method == Method::GET {
        return Ok((StatusCode::OK, json!({"id": "5a0000000000000000000001", "username": "tutti"})));
    }
    if method != Method::POST {
        return refuse(404, json!("Cannot GET"), "trello: method");
    }
    if !is_json(headers) {
        return refuse(400, json!("invalid value for idList"), "trello: body is not JSON");
    }
    let Ok(Value::Object(args)) = serde_json::from_slice::<Value>(body) else {
        return refuse(400, json!("invalid value for idList"), "trello: not a JSON object");
    };
    let len_ok = |key: &str| args.get(key).and_then(Value::as_str).is_none_or(|t| t.chars().count() <= 16_384);
    if rest == "/cards" {
        if args.get("idList").and_then(Value::as_str) != Some(TRELLO_LIST) {
            return refuse(400, json!("invalid value for idList"), "trello: idList");
        }
        if !len_ok("name") || !len_ok("desc") {
            return refuse(400, json!("invalid value for desc"), "trello: too long");
        }
        if let Some(due) = args.get("due")
            && due.as_str().and_then(|d| d.parse::<jiff::Timestamp>().ok()).is_none()
        {
            return refuse(400, json!("invalid value for due"), "trello: due");
        }
        for key in ["idLabels", "idMembers"] {
            if let Some(ids) = args.get(key)
                && !ids.as_str().is_some_and(|t| t.split(',').all(is_hex24))
            {
                return refuse(400, json!(format!("invalid value for {key}")), format!("trello: {key}"));
            }
        }
        let id = next_id(s, 24, true);
        let card = json!({"id": id, "idList": TRELLO_LIST, "name": args.get("name").cloned().unwrap_or(json!("")),
            "desc": args.get("desc").cloned().unwrap_or(json!("")), "shortUrl": format!("https://trello.com/c/{}", &id[16..])});
        s.trello_cards.insert(id, card.clone());
        return Ok((StatusCode::OK, card));
    }
    if let Some(card) = rest.strip_prefix("/cards/").and_then(|r| r.strip_suffix("/actions/comments")) {
        if !s.trello_cards.contains_key(card) {
            return refuse(404, json!("The requested resource was not found."), "trello: no such card");
        }
        let Some(text) =
            args.get("text").and_then(Value::as_str).filter(|t| !t.is_empty() && t.chars().count() <= 16_384)
        else {
            return refuse(400, json!("invalid value for text"), "trello: comment text");
        };
        let id = next_id(s, 24, true);
        return Ok((
            StatusCode::OK,
            json!({"id": id, "type": "commentCard", "data": {"text": text, "card": {"id": card}}}),
        ));
    }
    refuse(404, json!("Cannot POST"), "trello: path")
}

fn asana_error(status: u16, message: &str) -> Outcome {
    refuse(status, json!({"errors": [{"message": message}]}), format!("asana: {message}"))
}

/// <https://developers.asana.com/reference/createtask>: `{"data": ...}` in, `{"errors": [...]}` on failure.
fn asana(s: &mut State, method: &Method, rest: &str, headers: &HeaderMap, body: &[u8]) -> Outcome {
    if header(headers, "authorization") != format!("Bearer {ASANA_TOKEN}") {
        return asana_error(401, "Not Authorized");
    }
    if rest == "/users/me" && method == Method::GET {
        return Ok((StatusCode::OK, json!({"data": {"gid": "1", "name": "Tutti"}})));
    }
    if method != Method::POST || !is_json(headers) {
        return asana_error(400, "Bad Request");
    }
    let Ok(Value::Object(mut outer)) = serde_json::from_slice::<Value>(body) else {
        return asana_error(400, "Could not parse request data, invalid JSON");
    };
    let Some(Value::Object(data)) = outer.remove("data") else {
        return asana_error(400, "Missing input: data");
    };
    if rest == "/tasks" {
        let known = ["name", "notes", "projects", "workspace", "assignee", "due_on", "due_at"];
        if let Some(extra) = data.keys().find(|k| !known.contains(&k.as_str())) {
            return asana_error(400, &format!("{extra}: Unknown property"));
        }
        let projects_ok =
            data.get("projects").is_none_or(|p| p.as_array().is_some_and(|a| a.iter().all(|x| x == ASANA_PROJECT)));
        if !projects_ok {
            return asana_error(404, "projects: Unknown object");
        }
        if data.get("projects").is_none() && data.get("workspace").and_then(Value::as_str) != Some(ASANA_WORKSPACE) {
            return asana_error(400, "You should specify one of workspace, parent, projects");
        }
        if data.contains_key("due_on") && data.contains_key("due_at") {
            return asana_error(400, "You may only provide one of due_on or due_at");
        }
        if let Some(day) = data.get("due_on")
            && day.as_str().and_then(|d| d.parse::<jiff::civil::Date>().ok()).is_none()
        {
            return asana_error(400, "due_on: Invalid date");
        }
        if data.get("name").and_then(Value::as_str).is_none_or(|n| n.is_empty()) {
            return asana_error(400, "name: Missing input");
        }
        let gid = next_id(s, 16, false);
        let task = json!({"gid": gid, "resource_type": "task", "name": data["name"], "notes": data.get("notes").cloned().unwrap_or(json!("")),
            "permalink_url": format!("https://app.asana.com/0/{ASANA_PROJECT}/{gid}")});
        s.asana_tasks.insert(gid, task.clone());
        return Ok((StatusCode::CREATED, json!({"data": task})));
    }
    if let Some(task) = rest.strip_prefix("/tasks/").and_then(|r| r.strip_suffix("/stories")) {
        if !s.asana_tasks.contains_key(task) {
            return asana_error(404, &format!("task: Unknown object: {task}"));
        }
        if data.keys().any(|k| k != "text" && k != "html_text")
            || data.get("text").and_then(Value::as_str).is_none_or(|t| t.is_empty())
        {
            return asana_error(400, "text: Missing input");
        }
        let gid = next_id(s, 16, false);
        return Ok((StatusCode::CREATED, json!({"data": {"gid": gid, "type": "comment", "text": data["text"]}})));
    }
    asana_error(404, "No matching route for request")
}

fn hubspot_error(status: u16, category: &str, message: &str) -> Outcome {
    refuse(status, json!({"status": "error", "category": category, "message": message}), format!("hubspot: {message}"))
}

/// <https://developers.hubspot.com/docs/api/crm/contacts>, notes and tasks: CRM v3 objects.
fn hubspot(s: &mut State, method: &Method, rest: &str, query: &str, headers: &HeaderMap, body: &[u8]) -> Outcome {
    if header(headers, "authorization") != format!("Bearer {HUBSPOT_TOKEN}") {
        return hubspot_error(401, "INVALID_AUTHENTICATION", "Authentication credentials not found.");
    }
    if method == Method::GET {
        if rest == "/crm/v3/objects/contacts" {
            return Ok((StatusCode::OK, json!({"results": []})));
        }
        if let Some(key) = rest.strip_prefix("/crm/v3/objects/contacts/") {
            if query != "idProperty=email" {
                return hubspot_error(400, "VALIDATION_ERROR", "contact lookups here are by email");
            }
            let email = percent_decode(key);
            return match s.hubspot_contacts.get(&email) {
                Some(id) => Ok((StatusCode::OK, json!({"id": id, "properties": {"email": email}}))),
                None => hubspot_error(404, "OBJECT_NOT_FOUND", "resource not found"),
            };
        }
        return hubspot_error(404, "OBJECT_NOT_FOUND", "no such path");
    }
    if method != Method::POST || !is_json(headers) {
        return hubspot_error(415, "VALIDATION_ERROR", "Content-Type must be application/json");
    }
    let Ok(Value::Object(args)) = serde_json::from_slice::<Value>(body) else {
        return hubspot_error(400, "VALIDATION_ERROR", "Invalid input JSON");
    };
    let strings = |props: &Value| props.as_object().is_some_and(|p| p.values().all(Value::is_string));
    match rest {
        "/crm/v3/objects/contacts/batch/upsert" => {
            let Some(inputs) = args.get("inputs").and_then(Value::as_array).filter(|i| !i.is_empty() && i.len() <= 100)
            else {
                return hubspot_error(400, "VALIDATION_ERROR", "inputs must hold 1 to 100 records");
            };
            let mut results = Vec::new();
            for input in inputs {
                let (Some("email"), Some(email)) =
                    (input.get("idProperty").and_then(Value::as_str), input.get("id").and_then(Value::as_str))
                else {
                    return hubspot_error(400, "VALIDATION_ERROR", "each input needs idProperty and id");
                };
                if !email.contains('@') || !input.get("properties").is_some_and(strings) {
                    return hubspot_error(400, "VALIDATION_ERROR", "properties must be text values and id an email");
                }
                let known = s.hubspot_contacts.get(email).cloned();
                let id = known.clone().unwrap_or_else(|| next_id(s, 5, false));
                s.hubspot_contacts.insert(email.to_owned(), id.clone());
                results.push(json!({"id": id, "new": known.is_none(), "properties": input["properties"]}));
            }
            Ok((StatusCode::OK, json!({"status": "COMPLETE", "results": results})))
        }
        "/crm/v3/objects/notes" | "/crm/v3/objects/tasks" => {
            let note = rest.ends_with("notes");
            let props = args.get("properties").cloned().unwrap_or(Value::Null);
            if !strings(&props)
                || props
                    .get("hs_timestamp")
                    .and_then(Value::as_str)
                    .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                    .is_none()
            {
                return hubspot_error(400, "VALIDATION_ERROR", "hs_timestamp is required, and properties are text");
            }
            if note && props.get("hs_note_body").is_none() {
                return hubspot_error(400, "VALIDATION_ERROR", "hs_note_body is required");
            }
            if !note {
                let status_ok = props
                    .get("hs_task_status")
                    .and_then(Value::as_str)
                    .is_none_or(|s| ["NOT_STARTED", "COMPLETED", "IN_PROGRESS", "WAITING", "DEFERRED"].contains(&s));
                let priority_ok = props
                    .get("hs_task_priority")
                    .and_then(Value::as_str)
                    .is_none_or(|p| ["LOW", "MEDIUM", "HIGH"].contains(&p));
                if !status_ok || !priority_ok || props.get("hs_task_subject").is_none() {
                    return hubspot_error(400, "VALIDATION_ERROR", "task status, priority or subject invalid");
                }
            }
            let type_id = if note { 202 } else { 204 };
            let associations_ok = args.get("associations").and_then(Value::as_array).is_some_and(|a| {
                a.iter().all(|x| {
                    let to = x["to"]["id"].as_str().unwrap_or("");
                    s.hubspot_contacts.values().any(|id| id == to)
                        && x["types"][0]["associationCategory"] == "HUBSPOT_DEFINED"
                        && x["types"][0]["associationTypeId"] == type_id
                })
            });
            if !associations_ok {
                return hubspot_error(
                    400,
                    "VALIDATION_ERROR",
                    "associations must name existing contacts with the right type",
                );
            }
            let id = next_id(s, 8, false);
            Ok((StatusCode::CREATED, json!({"id": id, "properties": props})))
        }
        _ => hubspot_error(404, "OBJECT_NOT_FOUND", "no such path"),
    }
}

fn is_hash(v: &Value) -> bool {
    v.as_str().is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// A Custom Audience's users edge (<https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences>):
/// POST adds, DELETE removes; the multi-key schema with SHA-256 hashes, at most 10,000 rows.
fn meta(s: &mut State, method: &Method, rest: &str, headers: &HeaderMap, body: &[u8]) -> Outcome {
    let fail = |status: u16, message: &str| {
        refuse(
            status,
            json!({"error": {"message": message, "type": "OAuthException", "code": 100}}),
            format!("meta: {message}"),
        )
    };
    if header(headers, "authorization") != format!("Bearer {AUDIENCE_TOKEN}") {
        return fail(401, "Invalid OAuth access token");
    }
    let Some(id) = rest.strip_suffix("/users") else { return fail(404, "Unknown path") };
    if id != AUDIENCE_ID {
        return fail(400, "Unsupported post request: the audience does not exist");
    }
    let add = match *method {
        Method::POST => true,
        Method::DELETE => false,
        _ => return fail(405, "method"),
    };
    let Ok(v) = serde_json::from_slice::<Value>(body) else { return fail(400, "Invalid JSON") };
    if !is_json(headers) || v["payload"]["schema"] != json!(["EMAIL", "PHONE"]) {
        return fail(400, "payload.schema must list the keys of each row");
    }
    let Some(rows) = v["payload"]["data"].as_array().filter(|d| !d.is_empty() && d.len() <= 10_000) else {
        return fail(400, "payload.data holds 1 to 10,000 rows");
    };
    for row in rows {
        let ok = row
            .as_array()
            .is_some_and(|r| r.len() == 2 && r.iter().all(|x| x == "" || is_hash(x)) && r.iter().any(is_hash));
        if !ok {
            return fail(400, "each row holds one SHA-256 hash (hex) per key, or an empty string");
        }
    }
    let members = s.audiences.entry(id.to_owned()).or_default();
    for row in rows {
        let key = if row[0] != "" { row[0].as_str() } else { row[1].as_str() }.unwrap_or("").to_owned();
        if add {
            members.insert(key);
        } else {
            members.remove(&key);
        }
    }
    Ok((StatusCode::OK, json!({"audience_id": id, "num_received": rows.len(), "num_invalid_entries": 0})))
}

/// Customer Match style: operations with hashed identifiers, one identifier per object.
fn google(s: &mut State, method: &Method, rest: &str, headers: &HeaderMap, body: &[u8]) -> Outcome {
    let fail = |message: &str| {
        refuse(400, json!({"error": {"status": "INVALID_ARGUMENT", "message": message}}), format!("google: {message}"))
    };
    if header(headers, "authorization") != format!("Bearer {AUDIENCE_TOKEN}") {
        return refuse(401, json!({"error": {"status": "UNAUTHENTICATED"}}), "google: auth");
    }
    let Some(id) = rest.strip_suffix("/members") else { return fail("unknown path") };
    let Ok(v) = serde_json::from_slice::<Value>(body) else { return fail("invalid JSON") };
    if *method != Method::POST || !is_json(headers) {
        return fail("POST JSON");
    }
    let Some(ops) = v["operations"].as_array().filter(|o| !o.is_empty()) else { return fail("operations is empty") };
    let members = s.audiences.entry(id.to_owned()).or_default();
    for op in ops {
        let (add, ids) = match (op.get("create"), op.get("remove")) {
            (Some(c), None) => (true, c),
            (None, Some(r)) => (false, r),
            _ => return fail("each operation is exactly one of create or remove"),
        };
        let Some(list) = ids["userIdentifiers"].as_array().filter(|l| !l.is_empty()) else {
            return fail("userIdentifiers is empty");
        };
        for ident in list {
            let fields = ident.as_object().map(|o| o.len()).unwrap_or(0);
            let hash = ident.get("hashedEmail").or_else(|| ident.get("hashedPhoneNumber"));
            if fields != 1 || !hash.is_some_and(is_hash) {
                return fail("each UserIdentifier sets exactly one hashed identifier");
            }
        }
        let key = list[0].as_object().and_then(|o| o.values().next()).and_then(Value::as_str).unwrap_or("").to_owned();
        if add {
            members.insert(key);
        } else {
            members.remove(&key);
        }
    }
    Ok((StatusCode::OK, json!({})))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(Ok(b)) = text.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16))
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Any webhook receiver: JSON bodies; a signature, when present, must verify. Under `/hook/echo` it answers
/// with the body it received, as request-catching receivers do (so a test can see where a vendor's answer about
/// a person is kept).
fn hook(method: &Method, rest: &str, headers: &HeaderMap, body: &[u8]) -> Outcome {
    if ![Method::POST, Method::PUT, Method::PATCH].contains(method) {
        return refuse(405, json!({"error": "method"}), "hook: method");
    }
    if !is_json(headers) || serde_json::from_slice::<Value>(body).is_err() {
        return refuse(400, json!({"error": "json"}), "hook: not JSON");
    }
    if header(headers, "idempotency-key").is_empty() {
        return refuse(400, json!({"error": "idempotency key"}), "hook: no Idempotency-Key");
    }
    let signature = header(headers, "tutti-signature");
    if !signature.is_empty() {
        let t: i64 =
            signature.strip_prefix("t=").and_then(|r| r.split(',').next()).and_then(|t| t.parse().ok()).unwrap_or(-1);
        if crate::webhook::signature(WEBHOOK_SECRET, t, body) != signature {
            return refuse(401, json!({"error": "signature"}), "hook: bad signature");
        }
    }
    if rest.starts_with("echo") {
        let echo: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        return Ok((StatusCode::OK, json!({"received": true, "echo": echo})));
    }
    Ok((StatusCode::OK, json!({"received": true})))
}

/// OpenAI's chat completions (API reference, "Create chat completion"): what it requires of a request, and its
/// answers, whole or as `chat.completion.chunk` events.
fn openai(
    s: &mut State,
    method: &Method,
    rest: &str,
    headers: &HeaderMap,
    body: &Value,
) -> (u16, Response, Option<String>) {
    let refuse = |status: u16, why: String| {
        let answer = json!({"error": {"message": why, "type": "invalid_request_error", "param": null, "code": null}});
        (status, (StatusCode::from_u16(status).unwrap(), axum::Json(answer)).into_response(), Some(why))
    };
    if method != Method::POST || !["/chat/completions", "/embeddings"].contains(&rest) {
        return refuse(404, format!("unknown url {method} {rest}"));
    }
    if header(headers, "authorization") != format!("Bearer {OPENAI_KEY}") {
        return refuse(401, "Incorrect API key provided".into());
    }
    if !header(headers, "content-type").starts_with("application/json") {
        return refuse(400, "the body must be application/json".into());
    }
    if rest == "/embeddings" {
        return match embeddings(s, body) {
            Ok(answer) => (200, (StatusCode::OK, axum::Json(answer)).into_response(), None),
            Err(why) => refuse(400, why),
        };
    }
    if let Err(why) = openai_request(body) {
        return refuse(400, why);
    }
    let stream = body["stream"] == true;
    let usage = body["stream_options"]["include_usage"] == true;
    let reply = s.replies.pop_front().unwrap_or(Reply::Text("ok".into()));
    s.next_id += 1;
    let id = format!("chatcmpl-{}", s.next_id);
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    let (content, calls) = match &reply {
        Reply::Raw(raw) => {
            return (200, (StatusCode::OK, [("content-type", "application/json")], raw.clone()).into_response(), None);
        }
        Reply::CutStream(pieces) => {
            let mut text = String::new();
            for p in pieces {
                let chunk = json!({"id": id, "object": "chat.completion.chunk", "model": model, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": null}]});
                text.push_str(&format!("data: {chunk}\n\n"));
            }
            return (200, (StatusCode::OK, [("content-type", "text/event-stream")], text).into_response(), None);
        }
        Reply::Text(t) => (Some(t.clone()), Vec::new()),
        Reply::Call { name, arguments } => (
            None,
            vec![
                json!({"id": format!("call_{}", s.next_id), "type": "function", "function": {"name": name, "arguments": arguments}}),
            ],
        ),
    };
    let finish = if calls.is_empty() { "stop" } else { "tool_calls" };
    let prompt_tokens: usize = body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["content"].as_str().map_or(0, |c| c.len() / 4 + 1))
        .sum();
    let completion_tokens = content.as_deref().map_or(8, |c| c.len() / 4 + 1);
    let usage_object = json!({"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens});
    if !stream {
        let answer = json!({
            "id": id, "object": "chat.completion", "created": 1_700_000_000, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "tool_calls": if calls.is_empty() { Value::Null } else { Value::Array(calls) }}, "finish_reason": finish}],
            "usage": usage_object,
        });
        return (200, (StatusCode::OK, axum::Json(answer)).into_response(), None);
    }
    let chunk = |delta: Value, finish: Value| json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    let mut events = vec![chunk(json!({"role": "assistant", "content": ""}), Value::Null)];
    if let Some(text) = &content {
        let chars: Vec<char> = text.chars().collect();
        for piece in chars.chunks(3) {
            events.push(chunk(json!({"content": piece.iter().collect::<String>()}), Value::Null));
        }
    }
    for (i, call) in calls.iter().enumerate() {
        // The name and id come once, then the arguments in pieces, as OpenAI streams them.
        events.push(chunk(json!({"tool_calls": [{"index": i, "id": call["id"], "type": "function", "function": {"name": call["function"]["name"], "arguments": ""}}]}), Value::Null));
        let args: Vec<char> = call["function"]["arguments"].as_str().unwrap_or_default().chars().collect();
        for piece in args.chunks(5) {
            events.push(chunk(
                json!({"tool_calls": [{"index": i, "function": {"arguments": piece.iter().collect::<String>()}}]}),
                Value::Null,
            ));
        }
    }
    events.push(chunk(json!({}), json!(finish)));
    let mut text: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    if usage {
        text.push_str(&format!(
            "data: {}\n\n",
            json!({"id": id, "object": "chat.completion.chunk", "model": model, "choices": [], "usage": usage_object})
        ));
    }
    text.push_str("data: [DONE]\n\n");
    (200, (StatusCode::OK, [("content-type", "text/event-stream")], text).into_response(), None)
}

/// "Create embeddings": the request's rules, and the `list` of `embedding` objects it answers.
fn embeddings(s: &State, body: &Value) -> Result<Value, String> {
    let o = body.as_object().ok_or("the body must be a JSON object")?;
    if let Some(k) =
        o.keys().find(|k| !["model", "input", "encoding_format", "dimensions", "user"].contains(&k.as_str()))
    {
        return Err(format!("Unrecognized request argument supplied: {k}"));
    }
    let model = body["model"].as_str().filter(|m| !m.is_empty()).ok_or("you must provide a model parameter")?;
    let inputs: Vec<&str> = match &body["input"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().ok_or("`input` must be a string or an array of strings"))
            .collect::<Result<_, _>>()?,
        _ => return Err("`input` must be a string or an array of strings".into()),
    };
    if inputs.is_empty() || inputs.len() > 2048 {
        return Err(format!("`input` must hold 1 to 2048 texts, not {}", inputs.len()));
    }
    if inputs.iter().any(|t| t.is_empty()) {
        return Err("`input` cannot contain an empty string".into());
    }
    match body.get("encoding_format").map(|f| f.as_str()) {
        None | Some(Some("float")) => {}
        Some(Some("base64")) => return Err("this stand-in answers floats only; Tutti asks for `float`".into()),
        Some(_) => return Err("`encoding_format` must be `float` or `base64`".into()),
    }
    let hashed = |t: &str| -> Vec<f32> {
        let h = tutti_core::hash::fnv1a(t.as_bytes());
        (0..8).map(|i| ((h >> (i * 8)) & 0xff) as f32 - 127.5).collect()
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let v = s.embedder.as_ref().map_or_else(|| hashed(t), |e| e(t));
            json!({"object": "embedding", "index": i, "embedding": v})
        })
        .collect();
    let tokens: usize = inputs.iter().map(|t| t.len() / 4 + 1).sum();
    Ok(
        json!({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}),
    )
}

/// The request rules of OpenAI's API reference that a client can get wrong.
fn openai_request(body: &Value) -> Result<(), String> {
    let name_ok = |n: &str| {
        !n.is_empty() && n.len() <= 64 && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if body["model"].as_str().is_none_or(str::is_empty) {
        return Err("you must provide a model parameter".into());
    }
    let messages =
        body["messages"].as_array().filter(|m| !m.is_empty()).ok_or("`messages` must be a non-empty array")?;
    for (i, m) in messages.iter().enumerate() {
        let role = m["role"].as_str().unwrap_or_default();
        if !["system", "developer", "user", "assistant", "tool"].contains(&role) {
            return Err(format!("messages[{i}].role `{role}` is not one of system, developer, user, assistant, tool"));
        }
        let has_calls = m["tool_calls"].as_array().is_some_and(|c| !c.is_empty());
        if !(m["content"].is_string() || (role == "assistant" && has_calls && m["content"].is_null())) {
            return Err(format!("messages[{i}].content must be a string"));
        }
        if role == "tool" && !m["tool_call_id"].is_string() {
            return Err(format!("messages[{i}]: a tool message needs tool_call_id"));
        }
    }
    let tools = body.get("tools").map(|t| t.as_array().ok_or("`tools` must be an array")).transpose()?;
    let mut names = Vec::new();
    for (i, t) in tools.into_iter().flatten().enumerate() {
        let name = t["function"]["name"].as_str().unwrap_or_default();
        if t["type"] != "function" || !name_ok(name) {
            return Err(format!(
                "tools[{i}] must be {{\"type\": \"function\", \"function\": {{\"name\": ...}}}} with a valid name"
            ));
        }
        if !t["function"]["parameters"].is_object() {
            return Err(format!("tools[{i}].function.parameters must be a JSON Schema object"));
        }
        names.push(name);
    }
    match body.get("tool_choice") {
        None => {}
        Some(_) if names.is_empty() => return Err("`tool_choice` is only allowed when `tools` are specified".into()),
        Some(Value::String(c)) if ["none", "auto", "required"].contains(&c.as_str()) => {}
        Some(c) if c["type"] == "function" && c["function"]["name"].as_str().is_some_and(|n| names.contains(&n)) => {}
        Some(c) => return Err(format!("`tool_choice` {c} names no tool that was given")),
    }
    if body.get("stream_options").is_some() && body["stream"] != true {
        return Err("The 'stream_options' parameter is only allowed when 'stream' is enabled.".into());
    }
    if let Some(f) = body.get("response_format") {
        match f["type"].as_str() {
            Some("text") => {}
            Some("json_object") if f.as_object().is_some_and(|o| o.len() == 1) => {
                let said_json =
                    messages.iter().any(|m| m["content"].as_str().is_some_and(|c| c.to_lowercase().contains("json")));
                if !said_json {
                    return Err("'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.".into());
                }
            }
            Some("json_object") => {
                return Err("response_format of type json_object takes no other keys (`schema` is not OpenAI's)".into());
            }
            Some("json_schema") => {
                let js = &f["json_schema"];
                if !js["name"].as_str().is_some_and(name_ok) || !js["schema"].is_object() {
                    return Err("response_format.json_schema needs a valid `name` and a `schema` object".into());
                }
                if js["strict"] == true {
                    strict_schema(&js["schema"], "schema")?;
                }
            }
            _ => return Err(format!("response_format.type {} is not text, json_object or json_schema", f["type"])),
        }
    }
    Ok(())
}

/// Strict mode: every object lists `additionalProperties: false` and requires all its properties.
fn strict_schema(schema: &Value, at: &str) -> Result<(), String> {
    match schema {
        Value::Object(o) => {
            if let Some(props) = o.get("properties").and_then(Value::as_object) {
                if o.get("additionalProperties") != Some(&Value::Bool(false)) {
                    return Err(format!(
                        "Invalid schema: In context={at}, 'additionalProperties' is required to be supplied and to be false"
                    ));
                }
                let required: Vec<&str> = o
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                if let Some(missing) = props.keys().find(|k| !required.contains(&k.as_str())) {
                    return Err(format!(
                        "Invalid schema: In context={at}, 'required' is required to include every key, missing '{missing}'"
                    ));
                }
            }
            for (k, v) in o {
                strict_schema(v, &format!("{at}.{k}"))?;
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(|v| strict_schema(v, at)),
        _ => Ok(()),
    }
}
