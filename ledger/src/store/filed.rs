//! The entries file beside the sled database ([`evidence_verifier::layout::ENTRIES_FILE`]):
//! [`SledStorage`](super::SledStorage) keeps the values of the two prefixes the verifier reads
//! (entry segments and checkpoints), and the Merkle tiles once they are full
//! ([`FULL_TILE_BYTES`], never rewritten after), in an append-only file of frames, and in sled
//! only where each one is (a [`Place`]). An auditor then reads the entries as they are, without
//! opening sled, and the bulk of a store's bytes stays out of sled's log-structured files,
//! which keep about three times the live bytes they hold.
//!
//! Durability: a batch's frames are written at the committed end of the file before the sled
//! batch that places them is applied; that batch also moves the committed end
//! ([`META_ENTRIES_END`]). The file is synced by the next commit ([`EntriesFile::sync`]), just
//! before sled's flush, and nothing is acknowledged before that commit returns. So after a
//! process crash (`kill -9`: what was written is in the page cache) whatever sled recovers
//! points into bytes the file holds, and after a commit whatever sled has flushed points into
//! bytes on disk. Bytes past the committed end (a batch whose sled half never landed) are cut
//! off when the store next opens.
//!
//! The frames were synced before each sled batch until `evidence serve` applied its rounds in
//! slices: one `fdatasync` a slice (about 1 ms; ten a round while readers ask) made serve 28%
//! slower with readers asking (`ops/bench/http`, same-run comparison). Syncing at the commit
//! gives up one thing: on a power cut (not a process crash), sled may have written a batch it
//! was never asked to flush, and so never acknowledged, before the file's frames reached the
//! disk. The store then
//! opens with that batch's entries missing or damaged, says so, and stops appends
//! ([`crate::log`]'s damage), instead of holding only whole batches.
//! `EVIDENCE_SYNC_EACH_BATCH=1` ([`sync_each_batch`]) syncs before each batch again, for a
//! machine where that matters more than the rate.
//!
//! A failed sync is not retried: the kernel may have dropped the pages it could not write, so
//! every later write and commit fails until the store is opened again.
//!
//! A store written before the file existed has its values in sled: the
//! first open writes them into a new file ([`migrate`]), and reads take a value inline as
//! well as placed, so a migration cut short by a crash loses nothing.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use evidence_verifier::layout::{push_frame, ENTRIES_FILE, ENTRIES_MAGIC, FRAME_HEADER, MAX_FRAME_VALUE};
use evidence_verifier::store::{Frames, FramesError};

use super::keyspace::{CHECKPOINT, ENTRY, FULL_TILE_BYTES, META_ENTRIES_END, NODE};
use super::{StorageError, StorageErrorKind};

/// The first byte of a [`Place`] as stored in sled. No value stored inline has its length and
/// begins with it: a plain segment begins with the high byte of a record length (0 for any
/// record under 16 MB), a compressed one with zstd's magic number (`0x28`), a checkpoint note
/// with UTF-8 text (never `0xFF`), and a tile is a multiple of 32 bytes long.
const PLACE_TAG: u8 = 0xFF;
/// The length of a stored [`Place`]: the tag, the offset (u64 BE) and the length (u32 BE).
const PLACE_LEN: usize = 13;
/// Frames placed in sled per batch while a file is migrated.
const MIGRATE_BATCH: usize = 10_000;

/// Whether `key`'s value may be kept in the entries file (and so may be stored in sled as a
/// place).
pub(super) fn filed(key: &[u8]) -> bool {
    match key.first() {
        Some(&ENTRY | &CHECKPOINT) => key.len() == 9,
        Some(&NODE) => true,
        _ => false,
    }
}

/// Whether a put of `value` at `key` goes to the entries file: every entry segment and
/// checkpoint (what the verifier reads), and a tile once full. A tile still filling up is
/// rewritten with every batch, and stays in sled.
pub(super) fn to_file(key: &[u8], value: Option<&[u8]>) -> bool {
    match key.first() {
        Some(&NODE) => value.is_some_and(|v| v.len() == FULL_TILE_BYTES),
        _ => filed(key),
    }
}

/// Where a value is in the entries file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Place {
    offset: u64,
    len: u32,
}

impl Place {
    fn encode(self) -> [u8; PLACE_LEN] {
        let mut out = [0u8; PLACE_LEN];
        out[0] = PLACE_TAG;
        out[1..9].copy_from_slice(&self.offset.to_be_bytes());
        out[9..].copy_from_slice(&self.len.to_be_bytes());
        out
    }

