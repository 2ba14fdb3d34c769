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
//!
//! One file per vendor; this one holds the server, its state and faults, and what the vendors share.

mod asana;
mod audiences;
mod hubspot;
mod openai;
mod slack;
mod trello;
mod webhook;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use asana::asana;
use audiences::{google, meta};
use hubspot::hubspot;
use openai::openai;
use slack::{slack, slack_hook};
use trello::trello;
use webhook::hook;

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

/// Whether a tool that `scripts/test.sh` installs (a Python client, an SMTP server, the model server) is at
/// `path`. Under the script, which sets `TUTTI_TEST_REQUIRE_TOOLS`, a missing tool fails the test; under a plain
/// `cargo test` the test prints one line saying what it skipped and why, and returns.
pub fn tool_installed(path: &std::path::Path, what: &str) -> bool {
    if path.exists() {
        return true;
    }
    if std::env::var_os("TUTTI_TEST_REQUIRE_TOOLS").is_some() {
        panic!("{} is missing: scripts/test.sh installs {what} there", path.display());
    }
    eprintln!("skipped: needs {what}, not found at {} (./scripts/test.sh installs it)", path.display());
    false
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

impl Received {
    /// The request's `Idempotency-Key`, or "" without one.
    pub fn idempotency_key(&self) -> &str {
        header(&self.headers, "idempotency-key")
    }
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
