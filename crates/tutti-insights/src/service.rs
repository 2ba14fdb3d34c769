//! What the CLI and the API do with creatives, over any [`CreativeStore`]: import a file (tagging what it
//! brought), tag, override a tag, analyse.

use std::collections::BTreeMap;
use std::io::Read;

use serde::Serialize;
use tutti_ai::LocalTagger;
use tutti_core::creative::{Creative, Tag, TagSource, Totals};
use tutti_store::{Changes, CreativeStore, StoreError};

use crate::analysis::{Options, Report, analyze_totals};
use crate::import::{ImportError, ImportOptions, Importer, Layout, Rejected};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no creative `{0}`")]
    UnknownCreative(String),
}

/// Rows per chunk: a transaction per chunk keeps memory flat and a progress bar moving.
const CHUNK_ROWS: usize = 10_000;
/// Rejected rows kept for the summary (all are counted).
const REJECTED_KEPT: usize = 100;

/// What an import did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportSummary {
    pub layout: Layout,
    pub creatives: Changes,
    pub performance: Changes,
    /// Creatives tagged by the local tagger after the import (those without tags).
    pub tagged: usize,
    pub skipped: u64,
    pub rejected_count: u64,
    /// The first rejected rows, with their line numbers and reasons.
    pub rejected: Vec<Rejected>,
}

