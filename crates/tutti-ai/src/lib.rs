//! Tutti's AI layer: the text toolkit every AI task shares (normalisation, language detection, tokens for
//! Vietnamese, Chinese and English), the local creative tagger, the model providers, generation and the review
//! gate.

pub mod embed;
pub mod generate;
pub mod lexicon;
pub mod provider;
pub mod review;
pub mod sentiment;
pub mod sms;
mod softmax;
pub mod tagger;
pub mod tagger_model;
pub mod text;
pub mod topics;

pub use tagger::{LocalTagger, Taxonomy, Text, TraitDecision};
pub use text::Language;
