//! The stored part of the `(source, id)` index: sorted runs of `(hash, seq)` pairs, one pair
//! per entry, where the hash is the index key's keyed hash ([`super::filter::IdFilter::hash`]).
//!
//! A run holds the pairs of the entries `[start, end)`, sorted by hash, in a file of its own
//! ([`Storage::write_file`]), in chunks of [`CHUNK`] pairs (4 KiB), followed by the first hash
//! of every chunk (the fences, u64 BE each); its record (a key, `J` + start + end) holds its
//! number of pairs and the BLAKE3 hash of the file. On open every run file is read and checked
//! against that hash (a run whose bytes changed would miss keys, and a redelivered event would
//! be appended twice; a damaged run is rebuilt instead), and its fences are kept in memory, so that finding a hash costs one
//! binary search in memory and one read of a chunk per run. The runs together cover the entries `[0, indexed)`
//! without overlap. A pair says only that entry `seq` may hold the key: the index reads the
//! entry back to be sure (a hash is 64 bits, so a match of another key is rare but possible).
//!
//! Why not one store key per index key, as before: on 10,000,000 entries those keys were 94% of
//! what sled held, its page table grew with them (about 240 MB of memory while the store was
//! open), and sled took 3.8 bytes of disk for each byte it held. A pair here costs 16 bytes.
//! Why files rather than chunks as keys: merging rewrites the runs, and sled kept the space of
//! the deleted chunks (an earlier version of this change grew a 10,000,000-entry store to 22 GB);
//! a deleted file gives its space back at once.
//!
//! - **Written** by the index's writer thread ([`Runs::write`]): the file (durable), then the
//!   run's record with the index watermark [`META_INDEXED`] in one atomic batch. A crash before
//!   that batch leaves a file of no run, which the next open deletes ([`Runs::load`]).
//! - **Merged** on a thread of its own ([`Runs::merge_due`]) whenever the newest [`FANIN`]
//!   runs are of one size tier, so that there are a few runs per tier (about 15 on 10,000,000
//!   entries) and each pair is rewritten about once per tier. The merged run's file is written
//!   first; one atomic batch then swaps the records; the old files are deleted once nothing
//!   reads them (a filter build holds the runs it reads).
//! - **Read** under a read lock that the swap takes for writing, so that a lookup sees either
//!   the old runs or the merged one, each whole.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::error::LogError;
use crate::store::keyspace::{prefix_end, INDEX_RUN, META_INDEXED};
use crate::store::{read_file_pieces, Storage, StorageError, StorageErrorKind, WriteBatch};

/// Pairs per chunk: 4 KiB.
const CHUNK: usize = 256;
/// Bytes per pair: hash and seq, u64 BE each.
const PAIR: usize = 16;
/// Bytes per chunk.
const CHUNK_BYTES: usize = CHUNK * PAIR;
/// Runs of one tier merged together.
const FANIN: usize = 4;
/// Chunks read at once when a run is read in order.
const READ_CHUNKS: usize = 64;
/// The smallest tier's size: runs of up to this many pairs are tier 0.
pub(crate) const RUN_ENTRIES: u64 = 1 << 16;
/// The start of a run file's name.
const RUN_FILE: &str = "run-";

/// One run: the pairs of the entries `[start, end)`, sorted by hash.
#[derive(Debug)]
pub(crate) struct Run {
    start: u64,
    end: u64,
    pairs: u64,
    /// The first hash of each chunk.
    fences: Vec<u64>,
    /// The BLAKE3 hash of its file.
    sum: [u8; 32],
}

impl Run {
    fn file(&self) -> String {
        format!("{RUN_FILE}{:020}-{:020}", self.start, self.end)
    }

    fn record_key(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(17);
        k.push(INDEX_RUN);
        k.extend_from_slice(&self.start.to_be_bytes());
        k.extend_from_slice(&self.end.to_be_bytes());
        k
    }

    /// Its record: its number of pairs (u64 BE) and the hash of its file.
    fn record(&self) -> Vec<u8> {
        [&self.pairs.to_be_bytes()[..], &self.sum].concat()
    }

    /// The fences as its file ends with them.
    fn fence_bytes(&self) -> Vec<u8> {
        self.fences.iter().flat_map(|f| f.to_be_bytes()).collect()
    }

    fn tier(&self) -> u32 {
        ((self.end - self.start).max(RUN_ENTRIES) / RUN_ENTRIES).ilog(FANIN as u64)
    }

