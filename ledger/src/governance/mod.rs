//! Governance: what the ledger concludes from its entries. The view model ([`model`], and
//! [`State`], the read-only state the rules see), the eleven rules ([`rules`], one file per
//! rule), the [`Alert`]s they raise, the [`policy`] in force, and the projection ([`Views`])
//! that runs the rules and applies each entry, in that order. The views' keys are in
//! [`keys`].
//!
//! Dependencies run one way: `model` ← `state` ← `rules` ← `projection`. The rules read
//! `&State` and return alerts; only the projection writes. Nothing here appends to the log
//! or reads the clock; everything here can be rebuilt from the log.

pub mod alert;
mod codec;
mod error;
pub mod keys;
pub mod model;
pub mod policy;
mod projection;
pub mod rules;
mod state;

pub use self::alert::{Alert, Rule, Severity, UnknownRule};
pub use self::codec::{decode, read, read_range};
pub use self::error::ViewError;
pub use self::projection::Views;
pub use self::state::State;
