//! Conversations between customers and reps (calls, chats, meetings): imported, kept apart from events, and
//! mined for what customers ask and object to, how often, how that moves week to week, and which replies come
//! before a sale.

pub mod events;
pub mod import;
pub mod mine;
pub mod model;
pub mod playbook;
pub mod service;
pub mod settings;
pub mod store;
pub mod synth;

pub use model::{Conversation, Outcome, Role, Turn};