    /// Chunks `[from, from + n)` (as many of them as there are), read at once.
    fn read<S: Storage>(&self, store: &S, from: usize, n: usize) -> Result<Vec<u8>, LogError> {
        let (offset, end) = ((from * CHUNK_BYTES) as u64, self.pairs * PAIR as u64);
        let len = end.saturating_sub(offset).min((n * CHUNK_BYTES) as u64) as usize;
        let bytes = store.read_file(&self.file(), offset, len)?;
        if bytes.len() != len || len == 0 {
            return Err(damaged(format!("{} is missing chunks", self.file())));
        }
        Ok(bytes)
    }

    /// Reads its file whole, checks it against its hash and keeps its fences; `None` if the
    /// file is not there, not of its size or not of its hash.
    fn load<S: Storage>(&mut self, store: &S) -> Result<Option<()>, LogError> {
        let chunks = self.pairs.div_ceil(CHUNK as u64) as usize;
        let (fences_at, len) = (self.pairs * PAIR as u64, self.pairs * PAIR as u64 + chunks as u64 * 8);
        let (file, mut hasher) = (self.file(), blake3::Hasher::new());
        let fences = &mut self.fences;
        let found = read_file_pieces(store, &file, |at, piece| {
            hasher.update(piece);
            // Pieces and the fences both start at multiples of 8 bytes: no fence is split.
            let from = fences_at.saturating_sub(at).min(piece.len() as u64) as usize;
            fences.extend(piece[from..].chunks_exact(8).map(be_u64));
        })?;
        if !found {
            return Ok(None);
        }
        let whole = hasher.count() == len && self.fences.len() == chunks;
        if !whole || *hasher.finalize().as_bytes() != self.sum {
            tracing::warn!(message = "An index run's file is not the one its record names; the index is rebuilt.", %file);
            return Ok(None);
        }
        Ok(Some(()))
    }
}

fn damaged(what: impl std::fmt::Display) -> LogError {
    LogError::Damaged(format!("the (source, id) index: {what}; delete the store's log/index directory to rebuild it"))
}

fn be_u64(bytes: &[u8]) -> u64 {
    u64::from_be_bytes(bytes.try_into().expect("8 bytes"))
}

/// The pairs of whole pairs' bytes.
fn pairs(bytes: &[u8]) -> impl Iterator<Item = (u64, u64)> + '_ {
    bytes.chunks_exact(PAIR).map(|p| (be_u64(&p[..8]), be_u64(&p[8..])))
}

/// Builds a run's chunks from pairs sorted by hash, noting its fences.
struct Chunker {
    run: Run,
    chunk: Vec<u8>,
}

impl Chunker {
    fn new(start: u64, end: u64) -> Self {
        let run = Run { start, end, pairs: 0, fences: Vec::new(), sum: [0; 32] };
        Chunker { run, chunk: Vec::with_capacity(CHUNK_BYTES) }
    }

    /// Adds a pair; returns the chunk it completes.
    fn push(&mut self, hash: u64, seq: u64) -> Option<Vec<u8>> {
        if self.chunk.is_empty() {
            self.run.fences.push(hash);
        }
        self.run.pairs += 1;
        self.chunk.extend_from_slice(&hash.to_be_bytes());
        self.chunk.extend_from_slice(&seq.to_be_bytes());
        (self.chunk.len() == CHUNK_BYTES).then(|| std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK_BYTES)))
    }

    /// The last chunk, if there is one.
    fn last(&mut self) -> Option<Vec<u8>> {
        (!self.chunk.is_empty()).then(|| std::mem::take(&mut self.chunk))
    }
}

/// The runs of the index (see the module docs).
#[derive(Default)]
pub(crate) struct Runs {
    /// Oldest first, contiguous from entry 0.
    list: RwLock<Vec<Arc<Run>>>,
    /// Runs merged away whose files are deleted once nothing else holds them.
    retired: Mutex<Vec<Arc<Run>>>,
}

