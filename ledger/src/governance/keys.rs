//! The views' keys: every key under `v` (tables from [`crate::store::keyspace`]) is built
//! here, for the projection that writes them and the queries that read them.
//!
//! A key is `v`, the table byte, then each part length-prefixed: a u16 BE length and the
//! bytes, or, for a part of 65,535 bytes or more, `ff ff`, a u32 BE length and the bytes. The
//! encoding is prefix-free, so two different parts never give the same key, and a part is
//! never cut (the contract caps names far below this, but entries stored before the caps
//! existed may hold longer ones). History keys append event time and seq (u64 BE each).
//!
//! | key | value (JSON unless noted) | kind |
//! | --- | --- | --- |
//! | `vm` | watermark: the next sequence number to project (u64 BE) | meta |
//! | `vp` | the policy in force ([`PolicyInForce`](super::model::PolicyInForce)) | state |
//! | `va` kind name version | [`ArtifactView`](super::model::ArtifactView) | state |
//! | `vg` digest gate | [`GateView`](super::model::GateView): the latest and first passing run | state |
//! | `vs` kind name version | [`Served`](super::model::Served): requests served with the artifact | state |
//! | `vf` | the views' format ([`FORMAT`]): views of another format are rebuilt on open | meta |
//! | `vl` app env | [`LiveHistory`](super::model::LiveHistory): every deploy and rollback of `app` in `env` | state |
//! | `vr` provider model region | [`RouteHistory`](super::model::RouteHistory) | state |
//! | `vb` batch | [`BatchView`](super::model::BatchView) | state |
//! | `vj` job | [`JobView`](super::model::JobView) | state |
//! | `vw` app env model | [`Window`](super::model::Window): drift counters | state |
//! | `vt` kind app env name | [`TrafficSummary`](super::model::TrafficSummary): the requests of one route, prompt or model | state |
//! | `vu` traffic-key seq | the folds of a traffic key over its requests before `seq` (a rung: where re-judging may start), with their subjects | state |
//! | `vo` violation | where its open alert is stored: seq (u64 BE), n (u16 BE) | state |
//! | `vG` digest gate time seq | [`GateRun`](super::model::GateRun): every run of a gate, by event time | history |
//! | `vP` seq | [`PolicyVersion`](super::model::PolicyVersion) | history |
//! | `vq` level bucket env provider model region data_class | `[requests, breaches]`: the gateway requests of one group dated in one bucket (level `d`, `q`, `h`, `t` or `m`: a UTC day, quarter day, hour, ten minutes or minute; bucket: its start, s since the epoch, as [`order`] sorts it), and how many of them break the approved routes | history (counter) |
//! | `vQ` time seq | [`Breach`](super::requests::Breach): a request that breaks the approved routes on all the evidence (re-judging adds and removes them) | history |
//! | `vA` seq n (u16 BE) | the `n`th [`Alert`](super::alert::Alert) opened by entry `seq`: rewritten while it is open (folds count, a resolution closes it) | history |

use evidence_schemas::{ArtifactKind, Digest};

use crate::store::keyspace::{
    successor, VIEWS, VIEW_ALERTS, VIEW_ARTIFACTS, VIEW_BATCHES, VIEW_BREACHES, VIEW_FORMAT, VIEW_GATES,
    VIEW_GATE_RUNS, VIEW_JOBS, VIEW_LIVE, VIEW_OPEN, VIEW_POLICIES, VIEW_POLICY, VIEW_REQUESTS, VIEW_ROUTES,
    VIEW_RUNGS, VIEW_SERVED, VIEW_TRAFFIC, VIEW_WATERMARK, VIEW_WINDOWS,
};

/// The watermark's key.
pub const WATERMARK: &[u8] = &[VIEWS, VIEW_WATERMARK];
/// The policy in force's key.
pub const POLICY: &[u8] = &[VIEWS, VIEW_POLICY];
/// The views' format key.
pub const FORMAT_KEY: &[u8] = &[VIEWS, VIEW_FORMAT];
/// The views' format: views written by a ledger of another format are dropped and rebuilt
/// from the log when it opens. 2: alerts with a lifecycle, judged on event time (2026-12);
/// 3: requests counted by event time, and the index of those that break the routes.
pub const FORMAT: u32 = 3;

