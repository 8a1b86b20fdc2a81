//! Governance: what the ledger concludes from its entries. The view model ([`model`], and
//! [`State`], the read-only state the rules see; [`asof`], evidence as it stood at an event
//! time), the eleven rules ([`rules`], one file per rule; its module docs give the semantics:
//! event time, late evidence, the lifecycle of an alert, folding), the [`Alert`]s they raise,
//! the open alerts and their lifecycle (`lifecycle`), traffic summaries and re-judging
//! (`traffic`), the requests counted by time for audit question 3 ([`requests`]), the
//! [`policy`] in force, and the projection ([`Views`]) that applies each
//! entry (`apply`) and judges what it may change. The views' keys are in [`keys`]. The
//! [`outbox`] numbers every change in an alert's life for the SIEM sinks.
//!
//! Dependencies run one way: `model` ← `asof`, `state` ← `rules` ← `traffic`, `lifecycle`,
//! `apply` ← `projection`. The rules read `&State` and return alerts; only the projection
//! writes. Nothing here appends to the log or reads the clock; everything here can be rebuilt
//! from the log.

pub mod alert;
mod apply;
pub mod asof;
mod codec;
mod error;
pub mod keys;
mod lifecycle;
pub mod model;
pub mod outbox;
pub mod policy;
mod projection;
pub mod requests;
pub mod rules;
mod state;
mod traffic;

pub use self::alert::{Alert, Fold, Rule, Severity, Status, UnknownRule};
pub use self::codec::{decode, read, read_range};
pub use self::error::ViewError;
pub use self::projection::Views;
pub use self::rules::{History, NoHistory};
pub use self::state::State;
