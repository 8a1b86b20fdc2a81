//! The Evidence Ledger event contract (`schemas/CONTRACT.md`): Rust types, the JSON Schema
//! documents generated from them, validation with precise errors, and RFC 8785 canonical JSON.
//!
//! This crate does no I/O: it turns bytes into a typed, canonical event or into a
//! [`Rejection`] that says exactly what is wrong. Sources (`evidence-ingest`) and the ledger
//! call it; producers use the JSON Schema files under `schemas/json/`.

pub mod canonical;
pub mod json;
pub mod sample;
pub mod schema;
pub mod types;
pub mod validate;

pub use types::*;
pub use validate::{parse_validated, Limits, Problem, Rejection, ValidEvent, Validator};
