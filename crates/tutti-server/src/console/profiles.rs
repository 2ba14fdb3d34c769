//! Profiles: a search by any identifier, and one person's page (identities, traits, consent per channel,
//! segments, a timeline of their events and of every action meant for them with how it ended, their runs and
//! merges). Admins erase a profile from its page, after typing its id to confirm.
//!
//! The JSON of the same things: `GET /api/v1/profiles/{key}` and its `/events`, `/merges`, `/segments`;
//! `GET /api/v1/runs?profile=`; `GET /api/v1/deliveries?profile=`.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::Value;
use tutti_core::ProfileId;
use tutti_engine::people::Role;
use tutti_engine::{DeliveryFilter, Engine};

use super::{Lang, Who, Words, Zone, may_post, page, secured, text, to_sign_in};
use crate::admin::{blocking, find};
use crate::error::ApiError;
use crate::sessions::SignedIn;

/// How a search is read: a profile key as the API takes it (`p42`, `email:...`, `phone:...`, `user_id:...`,
/// `anonymous_id:...`), else a bare email, phone number, user id or anonymous id.
fn keys_for(query: &str) -> Vec<String> {
    let q = query.trim();
    let is_id = q.strip_prefix('p').is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if q.contains(':') || is_id {
        vec![q.to_owned()]
    } else if q.contains('@') {
        vec![format!("email:{q}")]
    } else if q.starts_with('+') {
        vec![format!("phone:{q}")]
    } else {
        vec![format!("user_id:{q}"), format!("anonymous_id:{q}")]
    }
}

/// The most profiles a trait search lists.
const TRAIT_MATCHES: usize = 50;

#[derive(Template)]
#[template(path = "profiles.html")]
struct SearchPage {
    lang: &'static str,
    title: &'static str,
    words: &'static Words,
    who: Who,
    query: String,
    problem: Option<String>,
    notice: Option<String>,
    /// Profiles a trait search found (`trait:name=value`), and whether it looked at every profile.
    matches: Vec<String>,
    partial: bool,
}

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    erased: Option<String>,
}

/// `GET /profiles?q=`: one match goes straight to the profile's page.
pub async fn search(
    signed_in: Option<SignedIn>,
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    Query(q): Query<SearchQuery>,
) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    let lang = Lang::of(&headers);
    let words = lang.words();
    let query = q.q.unwrap_or_default();
    let mut problem = None;
    let (mut matches, mut partial) = (Vec::new(), false);
    if let Some((name, value)) = query.trim().strip_prefix("trait:").and_then(|t| t.split_once('=')) {
        let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
        let found = blocking(move || {
            Ok(engine.profiles_with_trait(&name, &value, TRAIT_MATCHES, std::time::Duration::from_secs(2))?)
        })
        .await;
        match found {
            Ok((found, complete)) => {
                if found.is_empty() && complete {
                    problem = Some(format!("{} {query}", words.no_profile_matches));
                }
                matches = found.iter().map(ToString::to_string).collect();
                partial = !complete;
            }
            Err(e) => return secured(e.into_response()),
        }
    } else if !query.trim().is_empty() {
        let keys = keys_for(&query);
        let found = blocking(move || Ok(keys.iter().find_map(|key| find(&engine, key).ok()))).await;
        match found {
            Ok(Some(id)) => return secured(Redirect::to(&format!("/profiles/{id}")).into_response()),
            Ok(None) => problem = Some(format!("{} {query}", words.no_profile_matches)),
            Err(e) => return secured(e.into_response()),
        }
    }
    let notice = q.erased.filter(|id| id.parse::<ProfileId>().is_ok()).map(|id| format!("{} {id}", words.erased));
    page(&SearchPage {
        lang: lang.code(),
        title: words.profiles,
        words,
        who: Who::of(&signed_in.session),
        query,
        problem,
        notice,
        matches,
        partial,
    })
}

/// One line of the timeline: an event the person sent, or an action meant for them.
struct Moment {
    at: i64,
    when: String,
    what: String,
    detail: String,
    outcome: String,
}

