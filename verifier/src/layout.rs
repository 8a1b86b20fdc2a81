//! Where a ledger directory keeps what the verifier reads. The ledger writes with these keys
//! and formats, and the verifier's read-only adapter reads with them, so both agree by
//! construction.
//!
//! A ledger directory holds a sled database in [`LOG_DIR`], and beside it, in the same
//! directory, the [`ENTRIES_FILE`]. Keys begin with a one-byte prefix; the verifier reads two
//! of them, whose values are in the entries file (sled holds where each one is; a store
//! written before the entries file existed has them in sled itself):
//!
//! | key | value |
//! | --- | --- |
//! | `e` + first seq (u64 big-endian) | a segment: consecutive entries (the ledger writes up to 32), zstd-compressed or plain |
//! | `c` + tree size (u64 big-endian) | signed checkpoint note ([`crate::checkpoint`]) |
//!
//! A segment is, for each entry in order, its record's length (u32 big-endian) and the entry
//! record ([`crate::entry`]). It is stored as it is, or compressed: a value that begins with the
//! zstd magic number (`28 B5 2F FD`, RFC 8878) is one zstd frame, with its content size, whose
//! content is the segment ([`unpack_segment`]). A plain segment cannot begin so: its first byte
//! is the high byte of a record length, and no record comes near 0x28000000 bytes. The ledger
//! compresses every segment it writes ([`pack_segment`]); segments of older stores are plain.
//! The entry records inside, and so every digest, chain hash and Merkle leaf, are the same
//! bytes either way. Entries are stored several to a value because a store write costs
//! per key; segments are kept small (about 5 KB) because sled splits its leaf nodes by key
//! count, and nodes of large values are rewritten whole, or moved to blob files. A reader must accept segments of any length. The other prefixes are the
//! ledger's own (indexes, Merkle node tiles, quarantine, positions).

/// The directory, inside a ledger data directory, that holds the sled database.
pub const LOG_DIR: &str = "log";
/// The lock file inside [`LOG_DIR`]: the ledger process holding the store keeps an exclusive
/// lock on it (`flock`) and writes its process id into it.
pub const LOCK_FILE: &str = "evidence.lock";
/// Prefix of entry segments.
pub const ENTRY: u8 = b'e';
/// Prefix of signed checkpoints.
pub const CHECKPOINT: u8 = b'c';

/// The key of the segment whose first entry is `first`.
pub fn segment_key(first: u64) -> [u8; 9] {
    prefixed(ENTRY, first)
}

/// The key of the checkpoint at tree size `size`.
pub fn checkpoint_key(size: u64) -> [u8; 9] {
    prefixed(CHECKPOINT, size)
}

