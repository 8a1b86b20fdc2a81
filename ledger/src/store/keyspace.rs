//! The key space: every key prefix the ledger writes, in one table, so that no two owners can
//! collide. All keys live in one sled tree (one atomic batch can then write entries, index,
//! positions and counters together). Each owner builds its keys from the constants here; the
//! formats of the keys and values are documented with their owner.
//!
//! | prefix | owner | what |
//! | --- | --- | --- |
//! | `e` + first seq | [`crate::log`] (format: `evidence_verifier::layout`) | entry segments (in sled: where each is in the entries file) |
//! | `c` + tree size | [`crate::log`] (format: `evidence_verifier::layout`) | signed checkpoints (in sled: where each is in the entries file) |
//! | `n` + level + tile | `log::tree` | Merkle node tiles (a full one, in sled: where it is in the entries file) |
//! | `J` + start + end | `log::runs` | the `(source, id)` index: a run of `(hash, seq)` pairs of the entries `[start, end)` (its record: the chunks' first hashes) |
//! | `j` + start + end + chunk | `log::runs` | the `(source, id)` index: a run's chunk of 256 pairs |
//! | `i` + source + id | none | the `(source, id)` index of stores written before the runs: deleted on open |
//! | `q` + number | `log::quarantine` | quarantine records |
//! | `Q` + digest | `log::quarantine` | quarantine numbers by content (each bad record once) |
//! | `p` + source | [`crate::log`] | source positions (next offsets) |
//! | `g` + source | [`crate::log`] | offsets each source skipped (gaps, u64 BE, cumulative) |
//! | `m` + name | [`crate::log`], `log::index` | metadata: [`META_ORIGIN`], [`META_COUNTERS`], [`META_DEAD_LETTERS`], [`META_INDEXED`], [`META_INDEX_KEY`], [`META_ID_FILTER`], [`META_KEYS`], [`META_DAMAGED`]; `store` (the sled engine): [`META_ENTRIES_END`] |
//! | `v` + table | [`crate::governance`] (read by [`crate::query`]) | views, alerts and their watermark: the tables `VIEW_*` |
//! | `a` + number | `governance::outbox` (read by the SIEM sinks) | the alert outbox: every opening, update and resolution of an alert, in order |
//! | `d` + sink name | `governance::outbox` (written by each SIEM sink) | each sink's cursor in the outbox |
//! | `w` + tree size + witness | `log::cosigned` (written by the witness submitter) | witness cosignature lines of the checkpoint at that size |
//!
//! The test at the bottom checks that the prefixes, the metadata names and the view tables are
//! each distinct.

/// Entry segments (shared with the verifier).
pub const ENTRY: u8 = evidence_verifier::layout::ENTRY;
/// Signed checkpoints (shared with the verifier).
pub const CHECKPOINT: u8 = evidence_verifier::layout::CHECKPOINT;
/// Merkle node tiles (shared with the verifier, which passes over them in the entries file).
pub const NODE: u8 = evidence_verifier::layout::TILE;
/// The bytes of a full tile (64 hashes of 32 bytes): never rewritten once written, so the sled
/// engine keeps it in the entries file (`store::filed`).
pub const FULL_TILE_BYTES: usize = 64 * 32;
/// The `(source, id)` index of stores written before the runs (one key per event): deleted
/// on open, the index rebuilt from the entries.
pub const LEGACY_INDEX: u8 = b'i';
/// The `(source, id)` index's runs (their records).
pub const INDEX_RUN: u8 = b'J';
/// The `(source, id)` index's chunks of runs.
pub const INDEX_CHUNK: u8 = b'j';
/// Quarantine records by number.
pub const QUARANTINE: u8 = b'q';
/// Quarantine numbers by content digest.
pub const QUARANTINE_SEEN: u8 = b'Q';
/// Source positions.
pub const POSITION: u8 = b'p';
/// Offsets skipped per source.
pub const GAP: u8 = b'g';
/// Metadata.
pub const META: u8 = b'm';
/// Views and alerts.
pub const VIEWS: u8 = b'v';
/// The alert outbox.
pub const ALERT_CHANGES: u8 = b'a';
/// The SIEM sinks' cursors in the outbox.
pub const SINK_CURSORS: u8 = b'd';

/// Witness cosignatures of checkpoints.
pub const COSIGNATURE: u8 = b'w';

/// Every top-level prefix.
pub const PREFIXES: [u8; 15] = [
    ENTRY,
    CHECKPOINT,
    NODE,
    LEGACY_INDEX,
    INDEX_RUN,
    INDEX_CHUNK,
    QUARANTINE,
    QUARANTINE_SEEN,
    POSITION,
    GAP,
    META,
    VIEWS,
    ALERT_CHANGES,
    SINK_CURSORS,
    COSIGNATURE,
];

/// The log's origin (its name in checkpoints).
pub const META_ORIGIN: &[u8] = b"morigin";
/// The log's running counters (JSON).
pub const META_COUNTERS: &[u8] = b"mcounters";
/// The dead-letter outbox cursor (u64 BE).
pub const META_DEAD_LETTERS: &[u8] = b"mdeadletters";
/// Entries the stored `(source, id)` index covers (u64 BE).
pub const META_INDEXED: &[u8] = b"mindexed";
/// The key of the `(source, id)` index's hash (32 bytes): the runs hold hashes made with it.
pub const META_INDEX_KEY: &[u8] = b"mindexkey";
/// Where stores written before the index's runs kept its Bloom filter: deleted when such a
/// store is re-indexed (the filter is now kept in a file, `log::reindex`).
pub const META_ID_FILTER: &[u8] = b"midfilter";