    fn decode(stored: &[u8]) -> Option<Place> {
        if stored.len() != PLACE_LEN || stored[0] != PLACE_TAG {
            return None;
        }
        let offset = u64::from_be_bytes(stored[1..9].try_into().expect("8 bytes"));
        let len = u32::from_be_bytes(stored[9..].try_into().expect("4 bytes"));
        Some(Place { offset, len })
    }
}

/// The open entries file and its committed end.
#[derive(Debug)]
pub(super) struct EntriesFile {
    file: File,
    /// The committed end; held while a batch writes its frames and applies its sled half.
    end: Mutex<u64>,
    /// Frames were written since the last sync.
    unsynced: AtomicBool,
    /// A sync failed: nothing more is written (see the module docs).
    failed: AtomicBool,
    /// Syncs done, for tests.
    syncs: AtomicU64,
    /// Sync before each sled batch is applied, as before the syncs moved to the commit
    /// ([`sync_each_batch`]).
    each_batch: AtomicBool,
}

/// `EVIDENCE_SYNC_EACH_BATCH=1`: sync the entries file before every sled batch that places
/// frames, not only before each commit's flush. Slower (one `fdatasync` a slice of serve's
/// rounds), and a power cut then never leaves sled pointing at frames that are not on disk
/// (see the module docs).
fn sync_each_batch() -> bool {
    std::env::var("EVIDENCE_SYNC_EACH_BATCH").is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes"))
}

fn corrupt(message: String) -> StorageError {
    StorageError::new(StorageErrorKind::Corrupt, message)
}

impl EntriesFile {
    /// Opens the entries file of the sled database `db` in `dir`, migrating the values of a
    /// store written before it existed, and cuts off what lies past the committed end.
    pub(super) fn open(db: &sled::Db, dir: &Path) -> Result<Self, StorageError> {
        let path = dir.join(ENTRIES_FILE);
        if !path.exists() {
            migrate(db, dir)?;
        }
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        let end = match db.get(META_ENTRIES_END)? {
            Some(end) => u64::from_be_bytes(
                end.as_ref().try_into().map_err(|_| corrupt("the entries file's committed end is malformed".into()))?,
            ),
            // A migration that a crash cut short: place what the new file holds.
            None => place_all(db, &file)?,
        };
        let len = file.metadata()?.len();
        if len < end {
            return Err(corrupt(format!(
                "the entries file holds {len} bytes, fewer than the {end} the store committed: committed entries are missing from {}",
                path.display()
            )));
        }
        if len > end {
            tracing::warn!(
                message =
                    "Cutting off the end of the entries file that was never committed (a batch a crash interrupted).",
                bytes = len - end
            );
            file.set_len(end)?;
            file.sync_all()?;
        }
        Ok(EntriesFile {
            file,
            end: Mutex::new(end),
            unsynced: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            syncs: AtomicU64::new(0),
            each_batch: AtomicBool::new(sync_each_batch()),
        })
    }

    /// The value stored in sled as `stored` for a filed key: read from its place, or as it is
    /// when it was stored inline (before the file, or in a migration not yet placed).
    pub(super) fn resolve(&self, stored: sled::IVec) -> Result<sled::IVec, StorageError> {
        let Some(place) = Place::decode(&stored) else { return Ok(stored) };
        let mut value = vec![0u8; place.len as usize];
        self.file.read_exact_at(&mut value, place.offset)?;
        Ok(value.into())
    }

