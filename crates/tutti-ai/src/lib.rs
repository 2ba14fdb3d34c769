//! Tutti's AI layer. Today: the text toolkit every AI task shares (normalisation, language detection, tokens for
//! Vietnamese, Chinese and English) and the local creative tagger. The providers, generation and review gate of
//! issue #5 join it here.

pub mod embed;
pub mod generate;
pub mod lexicon;
pub mod provider;
pub mod review;
pub mod sentiment;
pub mod tagger;
pub mod text;
pub mod topics;

pub use tagger::{Decision, LocalTagger, Taxonomy, Text};
pub use text::Language;