/// The number in a 9-byte prefixed key, if the key is one.
pub fn key_number(key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.get(1..)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

fn prefixed(prefix: u8, n: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = prefix;
    k[1..].copy_from_slice(&n.to_be_bytes());
    k
}

/// The file, inside [`LOG_DIR`], that holds the entry segments and checkpoints: the two
/// prefixes the verifier reads live here, not in sled, so that an auditor reads them as they
/// are, without opening (and so without copying) the database. sled keeps, under the same
/// keys, where each value is in this file. (The ledger also keeps its finished Merkle tiles
/// here, under their keys of prefix [`TILE`]; the verifier computes the tree itself and passes
/// over them.)
///
/// The file is [`ENTRIES_MAGIC`], then frames, only ever appended: a frame is a header of
/// [`FRAME_HEADER`] bytes (the key's length, 1 to [`MAX_FRAME_KEY`], as one byte; the key,
/// padded with zeros to [`MAX_FRAME_KEY`] bytes; the value's length, u32 big-endian, or
/// [`TOMBSTONE`] for a key removed, with no value) and the value. An entry segment's key is
/// [`segment_key`], a checkpoint's [`checkpoint_key`]. A key's last frame is its value. A
/// frame cut short at the end of the file is a write a crash interrupted; it was never
/// committed, and the ledger cuts it off when it next opens the store.
pub const ENTRIES_FILE: &str = "entries";
/// The first bytes of an [`ENTRIES_FILE`] (format version 1).
pub const ENTRIES_MAGIC: [u8; 8] = *b"EVLEDGR1";
/// The longest key a frame holds.
pub const MAX_FRAME_KEY: usize = 16;
/// The bytes of a frame's header: key length, key (padded), value length.
pub const FRAME_HEADER: usize = 1 + MAX_FRAME_KEY + 4;
/// The length of a frame that removes its key.
pub const TOMBSTONE: u32 = u32::MAX;
/// The longest value a frame may hold: a compressed segment's bound, and then some.
pub const MAX_FRAME_VALUE: u32 = (MAX_SEGMENT_BYTES as u32) + (1 << 20);
/// Prefix of the ledger's finished Merkle tiles, which it may keep in the entries file too.
pub const TILE: u8 = b'n';

/// Appends a frame for `key` (1 to [`MAX_FRAME_KEY`] bytes) to `out`: `Some(value)` sets it,
/// `None` removes it. Returns where the value starts in `out`.
pub fn push_frame(out: &mut Vec<u8>, key: &[u8], value: Option<&[u8]>) -> usize {
    assert!((1..=MAX_FRAME_KEY).contains(&key.len()), "a frame's key has 1 to 16 bytes");
    out.push(key.len() as u8);
    out.extend_from_slice(key);
    out.extend_from_slice(&[0u8; MAX_FRAME_KEY][key.len()..]);
    let len = match value {
        Some(v) => {
            u32::try_from(v.len()).ok().filter(|len| *len <= MAX_FRAME_VALUE).expect("a stored value under 257 MB")
        }
        None => TOMBSTONE,
    };
    out.extend_from_slice(&len.to_be_bytes());
    let at = out.len();
    out.extend_from_slice(value.unwrap_or_default());
    at
}

/// A frame's header that cannot be one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FrameError(String);

/// A frame's key and the length of its value (`None` for a removal), from its header. The
/// key is an entry segment's, a checkpoint's (9 bytes each) or a Merkle tile's.
pub fn frame_header(header: &[u8; FRAME_HEADER]) -> Result<(&[u8], Option<u32>), FrameError> {
    let key_len = header[0] as usize;
    let key = header.get(1..1 + key_len).filter(|k| !k.is_empty() && key_len <= MAX_FRAME_KEY);
    let Some(key) = key else {
        return Err(FrameError(format!("a frame's key cannot be {key_len} bytes long")));
    };
    let known = match key[0] {
        ENTRY | CHECKPOINT => key.len() == 9,
        TILE => true,
        _ => false,
    };
    if !known {
        return Err(FrameError(format!(
            "a frame's key ({key_len} bytes, beginning with byte {:#04x}) is none the ledger writes",
            key[0]
        )));
    }
    let len = u32::from_be_bytes(header[1 + MAX_FRAME_KEY..].try_into().expect("4 bytes"));
    match len {
        TOMBSTONE => Ok((key, None)),
        len if len > MAX_FRAME_VALUE => {
            Err(FrameError(format!("a frame claims {len} bytes, more than a value can hold")))
        }
        len => Ok((key, Some(len))),
    }
}

/// A segment of entry records.
pub fn encode_segment<R: AsRef<[u8]>>(records: &[R]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.iter().map(|r| 4 + r.as_ref().len()).sum());
    for r in records {
        push_record(&mut out, |out| out.extend_from_slice(r.as_ref()));
    }
    out
}

/// Appends one record to a segment being built, written in place by `write`, and returns
/// where the record's bytes are in `segment`. Records longer than `u32::MAX` bytes cannot be
/// stored (events are limited far below that); this panics on one.
pub fn push_record(segment: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) -> std::ops::Range<usize> {
    let at = segment.len();
    segment.extend_from_slice(&[0u8; 4]);
    write(segment);
    let len = u32::try_from(segment.len() - at - 4).expect("an entry record is shorter than 4 GiB");
    segment[at..at + 4].copy_from_slice(&len.to_be_bytes());
    at + 4..segment.len()
}

