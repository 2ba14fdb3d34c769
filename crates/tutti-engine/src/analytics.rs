//! The projection of the log into the analytics store, on a thread of its own (`tutti-analytics`).
//!
//! It follows the processor, not the log's head: an event is projected once the processor has committed it,
//! so its person is known (looked up by its identifiers, as the processor resolved them) and merges are
//! applied in the order they were recorded. The cursor is committed with the rows, so a restart resumes where
//! it stopped and nothing is counted twice. The writer is shared with the processor's erasure behind one
//! lock, which a whole batch holds from reading the log to committing: an erased person's events are either
//! already projected (and deleted with them) or already gone from the log.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tutti_analytics::MetricsLayer;
use tutti_analytics::project::{Projected, project};
use tutti_analytics::sqlite::{Cursor, Merge, SqliteAnalytics};
use tutti_core::{Event, ProfileId};
use tutti_log::LogFeed;
use tutti_profiles::IdentityConfig;
use tutti_store::{EventReader, ProfileReader, StoreError};

/// Events read from the log per batch.
pub const BATCH: usize = 5_000;

/// The analytics store's writer, shared by the projector and erasure.
pub type SharedWriter = Arc<Mutex<SqliteAnalytics>>;

/// Analytics failures.
#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    #[error(transparent)]
    Analytics(#[from] tutti_analytics::sqlite::StoreError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one step of the projection needs to read.
pub struct Sources<'a> {
    pub events: &'a dyn EventReader,
    pub profiles: &'a dyn ProfileReader,
    pub identity: &'a IdentityConfig,
    pub layer: &'a MetricsLayer,
}

/// The person an event belongs to now: the profile it names (Tutti's own events), or the owner of its first
/// identifier that has one. `None` for events of erased people and events not yet resolved.
fn owner(sources: &Sources<'_>, event: &Event) -> Result<Option<ProfileId>, StoreError> {
    if let Some(p) = event.internal_profile() {
        return Ok(Some(p));
    }
    for id in sources.identity.identifiers(event, false) {
        if let Some(p) = sources.profiles.owner(&id)? {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

/// Projects the next batch of events up to `upto` (the processor's checkpoint) and the merges recorded since
/// the cursor, under the writer's lock. Returns how many events and merges were read (0: nothing to do) and the
/// cursor after them.
pub fn step(
    writer: &Mutex<SqliteAnalytics>,
    sources: &Sources<'_>,
    upto: u64,
) -> Result<(usize, Cursor), AnalyticsError> {
    let mut store = writer.lock().unwrap_or_else(|e| e.into_inner());
    let cursor = store.cursor()?;
    let mut batch: Vec<Projected> = Vec::new();
    let mut next = cursor;
    let mut read = 0;
    if cursor.log < upto {
        let events = sources.events.read_after(cursor.log, BATCH)?;
        for stored in events.into_iter().take_while(|e| e.seq <= upto) {
            read += 1;
            next.log = stored.seq;
            let Ok(event) = Event::from_stored(stored.body) else { continue };
            if let Some(profile) = owner(sources, &event)? {
                batch.push(project(stored.seq, &event, profile.0, sources.layer));
            }
        }
    }
    let merges: Vec<Merge> = sources
        .profiles
        .merges_after(cursor.merges, BATCH)?
        .into_iter()
        .map(|(id, into, from)| Merge { id, into: into.0, from: from.0 })
        .collect();
    if let Some(last) = merges.last() {
        next.merges = last.id;
    }
    if next == cursor {
        return Ok((0, cursor));
    }
    store.apply(&batch, &merges, next)?;
    Ok((read.max(merges.len()), next))
}

/// Starts the projection over when the tables were made for another layer (or never made).
pub fn ensure_layer(writer: &Mutex<SqliteAnalytics>, layer: &MetricsLayer) -> Result<bool, AnalyticsError> {
    let mut store = writer.lock().unwrap_or_else(|e| e.into_inner());
    let want = layer.projection_fingerprint();
    if store.fingerprint()?.as_deref() == Some(want.as_str()) {
        return Ok(false);
    }
    store.reset(&want)?;
    Ok(true)
}

/// The projector thread's loop: projects while the processor moves, until its feed closes.
pub struct Projector {
    pub writer: SharedWriter,
    pub events: Arc<dyn EventReader>,
    pub profiles: Arc<dyn ProfileReader>,
    pub processed: Arc<dyn LogFeed>,
    pub identity: IdentityConfig,
    pub layer: Arc<MetricsLayer>,
    pub metrics: Arc<tutti_metrics::Metrics>,
}

impl Projector {
    pub fn run(self) {
        let sources =
            Sources { events: &*self.events, profiles: &*self.profiles, identity: &self.identity, layer: &self.layer };
        let mut failing = false;
        loop {
            let upto = self.processed.head();
            match step(&self.writer, &sources, upto) {
                Ok((read, at)) => {
                    failing = false;
                    self.metrics.analytics_seq.store(at.log, std::sync::atomic::Ordering::Relaxed);
                    if read > 0 {
                        continue;
                    }
                    if self.processed.is_closed() {
                        break;
                    }
                    // Merges come without the checkpoint moving; a second is soon enough for them.
                    self.processed.wait_beyond(at.log.max(upto), Duration::from_secs(1));
                }
                Err(e) => {
                    if !failing {
                        tracing::error!(error = %e, "analytics projection failed; retrying");
                    }
                    failing = true;
                    if self.processed.is_closed() {
                        break;
                    }
                    self.processed.wait_beyond(u64::MAX, Duration::from_secs(1));
                }
            }
        }
    }
}

/// The cursor, for tests and progress.
pub fn cursor(writer: &Mutex<SqliteAnalytics>) -> Result<Cursor, AnalyticsError> {
    Ok(writer.lock().unwrap_or_else(|e| e.into_inner()).cursor()?)
}
