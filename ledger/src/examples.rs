//! The example scenarios of `examples/scenarios/`, embedded: one list that the demo ingests
//! and the golden tests check, so that neither can miss a scenario (the golden test also
//! checks that the directory holds exactly these files). `examples/README.md` describes each.

/// Each scenario's name (its file stem) and NDJSON text, in the order the demo ingests them.
pub const SCENARIOS: [(&str, &str); 13] = [
    ("seed-support-assistant", include_str!("../../examples/scenarios/seed-support-assistant.ndjson")),
    ("clean-release", include_str!("../../examples/scenarios/clean-release.ndjson")),
    ("gate-skipped", include_str!("../../examples/scenarios/gate-skipped.ndjson")),
    ("gate-failed", include_str!("../../examples/scenarios/gate-failed.ndjson")),
    ("approval-missing", include_str!("../../examples/scenarios/approval-missing.ndjson")),
    ("approval-self", include_str!("../../examples/scenarios/approval-self.ndjson")),
    ("artifact-substituted", include_str!("../../examples/scenarios/artifact-substituted.ndjson")),
    ("artifact-unsigned", include_str!("../../examples/scenarios/artifact-unsigned.ndjson")),
    ("artifact-unsafe-format", include_str!("../../examples/scenarios/artifact-unsafe-format.ndjson")),
    ("routing-unapproved", include_str!("../../examples/scenarios/routing-unapproved.ndjson")),
    ("prompt-ungated", include_str!("../../examples/scenarios/prompt-ungated.ndjson")),
    ("feedback-unvetted", include_str!("../../examples/scenarios/feedback-unvetted.ndjson")),
    ("drift-behavior", include_str!("../../examples/scenarios/drift-behavior.ndjson")),
];

/// `examples/bad-lines.ndjson`: malformed input the demo shows being quarantined.
pub const BAD_LINES: &str = include_str!("../../examples/bad-lines.ndjson");