impl Runs {
    /// The runs in `store`, with any run files of no run deleted. `None` when the records do
    /// not cover `[0, indexed)` exactly, or a run's file is missing or cut short: then the
    /// index is rebuilt.
    pub(crate) fn load<S: Storage>(store: &S, indexed: u64) -> Result<Option<Runs>, LogError> {
        let mut list = Vec::new();
        let mut next = 0;
        for item in store.range(&[INDEX_RUN], &prefix_end(INDEX_RUN)) {
            let (k, v) = item?;
            let (k, v) = (k.as_ref(), v.as_ref());
            let (Ok(key), Ok(record)) = (<[u8; 17]>::try_from(k), <[u8; 40]>::try_from(v)) else { return Ok(None) };
            let (start, end) = (be_u64(&key[1..9]), be_u64(&key[9..]));
            let (pairs, sum) = (be_u64(&record[..8]), record[8..].try_into().expect("32 bytes"));
            let mut run = Run { start, end, pairs, fences: Vec::new(), sum };
            if start != next || end <= start || run.pairs > end - start || run.load(store)?.is_none() {
                return Ok(None);
            }
            next = end;
            list.push(Arc::new(run));
        }
        if next != indexed {
            return Ok(None);
        }
        let names: HashSet<String> = store.file_names()?.into_iter().collect();
        let wanted: HashSet<String> = list.iter().map(|r| r.file()).collect();
        for stray in names.iter().filter(|n| n.starts_with(RUN_FILE) && !wanted.contains(*n)) {
            tracing::debug!(message = "Deleting an index run of no record.", file = %stray);
            store.remove_file(stray)?;
        }
        Ok(Some(Runs { list: RwLock::new(list), retired: Mutex::default() }))
    }

    /// Deletes every run (a rebuild from the entries follows).
    pub(crate) fn clear<S: Storage>(store: &S) -> Result<(), LogError> {
        let mut wb = WriteBatch::default();
        for item in store.range(&[INDEX_RUN], &prefix_end(INDEX_RUN)) {
            wb.delete(item?.0.as_ref());
        }
        if !wb.is_empty() {
            store.apply(wb)?;
        }
        for name in store.file_names()?.iter().filter(|n| n.starts_with(RUN_FILE)) {
            store.remove_file(name)?;
        }
        Ok(())
    }

