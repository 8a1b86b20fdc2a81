//! What served an app: its deploys and rollbacks, and the artifacts live at a time.

use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;

use evidence_schemas::{ArtifactKind, ArtifactRef, Env};
use serde::{Deserialize, Serialize};

use super::{Cite, Via};

/// An artifact serving an app, and the entry that put it there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LiveArtifact {
    /// The artifact.
    pub artifact: ArtifactRef,
    /// The deploy or rollback entry.
    #[serde(flatten)]
    pub cite: Cite,
    /// How it went live.
    pub via: Via,
}

/// Every deploy and rollback of one app in one env, in event-time order. What serves the app
/// at a time is one artifact per (kind, name): the one the latest move at or before that time
/// named; a deploy leaves the slots it does not name alone.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LiveHistory {
    /// The app.
    pub app: String,
    /// The env.
    pub env: Env,
    /// The moves, in event-time order (ties by sequence number).
    moves: Vec<LiveMove>,
    /// Derived from `moves`, never stored: for each slot, where it is first named (the move's
    /// index and the artifact's), ascending. It says which slots are live at a time, so that
    /// a lookup reads back only as far as it must.
    #[serde(skip)]
    firsts: OnceLock<Vec<(usize, usize)>>,
}

impl PartialEq for LiveHistory {
    fn eq(&self, other: &Self) -> bool {
        (&self.app, &self.env, &self.moves) == (&other.app, &other.env, &other.moves)
    }
}

/// One deploy or rollback.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LiveMove {
    /// Its entry.
    #[serde(flatten)]
    pub cite: Cite,
    /// Deploy or rollback.
    pub via: Via,
    /// The artifacts it put live.
    pub artifacts: Vec<ArtifactRef>,
}

/// A slot: an artifact's kind and name.
type Slot<'a> = (ArtifactKind, &'a str);

impl LiveHistory {
    /// No moves yet.
    pub fn new(app: &str, env: &Env) -> Self {
        LiveHistory { app: app.to_string(), env: env.clone(), moves: Vec::new(), firsts: OnceLock::new() }
    }

    /// The moves, in event-time order (ties by sequence number).
    pub fn moves(&self) -> &[LiveMove] {
        &self.moves
    }

    /// The same history without the move of entry `seq`.
    pub fn without(&self, seq: u64) -> Self {
        let moves = self.moves.iter().filter(|m| m.cite.seq != seq).cloned().collect();
        LiveHistory { moves, ..LiveHistory::new(&self.app, &self.env) }
    }

    /// Records a move, in event-time order (ties by sequence number).
    pub fn record(&mut self, m: LiveMove) {
        let i = self.moves.partition_point(|x| (x.cite.at, x.cite.seq) <= (m.cite.at, m.cite.seq));
        self.moves.insert(i, m);
        self.firsts = OnceLock::new();
    }

    /// What served the app at event time `t`: `kind/name` → the artifact, with its move.
    /// Two moves at the same time naming one slot: the greater digest stands, whatever
    /// arrived first (equal digests: the later entry).
    ///
    /// The moves are read back from `t`, and only until every slot named by then is found
    /// and no earlier move can tie with one.
    pub fn slots_at(&self, t: i64) -> BTreeMap<String, LiveArtifact> {
        let until = self.until(t);
        let named = self.firsts().partition_point(|&(i, _)| i < until);
        let mut found: BTreeMap<Slot<'_>, (&ArtifactRef, &LiveMove)> = BTreeMap::new();
        // The event time of the move that found the last new slot: every found slot's move
        // is at that time or later.
        let mut lowest = i64::MAX;
        for m in self.moves[..until].iter().rev() {
            if found.len() == named && m.cite.at < lowest {
                break;
            }
            for a in m.artifacts.iter().rev() {
                match found.get_mut(&(a.kind, a.name.as_str())) {
                    None => {
                        found.insert((a.kind, &a.name), (a, m));
                        lowest = m.cite.at;
                    }
                    Some(f) if f.1.cite.at == m.cite.at && a.digest > f.0.digest => *f = (a, m),
                    Some(_) => {}
                }
            }
        }
        found.into_iter().map(|((kind, name), (a, m))| (format!("{}/{name}", kind.as_str()), live(a, m))).collect()
    }

    /// What served slot `kind/name` at event time `t`, as [`LiveHistory::slots_at`] has it:
    /// the moves are read back from `t` only to the last that named it.
    pub fn slot_at(&self, t: i64, kind: ArtifactKind, name: &str) -> Option<LiveArtifact> {
        let until = self.until(t);
        if !self.named_before(until).any(|a| a.kind == kind && a.name == name) {
            return None;
        }
        let mut found: Option<(&ArtifactRef, &LiveMove)> = None;
        for m in self.moves[..until].iter().rev() {
            if found.is_some_and(|f| m.cite.at < f.1.cite.at) {
                break;
            }
            for a in m.artifacts.iter().rev().filter(|a| a.kind == kind && a.name == name) {
                match found {
                    Some(f) if a.digest <= f.0.digest => {}
                    _ => found = Some((a, m)),
                }
            }
        }
        found.map(|(a, m)| live(a, m))
    }