/// Imports an export into the store, chunk by chunk; `progress` hears the bytes read so far after each chunk.
/// Creatives that arrive without tags are then tagged by `tagger`, when given.
pub fn import(
    store: &dyn CreativeStore,
    tagger: Option<&LocalTagger>,
    input: impl Read + 'static,
    options: ImportOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<ImportSummary, ServiceError> {
    let mut importer = Importer::new(input, options)?;
    let mut summary = ImportSummary {
        layout: importer.layout(),
        creatives: Changes::default(),
        performance: Changes::default(),
        tagged: 0,
        skipped: 0,
        rejected_count: 0,
        rejected: Vec::new(),
    };
    let mut brought = Vec::new();
    while let Some(chunk) = importer.next_chunk(CHUNK_ROWS) {
        summary.creatives.add(store.put_creatives(&chunk.creatives)?);
        summary.performance.add(store.put_performance(&chunk.performance)?);
        summary.skipped += chunk.skipped;
        summary.rejected_count += chunk.rejected.len() as u64;
        let room = REJECTED_KEPT.saturating_sub(summary.rejected.len());
        summary.rejected.extend(chunk.rejected.into_iter().take(room));
        brought.extend(chunk.creatives.into_iter().map(|c| c.id));
        progress(importer.bytes_read());
    }
    if let Some(tagger) = tagger {
        brought.sort();
        brought.dedup();
        for id in brought {
            if let Some(c) = store.creative(&id)?
                && needs_tags(&c, tagger)
            {
                store.put_tags(&id, &local_tags(tagger, &c))?;
                summary.tagged += 1;
            }
        }
    }
    Ok(summary)
}

/// Whether some trait of the tagger's has no tag on the creative.
fn needs_tags(c: &Creative, tagger: &LocalTagger) -> bool {
    tagger.taxonomy().traits.iter().any(|t| !c.tags.contains_key(&t.name))
}

/// The local tagger's tags for a creative (the store keeps manual ones over them).
pub fn local_tags(tagger: &LocalTagger, c: &Creative) -> BTreeMap<String, Tag> {
    let text = tutti_ai::Text { headline: &c.headline, body: &c.body, call_to_action: &c.call_to_action };
    tagger
        .tag(text)
        .into_iter()
        .map(|d| (d.name, Tag { value: d.value, confidence: d.confidence, source: TagSource::Local, why: Some(d.why) }))
        .collect()
}

/// Tags creatives with the local tagger: those missing a trait, or with `all` every one (manual tags stay).
/// Returns how many were tagged.
pub fn tag(store: &dyn CreativeStore, tagger: &LocalTagger, all: bool) -> Result<usize, ServiceError> {
    let mut n = 0;
    for c in store.creatives()? {
        if all || needs_tags(&c, tagger) {
            store.put_tags(&c.id, &local_tags(tagger, &c))?;
            n += 1;
        }
    }
    Ok(n)
}

/// Sets a tag by hand: it wins over any tagger and is kept when creatives are tagged again.
pub fn set_manual_tag(store: &dyn CreativeStore, creative: &str, name: &str, value: &str) -> Result<(), ServiceError> {
    if store.creative(creative)?.is_none() {
        return Err(ServiceError::UnknownCreative(creative.to_owned()));
    }
    let mut tags = BTreeMap::new();
    tags.insert(name.to_owned(), Tag::manual(value));
    store.put_tags(creative, &tags)?;
    Ok(())
}

/// The analysis over what the store holds, in the options' window.
pub fn analyze(store: &dyn CreativeStore, options: &Options) -> Result<Report, ServiceError> {
    let (creatives, totals, unknown) = creatives_and_totals(store, options.from, options.to)?;
    Ok(Report { unknown_creatives: unknown, ..analyze_totals(&creatives, &totals, options) })
}

/// Everything the store holds, with each creative's sums over a window, and how many creatives the performance
/// rows name that are not known.
fn creatives_and_totals(
    store: &dyn CreativeStore,
    from: Option<tutti_core::creative::Date>,
    to: Option<tutti_core::creative::Date>,
) -> Result<(Vec<Creative>, Vec<Totals>, usize), ServiceError> {
    let creatives = store.creatives()?;
    let mut sums = store.totals(from, to)?;
    let totals = creatives.iter().map(|c| sums.remove(&c.id).unwrap_or_default()).collect();
    Ok((creatives, totals, sums.len()))
}

/// What changed since the last time alerts were asked for (the first time: every call standing now). The
/// report they were computed from is kept for next time.
pub fn alerts(store: &dyn CreativeStore, options: &Options) -> Result<Vec<crate::alerts::Alert>, ServiceError> {
    const SNAPSHOT: &str = "alerts";
    let now = analyze(store, options)?;
    let before: Report = match store.snapshot(SNAPSHOT)? {
        Some(json) => serde_json::from_str(&json).unwrap_or_else(|_| Report::empty(options)),
        None => Report::empty(options),
    };
    let found = crate::alerts::alerts(&before, &now);
    let json = serde_json::to_string(&now).map_err(|e| ServiceError::Invalid(e.to_string()))?;
    store.put_snapshot(SNAPSHOT, &json)?;
    Ok(found)
}

/// A creative not yet launched: its tags, given, or read from its text by the local tagger.
pub fn predict(
    store: &dyn CreativeStore,
    tagger: &LocalTagger,
    channel: &str,
    tags: BTreeMap<String, String>,
    text: Option<tutti_ai::Text<'_>>,
    options: &Options,
) -> Result<crate::predict::Prediction, ServiceError> {
    let mut tags = tags;
    if let Some(text) = text {
        for d in tagger.tag(text) {
            if d.name != "language" && d.name != "length" {
                tags.entry(d.name).or_insert(d.value);
            }
        }
    }
    if tags.is_empty() {
        return Err(ServiceError::Invalid("give tags, or text to tag".to_owned()));
    }
    let (creatives, totals, _) = creatives_and_totals(store, options.from, options.to)?;
    crate::predict::predict(&creatives, &totals, channel, &tags, options)
        .ok_or_else(|| ServiceError::Invalid(format!("no performance data for our creatives on `{channel}`")))
}

/// A budget split proposed for approval.
pub fn budget(
    store: &dyn CreativeStore,
    options: &crate::budget::BudgetOptions,
    window: &Options,
) -> Result<crate::budget::BudgetProposal, ServiceError> {
    let (creatives, totals, _) = creatives_and_totals(store, window.from, window.to)?;
    crate::budget::propose_budget(&creatives, &totals, options).map_err(ServiceError::Invalid)
}

/// Trait shares by owner and month.
pub fn competitors(store: &dyn CreativeStore) -> Result<Vec<crate::competitors::TraitView>, ServiceError> {
    Ok(crate::competitors::competitor_view(&store.creatives()?))
}
