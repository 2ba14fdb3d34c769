//! The workers sharing the event log and the partitions each holds, with their leases. The JSON of the same:
//! `GET /api/v1/workers`.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use tutti_engine::Engine;

use super::{Lang, Who, Words, Zone, page, secured, to_sign_in};
use crate::admin::blocking;
use crate::sessions::SignedIn;

struct WorkerRow {
    id: String,
    role: String,
    started: String,
    seen: String,
    /// Renewed within the lease's length.
    live: bool,
    me: bool,
    /// The partitions it holds, as `0, 3, 7`.
    partitions: String,
}

struct PartitionRow {
    partition: u32,
    /// Empty when no live lease names an owner.
    owner: String,
    token: i64,
    until: String,
}

struct View {
    workers: Vec<WorkerRow>,
    partitions: Vec<PartitionRow>,
}

#[derive(Template)]
#[template(path = "workers.html")]
struct WorkersPage {
    lang: &'static str,
    title: &'static str,
    words: &'static Words,
    who: Who,
    view: Option<View>,
}

/// `GET /workers`.
pub async fn show(signed_in: Option<SignedIn>, State(engine): State<Arc<Engine>>, headers: HeaderMap) -> Response {
    let Some(signed_in) = signed_in else { return to_sign_in() };
    let lang = Lang::of(&headers);
    let words = lang.words();
    let zone = Zone::of(&headers);
    let cluster = match blocking(move || Ok(engine.cluster()?)).await {
        Ok(cluster) => cluster,
        Err(e) => return secured(e.into_response()),
    };
    let view = cluster.map(|c| {
        let live_lease = |owner: &Option<String>, expires: i64| owner.clone().filter(|_| expires > c.now);
        let workers = c
            .workers
            .iter()
            .map(|w| {
                let held: Vec<String> = c
                    .partitions
                    .iter()
                    .filter(|p| live_lease(&p.owner, p.expires_at).as_deref() == Some(w.id.as_str()))
                    .map(|p| p.partition.to_string())
                    .collect();
                WorkerRow {
                    id: w.id.clone(),
                    role: w.role.clone(),
                    started: zone.show(w.started_at),
                    seen: zone.show(w.seen_at),
                    live: w.seen_at > c.now - c.lease_ms,
                    me: w.id == c.me,
                    partitions: held.join(", "),
                }
            })
            .collect();
        let partitions = c
            .partitions
            .iter()
            .map(|p| PartitionRow {
                partition: p.partition,
                owner: live_lease(&p.owner, p.expires_at).unwrap_or_default(),
                token: p.token,
                until: if p.expires_at > 0 { zone.show(p.expires_at) } else { String::new() },
            })
            .collect();
        View { workers, partitions }
    });
    page(&WorkersPage { lang: lang.code(), title: words.workers_page, words, who: Who::of(&signed_in.session), view })
}