    /// The slots named by the moves at or before event time `t` (every one of them is live
    /// then): for each, the first artifact that named it.
    pub fn named_by(&self, t: i64) -> impl Iterator<Item = &ArtifactRef> {
        self.named_before(self.until(t))
    }

    /// The slots named by the first `until` moves.
    fn named_before(&self, until: usize) -> impl Iterator<Item = &ArtifactRef> {
        self.firsts().iter().take_while(move |&&(i, _)| i < until).map(|&(i, j)| &self.moves[i].artifacts[j])
    }

    /// The number of moves at or before event time `t`.
    fn until(&self, t: i64) -> usize {
        self.moves.partition_point(|m| m.cite.at <= t)
    }

    /// For each slot, where it is first named: (the move's index, the artifact's), ascending.
    fn firsts(&self) -> &[(usize, usize)] {
        self.firsts.get_or_init(|| {
            let mut seen: HashSet<Slot<'_>> = HashSet::new();
            let mut firsts = Vec::new();
            for (i, m) in self.moves.iter().enumerate() {
                for (j, a) in m.artifacts.iter().enumerate() {
                    if seen.insert((a.kind, &a.name)) {
                        firsts.push((i, j));
                    }
                }
            }
            firsts
        })
    }
}

/// `a`, live through move `m`.
fn live(a: &ArtifactRef, m: &LiveMove) -> LiveArtifact {
    LiveArtifact { artifact: a.clone(), cite: m.cite.clone(), via: m.via }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use evidence_schemas::Digest;
    use proptest::prelude::*;

    use super::*;

    /// What served the app at `t`, read forward through every move up to `t`: the
    /// definition `slots_at` keeps.
    fn forward(h: &LiveHistory, t: i64) -> BTreeMap<String, LiveArtifact> {
        let mut slots: BTreeMap<String, LiveArtifact> = BTreeMap::new();
        for m in h.moves().iter().take_while(|m| m.cite.at <= t) {
            for a in &m.artifacts {
                let slot = format!("{}/{}", a.kind.as_str(), a.name);
                let tie = slots.get(&slot).is_some_and(|s| s.cite.at == m.cite.at && s.artifact.digest > a.digest);
                if !tie {
                    slots.insert(slot, LiveArtifact { artifact: a.clone(), cite: m.cite.clone(), via: m.via });
                }
            }
        }
        slots
    }

    fn artifact(kind: u8, name: u8, digest: u8) -> ArtifactRef {
        let kind = [ArtifactKind::Model, ArtifactKind::Prompt][usize::from(kind % 2)];
        ArtifactRef {
            kind,
            name: format!("n{}", name % 3),
            version: "1".into(),
            digest: Digest(format!("sha256:{:064x}", digest % 4)),
        }
    }

    proptest! {
        /// Few slots, few digests and few distinct times, so that ties, slots first named
        /// late and moves recorded out of order all come up.
        #[test]
        fn slots_at_is_the_latest_move_per_slot_read_forward(
            moves in prop::collection::vec((0i64..6, prop::collection::vec((0u8..2, 0u8..3, 0u8..4), 1..4)), 0..12),
            times in prop::collection::vec(-1i64..7, 1..8),
        ) {
            let mut h = LiveHistory::new("app", &Env("prod".into()));
            for (seq, (at, artifacts)) in moves.iter().enumerate() {
                let cite = Cite { seq: seq as u64, time: String::new(), at: *at, actor: None };
                let artifacts = artifacts.iter().map(|&(k, n, d)| artifact(k, n, d)).collect();
                h.record(LiveMove { cite, via: Via::Deploy, artifacts });
                let without = h.without(seq as u64 / 2);
                for &t in &times {
                    let all = forward(&h, t);
                    prop_assert_eq!(&h.slots_at(t), &all);
                    prop_assert_eq!(without.slots_at(t), forward(&without, t));
                    let named: Vec<String> = h.named_by(t).map(|a| format!("{}/{}", a.kind.as_str(), a.name)).collect();
                    prop_assert_eq!(named.iter().collect::<BTreeSet<_>>(), all.keys().collect::<BTreeSet<_>>());
                    for (kind, name) in [(ArtifactKind::Model, "n0"), (ArtifactKind::Prompt, "n2"), (ArtifactKind::Model, "n9")] {
                        let slot = format!("{}/{name}", kind.as_str());
                        prop_assert_eq!(h.slot_at(t, kind, name), all.get(&slot).cloned());
                    }
                }
            }
        }
    }
}