    /// Puts the frames written since the last sync on disk; called by every commit before
    /// sled's flush. A failure is final for this handle (see the module docs).
    pub(super) fn sync(&self) -> Result<(), StorageError> {
        self.usable()?;
        if self.unsynced.swap(false, Ordering::SeqCst) {
            self.syncs.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = self.file.sync_data() {
                self.failed.store(true, Ordering::SeqCst);
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// The syncs done since the file was opened.
    #[cfg(test)]
    pub(super) fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Sets whether each batch is synced before sled applies it, for tests.
    #[cfg(test)]
    pub(super) fn set_sync_each_batch(&self, each: bool) {
        self.each_batch.store(each, Ordering::SeqCst);
    }

    fn usable(&self) -> Result<(), StorageError> {
        if self.failed.load(Ordering::SeqCst) {
            return Err(StorageError::new(
                StorageErrorKind::Other,
                "the entries file could not be synced earlier; open the store again",
            ));
        }
        Ok(())
    }

    /// Applies `ops` with `batch` to `db`: the filed puts and removals are written as frames at
    /// the committed end (synced by the next commit), then `batch` (the rest of the ops) is
    /// applied with their places and the new committed end.
    pub(super) fn write(
        &self,
        db: &sled::Db,
        ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        mut batch: sled::Batch,
    ) -> Result<(), StorageError> {
        if let Some(len) =
            ops.iter().filter_map(|(_, v)| v.as_ref().map(Vec::len)).find(|len| *len > MAX_FRAME_VALUE as usize)
        {
            return Err(StorageError::new(
                StorageErrorKind::Other,
                format!("a value of {len} bytes is more than the entries file holds ({MAX_FRAME_VALUE})"),
            ));
        }
        self.usable()?;
        // A panic while the lock was held left the end where it was: what it wrote is past it.
        let mut end = self.end.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut frames =
            Vec::with_capacity(ops.iter().map(|(_, v)| FRAME_HEADER + v.as_ref().map_or(0, Vec::len)).sum());
        for (key, value) in ops {
            let at = push_frame(&mut frames, &key, value.as_deref());
            match value {
                Some(value) => {
                    let place = Place { offset: *end + at as u64, len: value.len() as u32 };
                    batch.insert(key, &place.encode()[..]);
                }
                None => batch.remove(key),
            }
        }
        let new_end = *end + frames.len() as u64;
        let written = self.file.write_all_at(&frames, *end);
        // Marked once written and before sled places them: a commit that finds the mark syncs
        // after the write, and the commit that makes the batch durable comes after the mark.
        self.unsynced.store(true, Ordering::SeqCst);
        let each_batch = self.each_batch.load(Ordering::Relaxed);
        let written = written.map_err(StorageError::from).and_then(|()| if each_batch { self.sync() } else { Ok(()) });
        batch.insert(META_ENTRIES_END, &new_end.to_be_bytes()[..]);
        if let Err(e) = written.and_then(|()| Ok(db.apply_batch(batch)?)) {
            // Nothing points at the frames; the next batch writes over them (and an open cuts
            // them off). Cut them now too, so that the file ends where the store does.
            let _ = self.file.set_len(*end);
            return Err(e);
        }
        *end = new_end;
        Ok(())
    }
}

/// Writes a new entries file holding the filed values `db` keeps inline (none, for a new
/// store), synced and then renamed into place, and places them.
fn migrate(db: &sled::Db, dir: &Path) -> Result<(), StorageError> {
    let new = dir.join(format!("{ENTRIES_FILE}.new"));
    let file = OpenOptions::new().write(true).create(true).truncate(true).open(&new)?;
    // Written as it is read, a frame at a time: an old store's entries may be gigabytes.
    let mut out = std::io::BufWriter::with_capacity(1 << 20, &file);
    out.write_all(&ENTRIES_MAGIC)?;
    let (mut count, mut frame) = (0u64, Vec::new());
    for prefix in [CHECKPOINT, ENTRY] {
        for item in db.scan_prefix([prefix]) {
            let (key, value) = item?;
            if filed(&key) && Place::decode(&value).is_none() {
                frame.clear();
                push_frame(&mut frame, &key, Some(&value));
                out.write_all(&frame)?;
                count += 1;
            }
        }
    }
    out.flush()?;
    drop(out);
    if count > 0 {
        tracing::info!(message = "Moved the entry segments and checkpoints into the entries file.", values = count);
    }
    file.sync_all()?;
    std::fs::rename(&new, dir.join(ENTRIES_FILE))?;
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// Places every frame of `file` in `db` and returns the file's committed end: after a
/// migration, the file holds exactly the values `db` has inline.
fn place_all(db: &sled::Db, file: &File) -> Result<u64, StorageError> {
    let mut frames = Frames::new(file).map_err(frames_error)?;
    let mut batch = sled::Batch::default();
    let mut placed = 0;
    while let Some(frame) = frames.next_frame().map_err(frames_error)? {
        let Some((offset, len)) = frame.value else {
            return Err(corrupt(format!("entries file, before byte {}: a removal in a migration", frames.end())));
        };
        batch.insert(frame.key, &Place { offset, len }.encode()[..]);
        placed += 1;
        if placed % MIGRATE_BATCH == 0 {
            db.apply_batch(std::mem::take(&mut batch))?;
        }
    }
    let end = frames.end();
    batch.insert(META_ENTRIES_END, &end.to_be_bytes()[..]);
    db.apply_batch(batch)?;
    db.flush()?;
    Ok(end)
}

fn frames_error(e: FramesError) -> StorageError {
    match e {
        FramesError::Read(e) => e.into(),
        FramesError::Malformed(e) => corrupt(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_is_never_a_value_stored_inline() {
        let place = Place { offset: 1 << 40, len: 3000 };
        assert_eq!(Place::decode(&place.encode()), Some(place));
        let plain = evidence_verifier::layout::encode_segment(&[vec![7u8; 9]]);
        let packed = evidence_verifier::layout::pack_segment(&plain);
        for inline in [&plain[..], &packed[..], b"tamper.example/ledger\n13\n".as_slice()] {
            assert_eq!(Place::decode(inline), None);
        }
    }
}