struct Run {
    id: String,
    flow: String,
    state: String,
    started: String,
}

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage {
    lang: &'static str,
    title: &'static str,
    words: &'static Words,
    who: Who,
    id: String,
    identities: Vec<(String, String)>,
    traits: Vec<(String, String, String)>,
    consent: Vec<(&'static str, Option<String>)>,
    segments: Vec<String>,
    timeline: Vec<Moment>,
    runs: Vec<Run>,
    merges: Vec<(String, String)>,
    seen: (String, String),
    can_erase: bool,
}

/// The channels whose consent a profile page shows: those a profile's own traits can close (see
/// `tutti_flows::policy::builtin_consent`).
const CHANNELS: [&str; 4] = ["email", "sms", "zalo", "push"];

fn short(value: &Value, most: usize) -> String {
    let shown = text(value);
    if shown.chars().count() <= most {
        return shown;
    }
    let cut: String = shown.chars().take(most).collect();
    format!("{cut}…")
}

/// `GET /profiles/{key}`.
pub async fn profile(
    signed_in: Option<SignedIn>,
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    let lang = Lang::of(&headers);
    let words = lang.words();
    let zone = Zone::of(&headers);
    let gathered = blocking(move || {
        let id = find(&engine, &key)?;
        let Some(profile) = engine.profile(id)? else {
            return Err(ApiError::new(tutti_core::ErrorCode::ProfileNotFound, "the profile is gone"));
        };
        let events = engine.profile_events(id, None, 50)?;
        let filter = DeliveryFilter { profile: Some(id), ..DeliveryFilter::default() };
        let deliveries = engine.deliveries(&filter, 0, 50)?;
        let runs = engine.runs(Some(id), None, 20)?;
        let merges = engine.merges(id)?;
        let segments = engine.segments_of(id)?;
        Ok((profile, events, deliveries, runs, merges, segments))
    })
    .await;
    let (profile, events, deliveries, runs, merges, segments) = match gathered {
        Ok(found) => found,
        Err(e)
            if e.code == tutti_core::ErrorCode::ProfileNotFound
                || e.code == tutti_core::ErrorCode::InvalidProfileKey =>
        {
            return super::not_found(&headers);
        }
        Err(e) => return secured(e.into_response()),
    };
    let public = profile.to_public_json();
    let identities =
        profile.identities.iter().map(|i| (i.kind.as_str().to_owned(), i.value.clone())).collect::<Vec<_>>();
    let traits = profile
        .traits
        .iter()
        .map(|(name, stamped)| (name.clone(), short(&stamped.value, 300), zone.show(stamped.at)))
        .collect();
    let consent = CHANNELS
        .iter()
        .map(|channel| (*channel, tutti_flows::policy::builtin_consent(&public, channel, "marketing")))
        .collect();
    let mut timeline: Vec<Moment> = events
        .iter()
        .map(|e| {
            let event: Value = serde_json::from_slice(&e.body).unwrap_or(Value::Null);
            let kind = text(&event["type"]);
            let name = match kind.as_str() {
                "track" => text(&event["event"]),
                "page" | "screen" => text(&event["name"]),
                _ => String::new(),
            };
            let detail = match kind.as_str() {
                "identify" | "group" => short(&event["traits"], 200),
                _ => short(&event["properties"], 200),
            };
            Moment {
                at: e.received_at,
                when: zone.show(e.received_at),
                what: format!("{} {kind} {name}", words.event).trim_end().to_owned(),
                detail,
                outcome: String::new(),
            }
        })
        .collect();
    timeline.extend(deliveries.iter().map(|d| {
        let action: Value = serde_json::from_slice(&d.row.body).unwrap_or(Value::Null);
        let why = d.error.clone().unwrap_or_default();
        Moment {
            at: d.row.created_at,
            when: zone.show(d.row.created_at),
            what: format!("{} {}.{}", words.action, d.row.connector, text(&action["operation"])),
            detail: format!("{} · {}", text(&action["flow"]), text(&action["step"])),
            outcome: if why.is_empty() {
                words.outcome(&d.state).to_owned()
            } else {
                format!("{}: {why}", words.outcome(&d.state))
            },
        }
    }));
    timeline.sort_by_key(|m| std::cmp::Reverse(m.at));
    let runs = runs
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(r).ok())
        .map(|r| Run {
            id: text(&r["id"]),
            flow: text(&r["flow"]),
            state: text(&r["status"]["state"]),
            started: r["started_at"].as_i64().map(|ms| zone.show(ms)).unwrap_or_default(),
        })
        .collect();
    let merges = merges.iter().map(|m| (m.from.to_string(), zone.show(m.at))).collect();
    page(&ProfilePage {
        lang: lang.code(),
        title: words.profile,
        words,
        who: Who::of(&signed_in.session),
        id: profile.id.to_string(),
        identities,
        traits,
        consent,
        segments,
        timeline,
        runs,
        merges,
        seen: (zone.show(profile.first_seen), zone.show(profile.last_seen)),
        can_erase: signed_in.session.person.role >= Role::Admin,
    })
}

#[derive(Deserialize)]
pub struct EraseForm {
    csrf: String,
    /// The profile's id, typed again.
    confirm: String,
}

/// `POST /profiles/{key}/erase`: admins only, with the profile's id typed to confirm.
pub async fn erase(
    signed_in: Option<SignedIn>,
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    Path(key): Path<String>,
    Form(form): Form<EraseForm>,
) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    let person = signed_in.session.person.clone();
    if !may_post(&signed_in, Role::Admin, &form.csrf, &headers) {
        return secured(StatusCode::FORBIDDEN.into_response());
    }
    let id = match blocking({
        let engine = engine.clone();
        move || find(&engine, &key)
    })
    .await
    {
        Ok(id) => id,
        Err(_) => return super::not_found(&headers),
    };
    if form.confirm.trim() != id.to_string() {
        return secured(Redirect::to(&format!("/profiles/{id}")).into_response());
    }
    match crate::admin::erase_noted(&engine, id, person.email).await {
        Ok(Some(_)) => secured(Redirect::to(&format!("/profiles?erased={id}")).into_response()),
        Ok(None) => super::not_found(&headers),
        Err(e) => secured(e.into_response()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_is_read_as_the_identifier_it_looks_like() {
        assert_eq!(keys_for(" lan@example.vn "), ["email:lan@example.vn"]);
        assert_eq!(keys_for("+84912345678"), ["phone:+84912345678"]);
        assert_eq!(keys_for("p42"), ["p42"]);
        assert_eq!(keys_for("email:a@b.c"), ["email:a@b.c"]);
        assert_eq!(keys_for("u-7"), ["user_id:u-7", "anonymous_id:u-7"]);
        assert_eq!(keys_for("paul"), ["user_id:paul", "anonymous_id:paul"]);
    }
}
