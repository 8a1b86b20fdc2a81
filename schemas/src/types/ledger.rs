//! The ledger's own events: `ledger.key`. No producer may send them (the validator refuses
//! them from intake); the ledger appends them itself, so that what it did to its own record
//! is evidence in that record.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `ledger.key`: the ledger's checkpoint signer key was rotated. From this entry on,
/// checkpoints are signed with `verifier_key`; the checkpoint that first covers this entry is
/// signed by both keys, so an auditor who trusts `previous_key` can follow the rotation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LedgerKey {
    /// The new verifier key (C2SP signed-note form, `<origin>+<key id>+<base64>`).
    #[schemars(length(min = 1, max = 512))]
    pub verifier_key: String,
    /// The verifier key it replaces.
    #[schemars(length(min = 1, max = 512))]
    pub previous_key: String,
    /// Why the key was rotated, as the operator gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub reason: Option<String>,
}
