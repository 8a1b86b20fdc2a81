//! The Evidence Ledger: the tamper-evident log on sled ([`log`], [`tree`], behind the
//! [`storage`] boundary), its signing keys ([`keys`]), the views and rules that follow it
//! ([`views`], [`rules`], [`policy`], wired to the log by [`ledger`]), the audit questions
//! ([`query`]) and the `evidence` binary.
//!
//! One writer appends; everything else is derived from the log. Hashing and formats come from
//! `evidence-verifier`, so that what the ledger writes is what the auditor's verifier checks.
#![deny(missing_docs)]

pub mod filter;
mod index;
pub mod keys;
pub mod ledger;
pub mod log;
pub mod policy;
pub mod query;
pub mod rules;
pub mod serve;
pub mod storage;
pub mod tree;
pub mod views;

pub use ledger::Ledger;
pub use log::{CheckpointPolicy, Log, LogError, Status};
pub use rules::Alert;
pub use storage::{MemStorage, SledStorage, Storage};