/// A segment's length prefix runs past its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("segment is malformed at byte {offset}")]
pub struct SegmentError {
    /// Where the malformed record starts.
    pub offset: usize,
}

/// A stored value that is a zstd frame but does not decompress into a segment.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("compressed segment cannot be decompressed: {0}")]
pub struct UnpackError(String);

/// The first bytes of a zstd frame.
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// The largest segment a compressed value may claim to hold (a segment's 32 entries of 8 MB
/// each, 32 times the default event limit of 256 KB); a frame claiming more is refused before
/// any memory is taken for it.
pub const MAX_SEGMENT_BYTES: u64 = 256 << 20;

/// The zstd level the ledger writes segments at: level 1, at a small part of an append's cost
/// (what gateway traffic takes on disk, part by part, is in `ARCHITECTURE.md`).
const LEVEL: i32 = 1;

thread_local! {
    /// One compression context per thread: making one costs more than compressing a segment.
    static PACKER: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> = const { std::cell::RefCell::new(None) };
    /// One decompression context per thread, for the same reason (a scan of the log that made
    /// one per segment spent 13% of its time in it).
    static UNPACKER: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { std::cell::RefCell::new(None) };
}

/// A segment as the ledger stores it: one zstd frame with its content size.
pub fn pack_segment(segment: &[u8]) -> Vec<u8> {
    PACKER.with(|cell| {
        let mut cell = cell.borrow_mut();
        let packer = match cell.as_mut() {
            Some(p) => p,
            None => cell.insert(zstd::bulk::Compressor::new(LEVEL).expect("a zstd context at level 1")),
        };
        packer.compress(segment).expect("compressing into a growable buffer cannot fail")
    })
}

/// A stored segment value as a plain segment: borrowed as it is, or decompressed if it is a
/// zstd frame (see the module docs).
pub fn unpack_segment(value: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, UnpackError> {
    if !value.starts_with(&ZSTD_MAGIC) {
        return Ok(std::borrow::Cow::Borrowed(value));
    }
    let bad = UnpackError;
    let size = match zstd::zstd_safe::get_frame_content_size(value) {
        Ok(Some(size)) => size,
        Ok(None) => return Err(bad("the frame does not state its content size".into())),
        Err(_) => return Err(bad("the frame header is malformed".into())),
    };
    if size > MAX_SEGMENT_BYTES {
        return Err(bad(format!("the frame claims {size} bytes, more than a segment can hold")));
    }
    let plain = UNPACKER
        .with(|cell| {
            let mut cell = cell.borrow_mut();
            let unpacker = match cell.as_mut() {
                Some(u) => u,
                None => cell.insert(zstd::bulk::Decompressor::new()?),
            };
            unpacker.decompress(value, size as usize)
        })
        .map_err(|e| bad(e.to_string()))?;
    if plain.len() as u64 != size {
        return Err(bad(format!("the frame holds {} bytes, not the {size} it states", plain.len())));
    }
    Ok(std::borrow::Cow::Owned(plain))
}

/// The entry records of a segment, in order.
pub fn segment_records(segment: &[u8]) -> impl Iterator<Item = Result<&[u8], SegmentError>> {
    let mut offset = 0usize;
    std::iter::from_fn(move || {
        if offset == segment.len() {
            return None;
        }
        let start = offset;
        let len = segment.get(offset..offset + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize);
        match len.and_then(|len| segment.get(offset + 4..offset + 4 + len)) {
            Some(record) => {
                offset += 4 + record.len();
                Some(Ok(record))
            }
            None => {
                offset = segment.len();
                Some(Err(SegmentError { offset: start }))
            }
        }
    })
}
