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
//! It plays the channels of Vietnam and China too: Twilio's Messages API (`/twilio/...`), eSMS's brandname SMS
//! (`/esms/...`), Alibaba Cloud SMS with its RPC signature checked (`/alibaba-sms/`), and Zalo's OAuth token
//! refresh (refresh tokens good once), ZNS and Official Account messages (`/zalo-oauth`, `/zalo-zns`,
//! `/zalo-oa`).
//!
//! And the ad platforms' management APIs: Meta's campaign and ad set nodes (`/meta-ads/...`) and the Google Ads
//! API's search and mutate calls (`/google-ads/...`), holding a few campaigns whose state a test reads back.
//!
//! Faults can be injected per vendor: answer the next requests with a status (with or without `Retry-After`),
//! hang, or be down (503) until told otherwise.
//!
//! One file per vendor; this one holds the server, its state and faults, and what the vendors share.

mod ads;
mod asana;
mod audiences;
mod hubspot;
mod openai;
mod slack;
mod sms;
mod smtp_server;
mod trello;
mod webhook;
mod zalo;

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

pub use sms::SmsSent;
pub use smtp_server::SmtpServer;
pub use zalo::ZaloSent;

pub const SLACK_TOKEN: &str = "xoxb-test-123";

pub const TRELLO_KEY: &str = "trello-key-abc";

pub const TRELLO_TOKEN: &str = "trello-token-def";

pub const ASANA_TOKEN: &str = "asana-pat-ghi";

pub const HUBSPOT_TOKEN: &str = "pat-na1-hubspot";

pub const WEBHOOK_SECRET: &str = "whsec-test";

pub const AUDIENCE_TOKEN: &str = "EAAB-audience-token";
pub const OPENAI_KEY: &str = "sk-test-openai";

pub const TWILIO_SID: &str = "AC0123456789abcdef0123456789abcdef";

pub const TWILIO_TOKEN: &str = "twilio-auth-token";

pub const ESMS_API_KEY: &str = "esms-api-key";

pub const ESMS_SECRET_KEY: &str = "esms-secret-key";

/// The brandname the eSMS stand-in has registered.
pub const ESMS_BRANDNAME: &str = "ACME";

pub const ALIBABA_KEY_ID: &str = "LTAI-test-key";

pub const ALIBABA_SECRET: &str = "alibaba-secret";

/// The signature and template the Alibaba Cloud stand-in has registered.
pub const ALIBABA_SIGN: &str = "Acme";

pub const ALIBABA_TEMPLATE: &str = "SMS_123456789";

pub const ZALO_APP_ID: &str = "4291763606161179100";

pub const ZALO_APP_SECRET: &str = "zalo-app-secret";

/// The refresh token the Zalo stand-in starts with (each refresh replaces it).
pub const ZALO_REFRESH_TOKEN: &str = "zrt-initial";

/// The ZNS template the Zalo stand-in has approved.
pub const ZALO_TEMPLATE: &str = "231677";

pub const META_ADS_TOKEN: &str = "EAAB-ads-token";

/// The ad set and campaign the Meta stand-in holds (an ad account in VND).
pub const META_ADSET: &str = "23850000000101";

pub const META_CAMPAIGN: &str = "120210000000001";

pub const GOOGLE_ADS_TOKEN: &str = "ya29.google-ads-token";

pub const GOOGLE_ADS_DEVELOPER_TOKEN: &str = "google-dev-token";

/// The customer, campaign and ad group the Google Ads stand-in holds.
pub const GOOGLE_CUSTOMER: &str = "1234567890";

pub const GOOGLE_CAMPAIGN: &str = "456";

pub const GOOGLE_AD_GROUP: &str = "321";

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

/// The environment variables [`Vendors::connectors`] names, with the stand-in's credentials: for a server
/// started as a process, set them all.
pub const ENV: &[(&str, &str)] = &[
    ("T_SLACK_TOKEN", SLACK_TOKEN),
    ("T_TRELLO_KEY", TRELLO_KEY),
    ("T_TRELLO_TOKEN", TRELLO_TOKEN),
    ("T_ASANA_TOKEN", ASANA_TOKEN),
    ("T_HUBSPOT_TOKEN", HUBSPOT_TOKEN),
    ("T_WEBHOOK_SECRET", WEBHOOK_SECRET),
    ("T_AUDIENCE_TOKEN", AUDIENCE_TOKEN),
    ("T_OPENAI_KEY", OPENAI_KEY),
    ("T_TWILIO_TOKEN", TWILIO_TOKEN),
    ("T_ESMS_API_KEY", ESMS_API_KEY),
    ("T_ESMS_SECRET_KEY", ESMS_SECRET_KEY),
    ("T_ALIBABA_KEY_ID", ALIBABA_KEY_ID),
    ("T_ALIBABA_SECRET", ALIBABA_SECRET),
    ("T_ZALO_APP_SECRET", ZALO_APP_SECRET),
    ("T_ZALO_REFRESH_TOKEN", ZALO_REFRESH_TOKEN),
    ("T_META_ADS_TOKEN", META_ADS_TOKEN),
    ("T_GOOGLE_ADS_TOKEN", GOOGLE_ADS_TOKEN),
    ("T_GOOGLE_ADS_DEVELOPER_TOKEN", GOOGLE_ADS_DEVELOPER_TOKEN),
];

