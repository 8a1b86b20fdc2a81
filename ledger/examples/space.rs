//! What each part of a stopped store takes: the bytes of keys and values under each key
//! prefix of `store::keyspace` (views by table), against the size of the database's files,
//! and the entries file beside them (entry segments and checkpoints; sled holds their places)
//! and the index's files (its runs and its kept filter).
//!
//! `cargo run --release -p evidence-ledger --example space -- DATA_DIR`

use std::collections::BTreeMap;

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("a data directory"));
    let db = evidence_ledger::store::sled_config(&dir.join("log")).open().expect("sled opens");
    let mut parts: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for item in db.iter() {
        let (key, value) = item.expect("sled reads");
        let name = match key.first() {
            Some(b'v') => format!("v{}", key.get(1).map_or('?', |&t| t as char)),
            Some(&p) => (p as char).to_string(),
            None => "(empty)".into(),
        };
        let part = parts.entry(name).or_default();
        part.0 += 1;
        part.1 += (key.len() + value.len()) as u64;
    }
    let entries_file = dir.join("log").join(evidence_verifier::layout::ENTRIES_FILE);
    let entries = std::fs::metadata(&entries_file).map_or(0, |m| m.len());
    let index = walk(&dir.join("log").join(evidence_ledger::store::FILES_DIR));
    let files: u64 = walk(&dir.join("log")) - entries - index;
    let logical: u64 = parts.values().map(|p| p.1).sum();
    println!("{:<8} {:>10} {:>14}", "prefix", "keys", "bytes");
    for (name, (keys, bytes)) in &parts {
        println!("{name:<8} {keys:>10} {bytes:>14}");
    }
    println!(
        "keys and values in sled {logical} bytes; sled's files {files} bytes ({:.2}x)",
        files as f64 / logical as f64
    );
    println!("entries file (segments and checkpoints) {entries} bytes");
    println!("index files (runs, kept filter) {index} bytes");
    println!("all files {} bytes", files + entries + index);
}

fn walk(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).expect("the directory reads").flatten() {
        let meta = entry.metadata().expect("metadata");
        total += if meta.is_dir() { walk(&entry.path()) } else { meta.len() };
    }
    total
}