/// A view key: `v`, the table, then each part length-prefixed (see the module docs).
pub fn key(table: u8, parts: &[&[u8]]) -> Vec<u8> {
    // Sized once: every key of the views is built here, several per entry, and growing the
    // vector part by part was a measurable share of projecting a request.
    let len: usize = parts.iter().map(|p| p.len() + 6).sum::<usize>() + 2 + 16;
    let mut k = Vec::with_capacity(len);
    k.extend_from_slice(&[VIEWS, table]);
    for p in parts {
        match u16::try_from(p.len()) {
            Ok(len) if len < u16::MAX => k.extend_from_slice(&len.to_be_bytes()),
            _ => {
                let len = u32::try_from(p.len()).expect("a key part is under 4 GiB");
                k.extend_from_slice(&u16::MAX.to_be_bytes());
                k.extend_from_slice(&len.to_be_bytes());
            }
        }
        k.extend_from_slice(p);
    }
    k
}

/// The range of every key that starts with `prefix`.
fn range_of(prefix: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    let end = successor(&prefix).expect("view keys start with v");
    (prefix, end)
}

/// The range of every key of one table.
pub fn table(table: u8) -> (Vec<u8>, Vec<u8>) {
    range_of(vec![VIEWS, table])
}

/// The key of an artifact's view.
pub fn artifact(kind: ArtifactKind, name: &str, version: &str) -> Vec<u8> {
    key(VIEW_ARTIFACTS, &[kind.as_str().as_bytes(), name.as_bytes(), version.as_bytes()])
}

/// The key of the state of one gate on one digest.
pub fn gate(digest: &Digest, gate: &str) -> Vec<u8> {
    key(VIEW_GATES, &[digest.0.as_bytes(), gate.as_bytes()])
}

/// The range of every gate run on one digest.
pub fn gate_runs_of(digest: &Digest) -> (Vec<u8>, Vec<u8>) {
    range_of(key(VIEW_GATE_RUNS, &[digest.0.as_bytes()]))
}

