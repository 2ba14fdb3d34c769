//! The console: the marketer's view of Tutti, served at `/` by the same binary. Pages are rendered on the
//! server from templates checked when Tutti is compiled (`templates/`, askama, every value escaped); the one
//! stylesheet is embedded. No script runs: the strict Content-Security-Policy allows none, and a page that
//! should stay current refreshes itself.
//!
//! Signing in uses the same sessions as the API (`crate::sessions`): the form posts to `/sign-in`, which sets
//! the session cookie; every page needs it, and every form that changes something carries the session's CSRF
//! token.

mod approvals;
mod ask;
mod audit;
mod broadcasts;
mod conversations;
mod copilot;
mod creatives;
mod deliveries;
mod diff;
mod editor;
mod flows;
mod graph;
mod profiles;
mod report;
mod segments;
mod settings;
mod time;
mod words;
mod workers;

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use tutti_engine::Engine;
use tutti_engine::people::PeopleError;

use crate::admin::blocking;
use crate::error::{ApiError, secret_eq};
use crate::sessions::{ClientAddress, SignedIn, session_cookie};
pub use approvals::{decide as decide_approval, inbox as approvals};
pub use ask::ask;
pub use audit::log as audit;
pub use broadcasts::{cancel as cancel_broadcast, list as broadcasts, submit as submit_broadcast};
pub use conversations::show as conversations;
pub use copilot::{change as change_plan, decide as decide_plan, propose as propose_plan, show as copilot};
pub use creatives::{decide as decide_budget, propose as propose_budget, show as creatives};
pub use deliveries::{list as deliveries, replay as replay_dead_letters};
pub use flows::{edit as edit_flow, list as flows, pause as pause_flow, show as flow};
pub use profiles::{erase as erase_profile, profile, search as profiles};
pub use report::show as flow_report;
pub use segments::{create as create_segment, edit as edit_segment, list as segments, show as segment};
pub use settings::{change_person, check_connector, choose_zone, create_token, revoke_token, show as settings};
pub use time::Zone;
pub use words::{Lang, Words};
pub use workers::show as workers;

const CSS: &str = include_str!("../../assets/console.css");
const ICON: &str = include_str!("../../assets/favicon.svg");

/// What every console answer carries: no script, no framing, nothing loaded from elsewhere, no referrer.
pub(crate) fn secured(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name: &'static str, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        "content-security-policy",
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "x-frame-options", "DENY");
    // Same-origin: other sites learn nothing from a link followed, and this site's own forms keep their `Origin`.
    set(headers, "referrer-policy", "same-origin");
    response
}

pub(crate) fn page(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => {
            let mut response = Html(html).into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            secured(response)
        }
        Err(e) => secured(ApiError::internal("rendering a console page", e).into_response()),
    }
}

/// A JSON value as a person reads it: a string as itself, nothing as nothing, anything else as JSON.
pub(crate) fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[derive(Template)]
#[template(path = "not_found.html")]
struct NotFoundPage {
    lang: &'static str,
    title: &'static str,
    words: &'static Words,
}

/// The page for something that is not there (or that the person may not see): 404.
pub(crate) fn not_found(headers: &HeaderMap) -> Response {
    let lang = Lang::of(headers);
    let words = lang.words();
    let mut response = page(&NotFoundPage { lang: lang.code(), title: words.not_found, words });
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

pub(crate) fn to_sign_in() -> Response {
    secured(Redirect::to("/sign-in").into_response())
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage<'a> {
    lang: &'static str,
    title: &'static str,
    words: &'static Words,
    email: &'a str,
    problem: Option<&'static str>,
}

/// `GET /sign-in`.
pub async fn sign_in_page(headers: HeaderMap) -> Response {
    let lang = Lang::of(&headers);
    let words = lang.words();
    page(&SignInPage { lang: lang.code(), title: words.sign_in, words, email: "", problem: None })
}

#[derive(Deserialize)]
pub struct SignInForm {
    email: String,
    password: String,
}

/// Whether a form was posted from a page of this site: a browser says where a form came from
/// (`Sec-Fetch-Site`, else `Origin`), so a page elsewhere cannot sign someone in or out behind their back.
/// Forms also carry the session's CSRF token; this is the check for the sign-in form, which has none yet.
pub(crate) fn same_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes() == b"same-origin";
    }
    match (headers.get(header::ORIGIN), headers.get(header::HOST)) {
        (Some(origin), Some(host)) => {
            let origin = origin.to_str().unwrap_or("");
            let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest);
            origin_host.as_bytes() == host.as_bytes()
        }
        _ => true,
    }
}

