//! Tests of the `(source, id)` index: the kept filter, lookups while the filter is built,
//! and a full filter grown behind the appends.

use super::*;
use crate::store::MemStorage;

/// A store whose index holds `n` keys `("src", "e<i>")`, entry i with digest `[i as u8; 32]`.
fn indexed_store(n: u64) -> MemStorage {
    let store = MemStorage::default();
    let mut wb = WriteBatch::default();
    for i in 0..n {
        wb.put(id_key("src", &format!("e{i}")), id_value(i, &[i as u8; 32]));
    }
    wb.put(META_INDEXED, n.to_be_bytes());
    store.commit(wb).unwrap();
    store
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
    let n = 300_000;
    let store = Arc::new(indexed_store(n));
    let mut index = Index::open(Arc::clone(&store), n, |_| std::iter::empty()).unwrap();
    built(&mut index);
    drop(index);
    assert!(store.get(META_ID_FILTER).unwrap().is_none(), "nothing appended: nothing kept");

    // Closed while its filter is still being built: the build is finished, then kept.
    let mut index = Index::open(Arc::clone(&store), n, |_| std::iter::empty()).unwrap();
    let new = index.lookup("src", "new").unwrap();
    index.record(n + 1, vec![Item { hash: new.hash, key: new.key, seq: n, digest: [7; 32] }]);
    assert!(index.building.is_some(), "the filter was built before the close; the test needs more keys");
    drop(index);
    let kept = store.get(META_ID_FILTER).unwrap().expect("a clean close after an append keeps the filter");

    // The same log: taken back whole, nothing to build, every key found.
    let index = Index::open(Arc::clone(&store), n + 1, |_| std::iter::empty()).unwrap();
    assert!(index.complete && index.building.is_none(), "the kept filter was not taken back");
    for (id, want) in [("e0", Some(0)), ("e299999", Some(299_999)), ("new", Some(n)), ("absent", None)] {
        let hash = index.filter.hash(&id_key("src", id));
        assert!(want.is_none() || index.filter.may_contain_hashed(hash), "{id} is in the kept filter");
        assert_eq!(index.lookup("src", id).unwrap().stored.map(|s| s.0), want, "{id}");
    }
    drop(index);
    // A log that grew after the close (a crash, an older binary), or a damaged filter: rebuilt.
    assert!(kept_filter(&*store, n + 1).is_some());
    assert!(kept_filter(&*store, n + 2).is_none(), "covers fewer entries than the log");
    let mut damaged = kept.as_ref().to_vec();
    damaged[100] ^= 1;
    let mut wb = WriteBatch::default();
    wb.put(META_ID_FILTER, damaged);
    store.commit(wb).unwrap();
    let index = Index::open(Arc::clone(&store), n + 1, |_| std::iter::empty()).unwrap();
    assert!(!index.complete && index.building.is_some(), "a damaged filter is rebuilt");
    assert_eq!(index.lookup("src", "new").unwrap().stored.map(|s| s.0), Some(n));
}

#[test]
fn while_the_filter_is_built_lookups_read_the_index_and_keys_recorded_meanwhile_are_kept() {
    let n = 300_000;
    let mut index = Index::open(Arc::new(indexed_store(n)), n, |_| std::iter::empty()).unwrap();
    // Just opened: the filter of 300,000 keys is still being built, and an event already
    // in the index is found all the same.
    assert!(!index.complete, "the filter was built before the first lookup; the test needs more keys");
    let old = index.lookup("src", "e123456").unwrap();
    assert_eq!(old.stored, Some((123_456, [123_456u64 as u8; 32])));
    // A key recorded while it is built is in the filter once it is done.
    let new = index.lookup("src", "new").unwrap();
    assert_eq!(new.stored, None);
    index.record(n + 1, vec![Item { hash: new.hash, key: new.key, seq: n, digest: [7; 32] }]);
    index.settle().unwrap();
    built(&mut index);
    for (id, want) in [("e0", Some(0)), ("e299999", Some(299_999)), ("new", Some(n)), ("absent", None)] {
        let hash = index.filter.hash(&id_key("src", id));
        assert!(want.is_none() || index.filter.may_contain_hashed(hash), "{id} is in the filter");
        assert_eq!(index.lookup("src", id).unwrap().stored.map(|s| s.0), want, "{id}");
    }
}

#[test]
fn a_full_filter_is_grown_on_its_thread_while_it_goes_on_answering() {
    let n = 70_000;
    let mut index = Index::open(Arc::new(indexed_store(n)), n, |_| std::iter::empty()).unwrap();
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
