"""An independent checker of C2SP tlog-proof files, written from the specs alone
(c2sp.org/tlog-proof, c2sp.org/signed-note, c2sp.org/tlog-checkpoint, RFC 9162 2.1.3.2),
sharing no code with the ledger: hashlib for SHA-256, `cryptography` for Ed25519.

Usage: tlog_check.py [--witness WITNESS_KEY] VERIFIER_KEY LEAF_HASH_BASE64 PROOF_FILE
                     [LEAF_HASH_BASE64 PROOF_FILE ...]
       tlog_check.py bundle VERIFIER_KEY BUNDLE_DIR

The bundle form reads an export bundle as its format is documented (not as our code reads
it): every file's SHA-256 against manifest.json; each line of entries.ndjson turned into the
entry's leaf bytes (sequence number and receive time as 8-byte big-endian, the origin's
length as 2 bytes and the origin, then the event's bytes exactly as they stand in the line)
and its RFC 6962 leaf hash; that entry's proofs/<seq>.tlog-proof checked against it; and
every proof against the bundle's own checkpoint file. Prints one JSON object:
{"ok", "error", "entries", "size", "origin"}.

With --witness, the checkpoint must also carry a valid Ed25519 cosignature/v1
(c2sp.org/tlog-cosignature) by that witness. Prints one JSON object a proof:
{"file", "ok", "error", "index", "size", "origin", "cosigned_at"}.
"""

import base64
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HEADER = "c2sp.org/tlog-proof@v1"


class Refused(Exception):
    pass


def parse_verifier_key(text, key_type=0x01):
    """signed-note verifier key: <name>+<hex key id>+<base64(type || public key)>; type 0x01
    for a log's Ed25519 key, 0x04 for a witness's cosignature/v1 key."""
    name, key_id, material = text.split("+", 2)  # a name has no "+"; base64 may
    raw = base64.b64decode(material, validate=True)
    if raw[0] != key_type or len(raw) != 33:
        raise Refused(f"not a key of type {key_type:#04x}")
    computed = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if computed.hex() != key_id:
        raise Refused("the verifier key's id does not match its name and key")
    return name, computed, Ed25519PublicKey.from_public_bytes(raw[1:])


def note_parts(note):
    """A signed note's text and its signature lines as (name, blob)."""
    text_end = note.rfind(b"\n\n")
    if text_end < 0:
        raise Refused("the checkpoint note has no signature block")
    text, signatures = note[: text_end + 1], note[text_end + 2:]
    if not signatures.endswith(b"\n"):
        raise Refused("the signature block does not end with a newline")
    lines = []
    for line in signatures[:-1].split(b"\n"):
        if not line.startswith("\u2014 ".encode()):
            raise Refused(f"not a signature line: {line!r}")
        signer, blob = line[len("\u2014 ".encode()):].decode().rsplit(" ", 1)
        lines.append((signer, base64.b64decode(blob, validate=True)))
    return text, lines


def open_note(note, key):
    """The note's text, if a signature line by `key` verifies over it."""
    name, key_id, public = key
    text, lines = note_parts(note)
    for signer, blob in lines:
        if signer == name and blob[:4] == key_id:
            try:
                public.verify(blob[4:], text)
            except InvalidSignature:
                raise Refused("the log's signature on the checkpoint does not verify")
            return text.decode()
    raise Refused("the checkpoint is not signed by the trusted key")


def cosigned_at(note, witness):
    """The time of `witness`'s cosignature/v1 on the note (c2sp.org/tlog-cosignature)."""
    name, key_id, public = witness
    text, lines = note_parts(note)
    for signer, blob in lines:
        if signer == name and blob[:4] == key_id:
            if len(blob) != 4 + 8 + 64:
                raise Refused("the cosignature is not a timestamped Ed25519 signature")
            timestamp = int.from_bytes(blob[4:12], "big")
            message = b"cosignature/v1\ntime " + str(timestamp).encode() + b"\n" + text
            try:
                public.verify(blob[12:], message)
            except InvalidSignature:
                raise Refused("the witness's cosignature does not verify")
            return timestamp
    raise Refused("the checkpoint is not cosigned by the witness")


