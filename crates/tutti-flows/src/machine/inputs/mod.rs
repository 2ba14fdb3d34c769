//! The machine's inputs, one file per kind (see [`super::Input`]).

mod approval;
mod event;
mod reevaluate;
mod signal;
mod tick;