/// Whether a signed-in person's form may go ahead: their role is at least `least`, the form carries their
/// session's CSRF token, and it was posted from this site.
pub(crate) fn may_post(
    signed_in: &SignedIn,
    least: tutti_engine::people::Role,
    csrf: &str,
    headers: &HeaderMap,
) -> bool {
    signed_in.session.person.role >= least
        && secret_eq(csrf.as_bytes(), signed_in.session.csrf.as_bytes())
        && same_site(headers)
}

/// The value of a query's or form's field (trimmed), or empty.
pub(crate) fn field(pairs: &[(String, String)], name: &str) -> String {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim().to_owned()).unwrap_or_default()
}

/// `POST /sign-in`: the form. Signed in: the cookie, and on to the overview. Otherwise the form again, with why.
pub async fn sign_in(
    State(engine): State<Arc<Engine>>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let lang = Lang::of(&headers);
    let words = lang.words();
    if !same_site(&headers) {
        return secured(StatusCode::FORBIDDEN.into_response());
    }
    let email = form.email.clone();
    let outcome = blocking(move || match engine.people().sign_in(&form.email, &form.password, &address) {
        Ok(signed_in) => Ok(Ok(signed_in)),
        Err(PeopleError::TooManyAttempts { .. }) => Ok(Err(words.too_many_attempts)),
        Err(e) => Err(e.into()),
    })
    .await;
    let problem = match outcome {
        Ok(Ok(Some(signed_in))) => {
            let mut response = Redirect::to("/").into_response();
            response.headers_mut().insert(header::SET_COOKIE, session_cookie(Some(&signed_in.token), &headers));
            return secured(response);
        }
        Ok(Ok(None)) => words.sign_in_failed,
        Ok(Err(held)) => held,
        Err(e) => return secured(e.into_response()),
    };
    let mut response =
        page(&SignInPage { lang: lang.code(), title: words.sign_in, words, email: &email, problem: Some(problem) });
    *response.status_mut() =
        if problem == words.sign_in_failed { StatusCode::UNAUTHORIZED } else { StatusCode::TOO_MANY_REQUESTS };
    response
}

#[derive(Deserialize)]
pub struct SignOutForm {
    csrf: String,
}

/// `POST /sign-out`: the form in every page's header, with the session's CSRF token.
pub async fn sign_out(
    signed_in: Option<SignedIn>,
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    Form(form): Form<SignOutForm>,
) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    if !may_post(&signed_in, tutti_engine::people::Role::Viewer, &form.csrf, &headers) {
        return secured(StatusCode::FORBIDDEN.into_response());
    }
    let token = signed_in.token().to_owned();
    if let Err(e) = blocking(move || Ok(engine.people().sign_out(&token)?)).await {
        return secured(e.into_response());
    }
    let mut response = Redirect::to("/sign-in").into_response();
    response.headers_mut().insert(header::SET_COOKIE, session_cookie(None, &headers));
    secured(response)
}

/// Who is signed in, as every page's header shows them, with the token its forms carry.
pub(crate) struct Who {
    name: String,
    email: String,
    role: &'static str,
    csrf: String,
}

