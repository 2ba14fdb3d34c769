//! Events in, and profiles out: ingest, profile look-ups, the log, read-your-writes, erasure.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::oneshot;
use tutti_core::ProfileId;
use tutti_log::LogFeed;
use tutti_profiles::Profile;
use tutti_store::{MergeRecord, StoredEvent};

use crate::{Appended, Engine, EngineError, ErasureReport, NewEvent, ProfileKey, processor};

impl Engine {
    /// A message id for an event that came without one: unique per process start and counter.
    pub fn new_message_id(&self) -> String {
        let n = self.message_ids.fetch_add(1, Ordering::Relaxed);
        format!("tutti-{}-{n}", self.boot_id)
    }

    /// Durably appends events; see [`Intake::append`].
    pub async fn ingest(&self, events: Vec<NewEvent>) -> Result<Vec<Appended>, EngineError> {
        Ok(self.intake.append(events).await?)
    }

    /// Parses a profile key: `p42`, or `type:value` with the value normalised as identifiers are.
    pub fn parse_key(&self, key: &str) -> Option<ProfileKey> {
        if !key.contains(':') {
            return key.parse().ok().map(ProfileKey::Id);
        }
        self.identity.parse_key(key).ok().map(ProfileKey::Identity)
    }

    /// Resolves a key to a profile id. Blocking (SQLite): call from a blocking context.
    pub fn resolve_key(&self, key: &ProfileKey) -> Result<Option<ProfileId>, EngineError> {
        match key {
            ProfileKey::Id(id) => Ok(self.profiles.profile(*id)?.map(|_| *id)),
            ProfileKey::Identity(identifier) => Ok(self.profiles.owner(identifier)?),
        }
    }

    /// Profiles whose trait `name` reads `value`, at most `limit`, scanning profiles in id order for at most
    /// `budget` (traits are not indexed). Returns the matches and whether every profile was looked at. Blocking.
    pub fn profiles_with_trait(
        &self,
        name: &str,
        value: &str,
        limit: usize,
        budget: Duration,
    ) -> Result<(Vec<ProfileId>, bool), EngineError> {
        const RANGE: u64 = 20_000;
        let started = std::time::Instant::now();
        let last = self.profiles.last_profile_id()?;
        let (mut found, mut after) = (Vec::new(), 0);
        while after < last && found.len() < limit {
            if started.elapsed() > budget {
                return Ok((found, false));
            }
            let upto = after.saturating_add(RANGE);
            found.extend(self.profiles.with_trait(name, value, after, upto, limit - found.len())?);
            after = upto;
        }
        Ok((found, after >= last))
    }

    /// A profile's state. Blocking.
    pub fn profile(&self, id: ProfileId) -> Result<Option<Profile>, EngineError> {
        Ok(self.profiles.profile(id)?)
    }

    /// A page of a profile's events, newest first. Blocking.
    pub fn profile_events(
        &self,
        id: ProfileId,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, EngineError> {
        let seqs = self.profiles.event_seqs(id, before, limit)?;
        Ok(self.events.read_seqs(&seqs)?)
    }

    /// The merges that built a profile. Blocking.
    pub fn merges(&self, id: ProfileId) -> Result<Vec<MergeRecord>, EngineError> {
        Ok(self.profiles.merges(id)?)
    }

    /// Events of the log after `after`, oldest first. Blocking.
    pub fn events_after(&self, after: u64, limit: usize) -> Result<Vec<StoredEvent>, EngineError> {
        Ok(self.events.read_after(after, limit)?)
    }

    /// The highest durable sequence number.
    pub fn log_head(&self) -> u64 {
        self.metrics.log_head.load(Ordering::Relaxed)
    }

    /// Waits until every event durable at the time of the call is folded into profiles, or `timeout` passes.
    /// Returns whether it caught up. Blocking.
    pub fn sync(&self, timeout: Duration) -> bool {
        let target = self.log_head();
        // Caught up already, or nothing was ever written: answer at once rather than wait for a change.
        if self.processed.head() >= target {
            return true;
        }
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let seen = self
                .processed
                .wait_beyond(target.saturating_sub(1), deadline.saturating_duration_since(std::time::Instant::now()));
            if seen >= target {
                return true;
            }
            if std::time::Instant::now() >= deadline || self.processed.is_closed() {
                return false;
            }
        }
    }

    /// Erases a profile completely: identities, events, merges, state; in-flight events for it are dropped.
    /// `Ok(None)` when no such profile exists.
    pub async fn erase(&self, id: ProfileId) -> Result<Option<ErasureReport>, EngineError> {
        let (reply, answer) = oneshot::channel();
        {
            let guard = self.processor.lock().unwrap_or_else(|e| e.into_inner());
            let tx = guard.as_ref().ok_or(EngineError::ProcessorGone)?;
            tx.send(processor::Command::Erase { profile: id, reply }).map_err(|_| EngineError::ProcessorGone)?;
        }
        let report = answer.await.map_err(|_| EngineError::ProcessorGone)?.map_err(EngineError::Processing)?;
        if report.is_some() {
            // What website slots showed this person goes with them.
            self.decisions.forget(id.0, &*self.memory).map_err(EngineError::Connectors)?;
        }
        Ok(report)
    }
}