/// The key of a gate run: by digest and gate, then event time and seq, so that the run in
/// force at time T is the last key at or before T.
pub fn gate_run(digest: &Digest, gate: &str, micros: i64, seq: u64) -> Vec<u8> {
    let mut k = key(VIEW_GATE_RUNS, &[digest.0.as_bytes(), gate.as_bytes()]);
    k.extend_from_slice(&order_micros(micros).to_be_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The range of the gate states of one digest (one key per gate that ran on it).
pub fn gates_of(digest: &Digest) -> (Vec<u8>, Vec<u8>) {
    range_of(key(VIEW_GATES, &[digest.0.as_bytes()]))
}

/// The key of an artifact's served-requests counter.
pub fn served(kind: ArtifactKind, name: &str, version: &str) -> Vec<u8> {
    key(VIEW_SERVED, &[kind.as_str().as_bytes(), name.as_bytes(), version.as_bytes()])
}

/// The key of what is live in `app` in `env`.
pub fn live(app: &str, env: &str) -> Vec<u8> {
    key(VIEW_LIVE, &[app.as_bytes(), env.as_bytes()])
}

/// The key of a provider route.
pub fn route(provider: &str, model: &str, region: &str) -> Vec<u8> {
    key(VIEW_ROUTES, &[provider.as_bytes(), model.as_bytes(), region.as_bytes()])
}

/// The key of a feedback batch.
pub fn batch(batch: &str) -> Vec<u8> {
    key(VIEW_BATCHES, &[batch.as_bytes()])
}

/// The key of a training job.
pub fn job(job: &str) -> Vec<u8> {
    key(VIEW_JOBS, &[job.as_bytes()])
}

/// The key of the drift window of one (app, env, model).
pub fn window(app: &str, env: &str, model: &str) -> Vec<u8> {
    key(VIEW_WINDOWS, &[app.as_bytes(), env.as_bytes(), model.as_bytes()])
}

/// The key of a traffic summary: `kind` (a byte), app, env and the route, prompt or model.
pub fn traffic(kind: u8, app: &str, env: &str, name: &str) -> Vec<u8> {
    key(VIEW_TRAFFIC, &[&[kind], app.as_bytes(), env.as_bytes(), name.as_bytes()])
}

/// The key of a rung's fold snapshot: the traffic summary's key, then the rung's seq.
pub fn rung(summary: &[u8], seq: u64) -> Vec<u8> {
    let mut k = key(VIEW_RUNGS, &[summary]);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The key of an open alert's violation.
pub fn open(violation: &str) -> Vec<u8> {
    key(VIEW_OPEN, &[violation.as_bytes()])
}

/// Event time (µs since the epoch, signed) as a u64 that sorts the same way.
fn order_micros(micros: i64) -> u64 {
    order(micros)
}

/// A signed time (µs or s since the epoch) as a u64 that sorts the same way.
pub fn order(t: i64) -> u64 {
    (t as u64) ^ (1 << 63)
}

/// The key of a request counter: the bucket's level and start (s), then the group's parts.
pub fn request_count(level: u8, bucket: i64, group: [&str; 5]) -> Vec<u8> {
    let start = order(bucket).to_be_bytes();
    let [a, b, c, d, e] = group.map(str::as_bytes);
    key(VIEW_REQUESTS, &[&[level], &start, a, b, c, d, e])
}

/// The first key of the counters of level `level` at bucket `bucket` (s): a range from one
/// bucket's first key to another's holds every group of the buckets between.
pub fn request_bucket(level: u8, bucket: i64) -> Vec<u8> {
    key(VIEW_REQUESTS, &[&[level], &order(bucket).to_be_bytes()])
}

/// The key of a request that breaks the approved routes: event time (µs), then seq.
pub fn breach(micros: i64, seq: u64) -> Vec<u8> {
    let mut k = vec![VIEWS, VIEW_BREACHES];
    k.extend_from_slice(&order_micros(micros).to_be_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The parts of a view key (after `v` and the table), as [`key`] wrote them; `None` when
/// `k` is not such a key.
pub fn parts(k: &[u8]) -> Option<Vec<&[u8]>> {
    parts_of(k.get(2..)?)
}

/// Length-prefixed parts, as [`key`] writes them after the table; `None` when `rest` is not
/// a whole number of them.
pub fn parts_of(mut rest: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    while !rest.is_empty() {
        let short = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
        let (len, skip) = if short < usize::from(u16::MAX) {
            (short, 2)
        } else {
            (usize::try_from(u32::from_be_bytes(rest.get(2..6)?.try_into().ok()?)).ok()?, 6)
        };
        out.push(rest.get(skip..skip + len)?);
        rest = &rest[skip + len..];
    }
    Some(out)
}

/// The key of the `n`th alert raised by entry `seq`.
pub fn alert(seq: u64, n: u16) -> Vec<u8> {
    let mut k = vec![VIEWS, VIEW_ALERTS];
    k.extend_from_slice(&seq.to_be_bytes());
    k.extend_from_slice(&n.to_be_bytes());
    k
}

/// The key of the policy version published by entry `seq`.
pub fn policy_version(seq: u64) -> Vec<u8> {
    let mut k = vec![VIEWS, VIEW_POLICIES];
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The range of the policy history keys.
pub fn policies() -> (Vec<u8>, Vec<u8>) {
    table(VIEW_POLICIES)
}

/// The range of all alert keys.
pub fn alerts() -> (Vec<u8>, Vec<u8>) {
    table(VIEW_ALERTS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_parts_are_never_cut_and_keys_never_collide() {
        let base = "b".repeat(70_000);
        let (a, b) = (format!("{base}1"), format!("{base}2"));
        assert_ne!(batch(&a), batch(&b), "two names that differ only past 65,535 bytes");
        assert!(batch(&a).ends_with(a.as_bytes()), "the whole name is in the key");
        // At the boundary: 65,534 bytes take the short length, 65,535 the long one.
        assert_eq!(batch(&"x".repeat(65_534)).len(), 2 + 2 + 65_534);
        assert_eq!(batch(&"x".repeat(65_535)).len(), 2 + 2 + 4 + 65_535);
        // Short keys keep the encoding they always had.
        assert_eq!(batch("fb-1"), [&b"vb"[..], &[0, 4], b"fb-1"].concat());
    }

    #[test]
    fn parts_read_back_what_key_wrote() {
        let long = "r".repeat(70_000);
        let k = request_count(b'h', -3600, ["prod", "openai", "gpt", &long, ""]);
        let parts = parts(&k).expect("a view key");
        assert_eq!(parts.len(), 7);
        assert_eq!(parts[0], b"h");
        assert_eq!(parts[1], order(-3600).to_be_bytes());
        assert_eq!(parts[5], long.as_bytes());
        assert_eq!(parts[6], b"");
        assert_eq!(super::parts(&k[..k.len() - 1]), None, "a cut key is not read as a shorter one");
        // Buckets sort by time, before and after the epoch, and a bucket's range holds its groups.
        assert!(request_bucket(b'h', -3600) < k && k < request_bucket(b'h', 0));
        assert!(request_bucket(b'h', 0) < request_bucket(b'h', 3600));
    }

    #[test]
    fn a_range_holds_every_key_with_its_prefix_even_long_ones() {
        let digest = Digest(format!("sha256:{}", "a".repeat(64)));
        let (from, to) = gate_runs_of(&digest);
        for gate_name in ["x".to_string(), "y".repeat(65_300), "z".repeat(70_000)] {
            let k = gate_run(&digest, &gate_name, 0, 1);
            assert!(from <= k && k < to, "gate name of {} bytes", gate_name.len());
        }
    }
}