impl Who {
    pub(crate) fn of(session: &tutti_engine::Session) -> Who {
        let person = &session.person;
        Who {
            name: person.name.clone(),
            email: person.email.clone(),
            role: person.role.as_str(),
            csrf: session.csrf.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    lang: &'static str,
    title: &'static str,
    words: &'static Words,
    who: Who,
    counts: Vec<(&'static str, String)>,
    connectors: Vec<(String, [u64; 5])>,
}

/// `GET /`: the overview, for anyone signed in.
pub async fn overview(signed_in: Option<SignedIn>, State(engine): State<Arc<Engine>>, headers: HeaderMap) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    let lang = Lang::of(&headers);
    let words = lang.words();
    let metrics = engine.metrics.clone();
    let waiting = blocking(move || {
        let approvals = engine.approvals(None, 1000)?.len();
        let dead = engine.dead_letters(&tutti_engine::DeadLetterFilter::default(), 0, 1000)?.len();
        Ok((approvals, dead))
    })
    .await;
    let (approvals, dead) = match waiting {
        Ok(counts) => counts,
        Err(e) => return secured(e.into_response()),
    };
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let at_most = |n: usize| if n >= 1000 { "1,000+".to_owned() } else { n.to_string() };
    let accepted = load(&metrics.events_accepted);
    let counts = vec![
        (words.events_per_second, events_per_second(accepted)),
        (words.events_accepted, accepted.to_string()),
        (words.events_processed, load(&metrics.events_processed).to_string()),
        (words.processor_lag, load(&metrics.log_head).saturating_sub(load(&metrics.processed_seq)).to_string()),
        (words.runs_started, load(&metrics.runs_started).to_string()),
        (words.runs_ended, load(&metrics.runs_ended).to_string()),
        (words.actions_queued, load(&metrics.actions_queued).to_string()),
        (words.actions_delivered, load(&metrics.actions_delivered).to_string()),
        (words.actions_retried, load(&metrics.actions_retried).to_string()),
        (words.actions_skipped, load(&metrics.actions_skipped).to_string()),
        (words.actions_dead, load(&metrics.actions_dead).to_string()),
        (words.approvals_waiting, at_most(approvals)),
        (words.dead_letters, at_most(dead)),
    ];
    let connectors = metrics
        .connector_attempts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    page(&OverviewPage {
        lang: lang.code(),
        title: words.overview,
        words,
        who: Who::of(&signed_in.session),
        counts,
        connectors,
    })
}

/// Events accepted per second since the overview was last shown (to anyone), at least a second ago; `—` the
/// first time. The overview refreshes every 10 s, so this is the recent rate.
fn events_per_second(accepted: u64) -> String {
    static LAST: std::sync::Mutex<Option<(std::time::Instant, u64)>> = std::sync::Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    let now = std::time::Instant::now();
    match *last {
        Some((at, before)) if now.duration_since(at).as_secs_f64() >= 1.0 => {
            let rate = accepted.saturating_sub(before) as f64 / now.duration_since(at).as_secs_f64();
            *last = Some((now, accepted));
            format!("{rate:.1}")
        }
        Some((at, before)) => {
            // Too soon for a rate of its own: the previous interval's.
            let rate = accepted.saturating_sub(before) as f64 / now.duration_since(at).as_secs_f64().max(1.0);
            format!("{rate:.1}")
        }
        None => {
            *last = Some((now, accepted));
            "—".to_owned()
        }
    }
}

/// `GET /lang/{code}`: remembers the person's language (a year), and back to the overview.
pub async fn choose_language(Path(code): Path<String>) -> Response {
    let Some(lang) = Lang::parse(&code) else { return secured(StatusCode::NOT_FOUND.into_response()) };
    let mut response = Redirect::to("/").into_response();
    let cookie = format!("tutti_lang={}; Path=/; SameSite=Lax; Max-Age=31536000", lang.code());
    response.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("a language code"));
    secured(response)
}

/// `GET /assets/console.css`.
pub async fn stylesheet() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}

/// `GET /assets/favicon.svg`.
pub async fn icon() -> Response {
    asset(ICON, "image/svg+xml")
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    secured(response)
}
