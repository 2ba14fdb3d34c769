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
    let creatives = store.creatives()?;
    let mut sums = store.totals(options.from, options.to)?;
    let totals: Vec<Totals> = creatives.iter().map(|c| sums.remove(&c.id).unwrap_or_default()).collect();
    let mut report = analyze_totals(&creatives, &totals, options);
    report.unknown_creatives = sums.len();
    Ok(report)
}