/// [`ENV`] as an environment for [`context`].
pub fn env(name: &str) -> Option<String> {
    ENV.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
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
    /// Messages the SMS providers accepted.
    sms: Vec<SmsSent>,
    esms_requests: std::collections::BTreeSet<String>,
    alibaba_nonces: std::collections::BTreeSet<String>,
    /// Zalo: the refresh token that works now, the access tokens valid now, refreshes made, messages accepted.
    zalo_refresh: String,
    zalo_access: Vec<String>,
    zalo_refreshes: usize,
    zalo: Vec<ZaloSent>,
    /// The ad platforms' campaigns and ad sets by target (`meta:<id>`, `google:campaign:<id>`, ...), and
    /// Google's budgets by resource name.
    ads: BTreeMap<String, Value>,
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
        let state = Arc::new(Mutex::new(State {
            zalo_refresh: ZALO_REFRESH_TOKEN.into(),
            ads: ads::seed(),
            ..State::default()
        }));
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
            "sms": self.sms_table("twilio"),
            "zalo": {"allow_private": local, "app_id": ZALO_APP_ID, "app_secret_env": "T_ZALO_APP_SECRET",
                     "refresh_token_env": "T_ZALO_REFRESH_TOKEN", "oauth_base": format!("{base}/zalo-oauth"),
                     "zns_base": format!("{base}/zalo-zns"), "oa_base": format!("{base}/zalo-oa")},
            "ads": {"allow_private": local, "meta_token_env": "T_META_ADS_TOKEN",
                    "meta_api_base": format!("{base}/meta-ads"), "meta_currency": "VND",
                    "google_token_env": "T_GOOGLE_ADS_TOKEN", "google_developer_token_env": "T_GOOGLE_ADS_DEVELOPER_TOKEN",
                    "google_customer_id": "123-456-7890", "google_api_base": format!("{base}/google-ads"),
                    "topics": {"sunscreen": [format!("meta:adset:{META_ADSET}"), format!("google:campaign:{GOOGLE_CAMPAIGN}")]},
                    "creatives": {"ad-tet-1": format!("meta:adset:{META_ADSET}"),
                                  "ad-tet-2": format!("google:campaign:{GOOGLE_CAMPAIGN}")}},
        }))
        .expect("tables")
    }

    /// A `[connectors.sms]` table for one provider (`twilio`, `esms` or `alibaba`) pointed at this stand-in.
    pub fn sms_table(&self, provider: &str) -> Value {
        let base = format!("http://{}", self.addr);
        let local = json!(["127.0.0.1"]);
        match provider {
            "twilio" => json!({"allow_private": local, "provider": "twilio", "account_sid": TWILIO_SID,
                               "auth_token_env": "T_TWILIO_TOKEN", "from": "+15005550006",
                               "api_base": format!("{base}/twilio"), "default_country_code": "84"}),
            "esms" => json!({"allow_private": local, "provider": "esms", "api_key_env": "T_ESMS_API_KEY",
                             "secret_key_env": "T_ESMS_SECRET_KEY", "brandname": ESMS_BRANDNAME,
                             "api_base": format!("{base}/esms")}),
            _ => json!({"allow_private": local, "provider": "alibaba", "access_key_id_env": "T_ALIBABA_KEY_ID",
                        "access_key_secret_env": "T_ALIBABA_SECRET", "sign_name": ALIBABA_SIGN,
                        "api_base": format!("{base}/alibaba-sms")}),
        }
    }

    /// Messages the SMS providers accepted, in order.
    pub fn sms(&self) -> Vec<SmsSent> {
        self.state.lock().unwrap().sms.clone()
    }

    /// Messages Zalo accepted, in order.
    pub fn zalo(&self) -> Vec<ZaloSent> {
        self.state.lock().unwrap().zalo.clone()
    }

    /// A campaign's or ad set's state on the ad platforms' stand-in (`meta:<id>`, `google:campaign:<id>`,
    /// `google:ad_group:<id>`, or a Google budget's resource name).
    pub fn ad_state(&self, key: &str) -> Value {
        self.state.lock().unwrap().ads.get(key).cloned().unwrap_or(Value::Null)
    }

    /// Every Zalo access token given so far stops working (as a day later), and how many refreshes were made.
    pub fn expire_zalo_tokens(&self) -> usize {
        let mut s = self.state.lock().unwrap();
        s.zalo_access.clear();
        s.zalo_refreshes
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
        ("/twilio", "twilio"),
        ("/esms", "esms"),
        ("/alibaba-sms", "alibaba"),
        ("/zalo-oauth", "zalo-oauth"),
        ("/zalo-zns", "zalo-zns"),
        ("/zalo-oa", "zalo-oa"),
        ("/meta-ads", "meta-ads"),
        ("/google-ads", "google-ads"),
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
    let parsed: Value = serde_json::from_slice(&body).unwrap_or_else(|_| {
        // A form body is recorded as its fields.
        let fields = sms::form(&body);
        if fields.is_empty() { Value::Null } else { json!(fields) }
    });
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
            "twilio" => sms::twilio(&mut s, &method, rest, &headers, &body),
            "esms" => sms::esms(&mut s, &method, rest, &headers, &body),
            "alibaba" => sms::alibaba(&mut s, &method, &headers, &body),
            "zalo-oauth" => zalo::oauth(&mut s, &method, rest, &headers, &body),
            "zalo-zns" => zalo::zns(&mut s, &method, rest, &headers, &body),
            "zalo-oa" => zalo::oa(&mut s, &method, rest, &headers, &body),
            "meta-ads" => ads::meta(&mut s, &method, rest, query, &headers, &body),
            "google-ads" => ads::google(&mut s, &method, rest, &headers, &body),
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
