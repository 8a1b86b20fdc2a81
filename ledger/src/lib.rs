//! The Evidence Ledger: the tamper-evident log and what follows it.
//!
//! The house, by concern (each module's `//!` says what it owns and what it may not touch):
//! - [`store`]: the storage boundary (sled and in-memory engines) and the one key-space table.
//! - [`log`]: the append-only log: entries, chain, Merkle tiles, the `(source, id)` index,
//!   quarantine, checkpoints, proofs, the self-audit.
//! - [`governance`]: the view model, the eleven rules, alerts, policy, and the projection.
//! - [`query`]: the audit questions and the retraining gate, read from the views.
//! - [`ledger`]: [`Ledger`], the log with its views: the one way to append once views exist;
//!   opening a ledger directory, ingest with a report, policy publication.
//! - [`service`]: `evidence serve`, the long-running intake.
//! - [`keys`] (signer key files), [`examples`] and [`demo`], [`error`] (failure kinds),
//!   [`text`] (producer strings made safe for a terminal).
//!
//! Dependencies run one way: `store` ← `log` ← `governance` ← `query` ← `ledger` ←
//! `service`, `demo`; the binary (`src/bin/evidence`) only parses and dispatches. Hashing and
//! formats come from `evidence-verifier`, so that what the ledger writes is what the
//! auditor's verifier checks.
#![deny(missing_docs)]

pub mod demo;
pub mod error;
pub mod examples;
pub mod export;
pub mod governance;
pub mod keys;
pub mod ledger;
pub mod log;
pub mod query;
pub mod service;
pub mod store;
pub mod text;
pub mod trust;
pub mod when;
pub mod witness;

pub use error::ErrorKind;
pub use governance::{Alert, Rule};
pub use ledger::Ledger;
pub use log::{CheckpointPolicy, Log, LogError, Status};
pub use store::{MemStorage, SledStorage, Storage};