def parse_checkpoint(text):
    lines = text[:-1].split("\n")
    origin, size, root = lines[0], lines[1], lines[2]
    if not size.isdigit() or (len(size) > 1 and size[0] == "0"):
        raise Refused("checkpoint size is not a decimal")
    root = base64.b64decode(root, validate=True)
    if len(root) != 32:
        raise Refused("checkpoint root is not 32 bytes")
    return origin, int(size), root


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion(index, size, leaf, path):
    """RFC 9162, 2.1.3.2."""
    if index >= size:
        raise Refused("index beyond the tree")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise Refused("the inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Refused("the inclusion proof is too short")
    return r


def check(data, leaf, key, witness=None):
    head, sep, note = data.partition(b"\n\n")
    if not sep:
        raise Refused("no empty line before the checkpoint")
    lines = head.decode().split("\n")
    if lines[0] != HEADER:
        raise Refused("wrong header")
    rest = lines[1:]
    if rest and rest[0].startswith("extra "):
        base64.b64decode(rest[0][6:], validate=True)
        rest = rest[1:]
    if not rest or not rest[0].startswith("index "):
        raise Refused("no index line")
    index = rest[0][6:]
    if not index.isdigit() or (len(index) > 1 and index[0] == "0"):
        raise Refused("index is not a decimal without leading zeroes")
    path = [base64.b64decode(line, validate=True) for line in rest[1:]]
    if any(len(h) != 32 for h in path):
        raise Refused("a proof hash is not 32 bytes")
    origin, size, root = parse_checkpoint(open_note(note, key))
    if root_from_inclusion(int(index), size, leaf, path) != root:
        raise Refused("the inclusion proof does not lead to the checkpoint's root")
    at = cosigned_at(note, witness) if witness else None
    return int(index), size, origin, at


def check_bundle(key, root):
    import os

    with open(os.path.join(root, "manifest.json"), "rb") as f:
        manifest = json.load(f)
    present = set()
    for base, _, names in os.walk(root):
        for name in names:
            present.add(os.path.relpath(os.path.join(base, name), root).replace(os.sep, "/"))
    if present - {"manifest.json"} != set(manifest["files"]):
        raise Refused("the files are not those of the manifest")
    for name, digest in manifest["files"].items():
        with open(os.path.join(root, name), "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != digest:
                raise Refused(f"{name} does not match the manifest")
    with open(os.path.join(root, "checkpoint"), "rb") as f:
        checkpoint = f.read()
    origin, size, _ = parse_checkpoint(open_note(checkpoint, key))
    count = 0
    with open(os.path.join(root, "entries.ndjson"), "rb") as f:
        for line in f:
            line = line.rstrip(b"\n")
            entry = json.loads(line)
            marker = b',"event":'
            event = line[line.index(marker) + len(marker) : -1]
            origin_bytes = entry["origin"].encode()
            leaf_bytes = (
                entry["seq"].to_bytes(8, "big")
                + entry["received_micros"].to_bytes(8, "big", signed=True)
                + len(origin_bytes).to_bytes(2, "big")
                + origin_bytes
                + event
            )
            leaf = hashlib.sha256(b"\x00" + leaf_bytes).digest()
            with open(os.path.join(root, "proofs", f"{entry['seq']}.tlog-proof"), "rb") as p:
                data = p.read()
            if data.partition(b"\n\n")[2] != checkpoint:
                raise Refused(f"the proof of entry {entry['seq']} is against another checkpoint")
            index, _, _, _ = check(data, leaf, key)
            if index != entry["seq"]:
                raise Refused(f"the proof of entry {entry['seq']} is of entry {index}")
            count += 1
    return {"ok": True, "entries": count, "size": size, "origin": origin}


def main(argv):
    if argv[0] == "bundle":
        try:
            result = check_bundle(parse_verifier_key(argv[1]), argv[2])
        except (Refused, ValueError, KeyError, OSError) as e:
            result = {"ok": False, "error": str(e) or type(e).__name__}
        print(json.dumps(result))
        return
    witness = None
    if argv[0] == "--witness":
        witness = parse_verifier_key(argv[1], key_type=0x04)
        argv = argv[2:]
    key = parse_verifier_key(argv[0])
    pairs = argv[1:]
    for leaf_b64, path in zip(pairs[0::2], pairs[1::2]):
        result = {"file": path, "ok": False}
        try:
            with open(path, "rb") as f:
                index, size, origin, at = check(f.read(), base64.b64decode(leaf_b64, validate=True), key, witness)
            result.update(ok=True, index=index, size=size, origin=origin, cosigned_at=at)
        except (Refused, ValueError, UnicodeDecodeError, IndexError) as e:
            result["error"] = str(e) or type(e).__name__
        print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