    /// The entries the runs cover.
    pub(crate) fn end(&self) -> u64 {
        self.read().last().map_or(0, |r| r.end)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Run>>> {
        self.list.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_lock(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Arc<Run>>> {
        self.list.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every run, held: their files stay until the holder lets go.
    pub(crate) fn snapshot(&self) -> Vec<Arc<Run>> {
        self.read().clone()
    }

    /// Writes the pairs of the entries `[start, end)` as a new run, with the watermark `end`.
    pub(crate) fn write<S: Storage>(
        &self,
        store: &S,
        start: u64,
        end: u64,
        mut pairs: Vec<(u64, u64)>,
    ) -> Result<(), LogError> {
        debug_assert_eq!(start, self.end(), "runs are written in order");
        if start == end {
            return Ok(());
        }
        pairs.sort_unstable();
        let mut chunker = Chunker::new(start, end);
        let mut chunks: Vec<Vec<u8>> = pairs.into_iter().filter_map(|(hash, seq)| chunker.push(hash, seq)).collect();
        chunks.extend(chunker.last());
        let mut run = chunker.run;
        chunks.push(run.fence_bytes());
        let mut hasher = blake3::Hasher::new();
        for chunk in &chunks {
            hasher.update(chunk);
        }
        run.sum = *hasher.finalize().as_bytes();
        store.write_file(&run.file(), &mut chunks.into_iter().map(Ok))?;
        let mut wb = WriteBatch::default();
        wb.put(run.record_key(), run.record());
        wb.put(META_INDEXED, end.to_be_bytes());
        store.apply(wb)?;
        self.write_lock().push(Arc::new(run));
        Ok(())
    }

    /// The seqs of the entries whose key may have this hash, newest run first.
    pub(crate) fn seqs<S: Storage>(&self, store: &S, hash: u64) -> Result<Vec<u64>, LogError> {
        let list = self.read();
        let mut found = Vec::new();
        for run in list.iter().rev() {
            // The last chunk starting below the hash may end with it; later ones that start
            // with it hold it too.
            let from = run.fences.partition_point(|&f| f < hash).saturating_sub(1);
            let n = run.fences[from..].iter().take_while(|&&f| f <= hash).count();
            if n > 0 {
                let bytes = run.read(store, from, n)?;
                found.extend(pairs(&bytes).filter(|&(h, _)| h == hash).map(|(_, seq)| seq));
            }
        }
        Ok(found)
    }

    /// Every hash of the runs held in `runs` (a [`Runs::snapshot`]), to build a filter from;
    /// stops early (with what it has) when `stop` is set.
    pub(crate) fn hashes<S: Storage>(
        store: &S,
        runs: &[Arc<Run>],
        stop: &AtomicBool,
        mut each: impl FnMut(u64),
    ) -> Result<(), LogError> {
        for run in runs {
            for from in (0..run.fences.len()).step_by(READ_CHUNKS) {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let bytes = run.read(store, from, READ_CHUNKS)?;
                pairs(&bytes).for_each(|(h, _)| each(h));
            }
        }
        Ok(())
    }

    /// Merges runs while the newest [`FANIN`] are of one tier (see the module docs). Returns
    /// early, leaving nothing half done, when `stop` is set.
    pub(crate) fn merge_due<S: Storage>(&self, store: &S, stop: &AtomicBool) -> Result<(), LogError> {
        loop {
            self.sweep(store)?;
            let group: Vec<Arc<Run>> = {
                let list = self.read();
                let from = list.len().saturating_sub(FANIN);
                let tail = &list[from..];
                if tail.len() < FANIN || tail.iter().any(|r| r.tier() != tail[0].tier()) {
                    return Ok(());
                }
                tail.to_vec()
            };
            let Some(merged) = merge(store, &group, stop)? else { return Ok(()) };
            let mut wb = WriteBatch::default();
            for run in &group {
                wb.delete(run.record_key());
            }
            wb.put(merged.record_key(), merged.record());
            {
                let mut list = self.write_lock();
                store.apply(wb)?;
                let at = list.iter().position(|r| Arc::ptr_eq(r, &group[0])).expect("only merges remove runs");
                list.splice(at..at + group.len(), [Arc::new(merged)]);
            }
            self.retired.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(group);
        }
    }

    /// Deletes the files of retired runs that nothing else holds.
    pub(crate) fn sweep<S: Storage>(&self, store: &S) -> Result<(), LogError> {
        let mut retired = self.retired.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut kept = Vec::new();
        for run in retired.drain(..) {
            if Arc::strong_count(&run) > 1 {
                kept.push(run);
            } else {
                store.remove_file(&run.file())?;
            }
        }
        *retired = kept;
        Ok(())
    }
}

/// Merges `group` (contiguous runs) into one run, its file written; `None` if stopped.
fn merge<S: Storage>(store: &S, group: &[Arc<Run>], stop: &AtomicBool) -> Result<Option<Run>, LogError> {
    let (start, end) = (group[0].start, group[group.len() - 1].end);
    let inputs = group.iter().map(|run| Cursor::new(store, run)).collect::<Result<Vec<_>, _>>()?;
    let chunker = Chunker::new(start, end);
    let mut merging = Merging { store, inputs, chunker, stop, done: false, hasher: blake3::Hasher::new() };
    let name = merging.chunker.run.file();
    match store.write_file(&name, &mut merging) {
        Ok(()) => {
            let mut run = merging.chunker.run;
            run.sum = *merging.hasher.finalize().as_bytes();
            Ok(Some(run))
        }
        Err(_) if stop.load(Ordering::Relaxed) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The chunks of a merge, in order, as the file is written.
struct Merging<'a, S: Storage> {
    store: &'a S,
    inputs: Vec<Cursor<'a>>,
    chunker: Chunker,
    stop: &'a AtomicBool,
    done: bool,
    /// The hash of the parts handed out so far.
    hasher: blake3::Hasher,
}

impl<S: Storage> Iterator for Merging<'_, S> {
    type Item = Result<Vec<u8>, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        let part = self.part();
        if let Some(Ok(bytes)) = &part {
            self.hasher.update(bytes);
        }
        part
    }
}

impl<S: Storage> Merging<'_, S> {
    fn part(&mut self) -> Option<Result<Vec<u8>, StorageError>> {
        if self.done {
            return None;
        }
        if self.stop.load(Ordering::Relaxed) {
            self.done = true;
            return Some(Err(StorageError::new(StorageErrorKind::Other, "the merge was stopped")));
        }
        loop {
            let least = self.inputs.iter().enumerate().filter_map(|(i, c)| c.head().map(|p| (p, i))).min();
            let Some(((hash, seq), i)) = least else {
                // The last chunk, then the fences, ending the file.
                if let Some(last) = self.chunker.last() {
                    return Some(Ok(last));
                }
                self.done = true;
                return Some(Ok(self.chunker.run.fence_bytes()));
            };
            if let Err(e) = self.inputs[i].advance(self.store) {
                self.done = true;
                return Some(Err(StorageError::new(StorageErrorKind::Corrupt, e.to_string())));
            }
            if let Some(chunk) = self.chunker.push(hash, seq) {
                return Some(Ok(chunk));
            }
        }
    }
}

/// A run read in order, [`READ_CHUNKS`] at a time.
struct Cursor<'r> {
    run: &'r Run,
    next_chunk: usize,
    pairs: Vec<(u64, u64)>,
    at: usize,
}

impl<'r> Cursor<'r> {
    fn new<S: Storage>(store: &S, run: &'r Run) -> Result<Self, LogError> {
        let mut cursor = Cursor { run, next_chunk: 0, pairs: Vec::with_capacity(CHUNK * READ_CHUNKS), at: 0 };
        cursor.load(store)?;
        Ok(cursor)
    }

