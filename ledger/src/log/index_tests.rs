//! Tests of the `(source, id)` index: the kept filter, lookups while the filter is built,
//! and a full filter grown behind the appends.

use std::collections::HashMap;

use super::*;
use crate::log::reindex::read_whole;
use crate::store::MemStorage;

/// The entries of a test log: the first `n` are `("src", "e<i>")` with digest `[i as u8; 32]`,
/// the later ones as [`Entries::add`]ed.
#[derive(Clone)]
struct Entries {
    n: u64,
    later: Arc<Mutex<HashMap<u64, Vec<u8>>>>,
}

impl Entries {
    fn add(&self, seq: u64, id: &str) {
        self.later.lock().unwrap().insert(seq, id_key("src", id));
    }

    fn resolve(&self) -> Resolve {
        let this = self.clone();
        Arc::new(move |seq| {
            let key = match this.later.lock().unwrap().get(&seq) {
                Some(key) => key.clone(),
                None if seq < this.n => id_key("src", &format!("e{seq}")),
                None => return Err(LogError::Damaged(format!("no entry {seq}"))),
            };
            Ok((key, if seq < this.n { [seq as u8; 32] } else { [7; 32] }))
        })
    }
}

/// A store whose index holds `n` keys `("src", "e<i>")` in one run, and its entries.
fn indexed_store(n: u64) -> (MemStorage, Entries) {
    let store = MemStorage::default();
    let key = hash_key(&store).unwrap();
    let hasher = IdFilter::with_key(1 << 16, key);
    let pairs = (0..n).map(|i| (hasher.hash(&id_key("src", &format!("e{i}"))), i)).collect();
    Runs::default().write(&store, 0, n, pairs).unwrap();
    store.commit(WriteBatch::default()).unwrap();
    (store, Entries { n, later: Arc::default() })
}

fn open(store: &Arc<MemStorage>, size: u64, entries: &Entries) -> Index<MemStorage> {
    Index::open(Arc::clone(store), size, |_| std::iter::empty(), entries.resolve()).unwrap()
}

/// Waits until the index's filter is built and taken.
fn built(index: &mut Index<MemStorage>) {
    while index.building.is_some() {
        std::thread::sleep(std::time::Duration::from_millis(5));
        if index.building.as_ref().is_some_and(|b| b.thread.is_finished()) {
            index.finish_building();
        }
    }
    assert!(index.complete);
}

#[test]
fn a_clean_close_keeps_the_filter_and_an_open_takes_it_back_only_for_the_same_log() {
    let n = 1_000_000;
    let (store, entries) = indexed_store(n);
    let store = Arc::new(store);
    let mut index = open(&store, n, &entries);
    built(&mut index);
    drop(index);
    assert!(read_whole(&*store, FILTER_FILE).unwrap().is_none(), "nothing appended: nothing kept");

    // Closed while its filter is still being built: the build is finished, then kept.
    let mut index = open(&store, n, &entries);
    let new = index.lookup("src", "new").unwrap();
    entries.add(n, "new");
    index.record(n + 1, vec![Item { hash: new.hash, key: new.key, seq: n, digest: [7; 32] }]);
    assert!(index.building.is_some(), "the filter was built before the close; the test needs more keys");
    drop(index);
    let kept = read_whole(&*store, FILTER_FILE).unwrap().expect("a clean close after an append keeps the filter");

    // The same log: taken back whole, nothing to build, every key found.
    let index = open(&store, n + 1, &entries);
    assert!(index.complete && index.building.is_none(), "the kept filter was not taken back");
    for (id, want) in [("e0", Some(0)), ("e999999", Some(999_999)), ("new", Some(n)), ("absent", None)] {
        let hash = index.filter.hash(&id_key("src", id));
        assert!(want.is_none() || index.filter.may_contain_hashed(hash), "{id} is in the kept filter");
        assert_eq!(index.lookup("src", id).unwrap().stored.map(|s| s.0), want, "{id}");
    }
    drop(index);
    // A log that grew after the close (a crash, an older binary), or a damaged filter: rebuilt.
    let key = hash_key(&*store).unwrap();
    assert!(kept_filter(&*store, n + 1, &key).is_some());
    assert!(kept_filter(&*store, n + 2, &key).is_none(), "covers fewer entries than the log");
    assert!(kept_filter(&*store, n + 1, &[0; 32]).is_none(), "hashes with another key");
    let mut damaged = kept.clone();
    damaged[100] ^= 1;
    store.write_file(FILTER_FILE, &mut std::iter::once(Ok(damaged))).unwrap();
    let index = open(&store, n + 1, &entries);
    assert!(!index.complete && index.building.is_some(), "a damaged filter is rebuilt");
    assert_eq!(index.lookup("src", "new").unwrap().stored.map(|s| s.0), Some(n));
}

