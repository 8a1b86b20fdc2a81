//! Everything needed to *check* Evidence Ledger evidence and nothing needed to produce it:
//! RFC 6962 Merkle hashing and proof verification ([`merkle`]), C2SP signed notes
//! ([`note`]) and checkpoints ([`checkpoint`]), witness cosignatures ([`cosignature`]), C2SP
//! tlog-proof files ([`tlog_proof`]), the entry format and hash chain ([`entry`]), and the
//! audit of a whole log ([`audit`]), and export bundles ([`bundle`]).
//!
//! The checking modules do no I/O and need no runtime; they depend on hashing, signature and
//! encoding crates only, so that an auditor can read them in an afternoon. The ledger uses the
//! same hashing and formats, and both are held to public test vectors. The `cli` feature adds
//! the `evidence-verify` binary and [`store`], its read-only adapter for a stopped ledger
//! directory; it is the only place that touches a disk.
#![deny(missing_docs)]

pub mod audit;
pub mod bundle;
#[cfg(feature = "cli")]
pub mod bundle_files;
pub mod checkpoint;
pub mod cosignature;
pub mod entry;
pub mod layout;
pub mod merkle;
pub mod note;
#[cfg(feature = "cli")]
pub mod store;
pub mod tlog_proof;

pub use audit::{AuditError, AuditReport, Auditor};
pub use checkpoint::Checkpoint;
pub use merkle::Hash;
pub use note::{SignerKey, VerifierKey};