/// The verifier keys the log has signed with, oldest first (JSON array).
pub const META_KEYS: &[u8] = b"mkeys";

/// The first damaged entry a read met (JSON `[seq, problem]`): appends stop while it is there.
pub const META_DAMAGED: &[u8] = b"mdamaged";
/// The committed end of the entries file, in bytes (u64 BE): the sled engine keeps entry
/// segments and checkpoints in a file beside the database (`store::filed`).
pub const META_ENTRIES_END: &[u8] = b"mentriesend";

/// Every metadata key.
pub const METAS: [&[u8]; 9] = [
    META_ORIGIN,
    META_COUNTERS,
    META_DEAD_LETTERS,
    META_INDEXED,
    META_INDEX_KEY,
    META_ID_FILTER,
    META_KEYS,
    META_DAMAGED,
    META_ENTRIES_END,
];

/// View table: the views' watermark.
pub const VIEW_WATERMARK: u8 = b'm';
/// View table: the policy in force.
pub const VIEW_POLICY: u8 = b'p';
/// View table: artifacts.
pub const VIEW_ARTIFACTS: u8 = b'a';
/// View table: gate state per digest and gate.
pub const VIEW_GATES: u8 = b'g';
/// View table: every gate run (history).
pub const VIEW_GATE_RUNS: u8 = b'G';
/// View table: served-request counters.
pub const VIEW_SERVED: u8 = b's';
/// View table: live sets per (app, env).
pub const VIEW_LIVE: u8 = b'l';
/// View table: provider routes.
pub const VIEW_ROUTES: u8 = b'r';
/// View table: feedback batches.
pub const VIEW_BATCHES: u8 = b'b';
/// View table: training jobs.
pub const VIEW_JOBS: u8 = b'j';
/// View table: drift windows.
pub const VIEW_WINDOWS: u8 = b'w';
/// View table: traffic summaries per (app, env, route, prompt or model).
pub const VIEW_TRAFFIC: u8 = b't';
/// View table: the fold snapshots of traffic rungs.
pub const VIEW_RUNGS: u8 = b'u';
/// View table: the open alerts, by violation.
pub const VIEW_OPEN: u8 = b'o';
/// View table: the views' format version.
pub const VIEW_FORMAT: u8 = b'f';
/// View table: policy versions (history).
pub const VIEW_POLICIES: u8 = b'P';
/// View table: alerts (history).
pub const VIEW_ALERTS: u8 = b'A';
/// View table: gateway requests counted by event-time bucket and group.
pub const VIEW_REQUESTS: u8 = b'q';
/// View table: the requests that break the approved routes, by event time (history).
pub const VIEW_BREACHES: u8 = b'Q';

/// Every view table.
pub const VIEW_TABLES: [u8; 19] = [
    VIEW_WATERMARK,
    VIEW_POLICY,
    VIEW_ARTIFACTS,
    VIEW_GATES,
    VIEW_GATE_RUNS,
    VIEW_SERVED,
    VIEW_LIVE,
    VIEW_ROUTES,
    VIEW_BATCHES,
    VIEW_JOBS,
    VIEW_WINDOWS,
    VIEW_TRAFFIC,
    VIEW_RUNGS,
    VIEW_OPEN,
    VIEW_FORMAT,
    VIEW_POLICIES,
    VIEW_ALERTS,
    VIEW_REQUESTS,
    VIEW_BREACHES,
];

/// The end of the key range that starts with the one-byte `prefix`.
pub fn prefix_end(prefix: u8) -> [u8; 1] {
    [prefix + 1]
}

/// The first key after every key that starts with `prefix` (`None`: no such key, the prefix
/// is all `0xff`).
pub fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// `prefix` followed by `rest`.
pub fn prefixed(prefix: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + rest.len());
    k.push(prefix);
    k.extend_from_slice(rest);
    k
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn prefixes_metadata_names_and_view_tables_are_distinct() {
        assert_eq!(PREFIXES.iter().collect::<HashSet<_>>().len(), PREFIXES.len(), "prefixes");
        assert_eq!(METAS.iter().collect::<HashSet<_>>().len(), METAS.len(), "metadata names");
        assert!(METAS.iter().all(|m| m[0] == META), "metadata names start with the metadata prefix");
        assert_eq!(VIEW_TABLES.iter().collect::<HashSet<_>>().len(), VIEW_TABLES.len(), "view tables");
    }

    #[test]
    fn successor_bounds_exactly_the_keys_with_the_prefix() {
        assert_eq!(successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(successor(&[1, 0xff, 0xff]), Some(vec![2]));
        assert_eq!(successor(&[0xff]), None);
        let end = successor(&[7, 0xfe]).unwrap();
        assert!([7u8, 0xfe, 0xff, 0xff].as_slice() < end.as_slice());
        assert!([7u8, 0xff].as_slice() >= end.as_slice());
    }
}