#[test]
fn while_the_filter_is_built_lookups_read_the_index_and_keys_recorded_meanwhile_are_kept() {
    let n = 1_000_000;
    let (store, entries) = indexed_store(n);
    let mut index = open(&Arc::new(store), n, &entries);
    // Just opened: the filter of 1,000,000 keys is still being built, and an event already
    // in the index is found all the same.
    assert!(!index.complete, "the filter was built before the first lookup; the test needs more keys");
    let old = index.lookup("src", "e123456").unwrap();
    assert_eq!(old.stored, Some((123_456, [123_456u64 as u8; 32])));
    // A key recorded while it is built is in the filter once it is done.
    let new = index.lookup("src", "new").unwrap();
    assert_eq!(new.stored, None);
    entries.add(n, "new");
    index.record(n + 1, vec![Item { hash: new.hash, key: new.key, seq: n, digest: [7; 32] }]);
    index.settle().unwrap();
    built(&mut index);
    for (id, want) in [("e0", Some(0)), ("e999999", Some(999_999)), ("new", Some(n)), ("absent", None)] {
        let hash = index.filter.hash(&id_key("src", id));
        assert!(want.is_none() || index.filter.may_contain_hashed(hash), "{id} is in the filter");
        assert_eq!(index.lookup("src", id).unwrap().stored.map(|s| s.0), want, "{id}");
    }
}

#[test]
fn a_full_filter_is_grown_on_its_thread_while_it_goes_on_answering() {
    let n = 70_000;
    let (store, entries) = indexed_store(n);
    let mut index = open(&Arc::new(store), n, &entries);
    built(&mut index);
    // A filter sized for fewer keys than the index holds: full.
    let mut full = index.filter.sibling(1 << 16);
    for i in 0..n {
        full.insert(&id_key("src", &format!("e{i}")));
    }
    assert!(full.is_full());
    index.filter = full;
    let record = |index: &mut Index<MemStorage>, id: &str, seq: u64| {
        let new = index.lookup("src", id).unwrap();
        entries.add(seq, id);
        index.record(seq + 1, vec![Item { hash: new.hash, key: new.key, seq, digest: [7; 32] }]);
    };
    // The next append starts the bigger filter's build and returns: nothing waits for it,
    // and the full filter answers meanwhile, exactly.
    record(&mut index, "new-1", n);
    assert!(index.building.is_some() && index.complete, "the full filter is grown behind the appends");
    record(&mut index, "new-2", n + 1);
    for (id, want) in [("e0", Some(0)), ("e69999", Some(69_999)), ("new-1", Some(n)), ("new-2", Some(n + 1))] {
        assert_eq!(index.lookup("src", id).unwrap().stored.map(|s| s.0), want, "{id}");
    }
    // Once built, it holds every key, those recorded while it was built too.
    index.settle().unwrap();
    built(&mut index);
    assert!(!index.filter.is_full() && index.building.is_none());
    for (id, want) in
        [("e0", Some(0)), ("e69999", Some(69_999)), ("new-1", Some(n)), ("new-2", Some(n + 1)), ("absent", None)]
    {
        let hash = index.filter.hash(&id_key("src", id));
        assert!(want.is_none() || index.filter.may_contain_hashed(hash), "{id} is in the grown filter");
        assert_eq!(index.lookup("src", id).unwrap().stored.map(|s| s.0), want, "{id}");
    }
}

#[test]
fn a_hash_the_runs_hold_is_taken_only_for_the_entry_whose_key_it_is() {
    let (store, entries) = indexed_store(10);
    let store = Arc::new(store);
    // Entry 10's pair carries the hash of "x", but the entry is of "e10" (as a hash shared
    // by two keys would look).
    let key = hash_key(&*store).unwrap();
    let hash = IdFilter::with_key(1 << 16, key).hash(&id_key("src", "x"));
    Runs::load(&*store, 10).unwrap().unwrap().write(&*store, 10, 11, vec![(hash, 10)]).unwrap();
    entries.add(10, "e10");
    let index = open(&store, 11, &entries);
    assert_eq!(index.lookup("src", "x").unwrap().stored, None);
    assert_eq!(index.lookup("src", "e3").unwrap().stored, Some((3, [3; 32])));
}

#[test]
fn a_run_is_written_once_enough_entries_are_pending_and_they_leave_pending() {
    let (store, entries) = indexed_store(0);
    let store = Arc::new(store);
    let mut index = open(&store, 0, &entries);
    let run = RUN_ENTRIES as usize;
    for (n, from) in [0, run / 2].into_iter().enumerate() {
        let items = (from..from + run / 2)
            .map(|i| {
                let id = format!("e{i}");
                entries.add(i as u64, &id);
                let new = index.lookup("src", &id).unwrap();
                Item { hash: new.hash, key: new.key, seq: i as u64, digest: [7; 32] }
            })
            .collect();
        index.record(((n + 1) * run / 2) as u64, items);
    }
    // The writer wrote them without being asked, and nothing is pending.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while index.runs.end() < RUN_ENTRIES || !index.shared.lock().pending.is_empty() {
        assert!(std::time::Instant::now() < deadline, "no run written");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(index.lookup("src", "e40000").unwrap().stored, Some((40_000, [7; 32])));
}