    fn head(&self) -> Option<(u64, u64)> {
        self.pairs.get(self.at).copied()
    }

    fn advance<S: Storage>(&mut self, store: &S) -> Result<(), LogError> {
        self.at += 1;
        if self.at == self.pairs.len() {
            self.load(store)?;
        }
        Ok(())
    }

    fn load<S: Storage>(&mut self, store: &S) -> Result<(), LogError> {
        self.pairs.clear();
        self.at = 0;
        if self.next_chunk < self.run.fences.len() {
            let bytes = self.run.read(store, self.next_chunk, READ_CHUNKS)?;
            self.pairs.extend(pairs(&bytes));
            self.next_chunk += READ_CHUNKS;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemStorage;

    fn hash_of(seq: u64) -> u64 {
        // Spread, with a collision every 1,000 entries.
        (seq % 1000).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (seq / 1000 % 3)
    }

    #[test]
    fn runs_written_and_merged_find_every_seq_and_leave_no_stray_files() {
        let store = MemStorage::default();
        let runs = Runs::default();
        let stop = AtomicBool::new(false);
        let mut start = 0;
        // Sizes that make tier-0 runs of different sizes, merged in groups of four.
        for size in [70_000u64, 1, 300, 65_536, 2, 5, 7, 40_000, 3] {
            let pairs = (start..start + size).map(|s| (hash_of(s), s)).collect();
            runs.write(&store, start, start + size, pairs).unwrap();
            runs.merge_due(&store, &stop).unwrap();
            start += size;
        }
        assert!(runs.read().len() < 9, "runs were merged: {}", runs.read().len());
        for seq in [0, 999, 1000, 70_000, 70_001, 135_839, start - 1] {
            let found = runs.seqs(&store, hash_of(seq)).unwrap();
            assert!(found.contains(&seq), "{seq} not among {} found", found.len());
            assert!(found.iter().all(|&s| hash_of(s) == hash_of(seq)));
        }
        assert!(runs.seqs(&store, 12345).unwrap().is_empty());
        let mut all = Vec::new();
        Runs::hashes(&store, &runs.snapshot(), &stop, |h| all.push(h)).unwrap();
        assert_eq!(all.len() as u64, start);
        // The files there are are exactly the runs' (those merged away were deleted), and
        // reloaded they are the same runs.
        let mut files = store.file_names().unwrap();
        let loaded = Runs::load(&store, start).unwrap().expect("the runs cover the log");
        assert_eq!(loaded.read().len(), runs.read().len());
        let mut expected: Vec<String> = loaded.read().iter().map(|r| r.file()).collect();
        files.sort();
        expected.sort();
        assert_eq!(files, expected, "no file of a merged-away run is left");
        assert!(Runs::load(&store, start + 1).unwrap().is_none(), "a watermark past the runs");
    }

    #[test]
    fn a_run_file_of_no_record_is_deleted_and_a_missing_one_means_a_rebuild() {
        let store = MemStorage::default();
        let runs = Runs::default();
        runs.write(&store, 0, 10, (0..10).map(|s| (s * 7, s)).collect()).unwrap();
        // The file of a run whose record was never written (a crash, or a merge cut short).
        let stray = Run { start: 10, end: 20, pairs: 1, fences: vec![0], sum: [0; 32] };
        store.write_file(&stray.file(), &mut std::iter::once(Ok(vec![0; PAIR + 8]))).unwrap();
        let loaded = Runs::load(&store, 10).unwrap().expect("the runs cover the log");
        assert_eq!(loaded.seqs(&store, 21).unwrap(), vec![3]);
        assert_eq!(store.file_names().unwrap(), vec![loaded.read()[0].file()], "the stray file is gone");
        // A run whose file changed (a flipped bit), or is gone (lost, or a store copied without
        // it): rebuilt.
        let file = loaded.read()[0].file();
        let mut bytes = store.read_file(&file, 0, 1 << 20).unwrap();
        bytes[5] ^= 1;
        store.write_file(&file, &mut std::iter::once(Ok(bytes))).unwrap();
        assert!(Runs::load(&store, 10).unwrap().is_none(), "a changed file");
        store.remove_file(&file).unwrap();
        assert!(Runs::load(&store, 10).unwrap().is_none(), "a missing file");
    }
}
