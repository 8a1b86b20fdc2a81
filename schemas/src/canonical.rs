//! RFC 8785 (JCS) canonical JSON of a parsed value, written in one pass: object members in
//! the order of their names' UTF-16 code units, strings escaped as RFC 8785 §3.2.2.2 says
//! (which is how serde_json escapes them: `\b \t \n \f \r \" \\`, other controls as
//! lowercase `\u00hh`, everything else as it is), integers as their digits. Events are
//! nearly all strings, integers and objects; a value holding any non-integer number goes
//! whole through `serde_json_canonicalizer`, whose ECMAScript number formatting this module
//! does not repeat. The tests hold the two to the same bytes.
//!
//! Why by hand: the crate builds a UTF-16 copy of every member name and a sorted set per
//! object on every event; it was a fifth of `evidence ingest`'s CPU on gateway traffic.

use std::io::Write as _;

use serde_json::Value;

/// The canonical bytes of `value`.
pub fn to_vec(value: &Value) -> Result<Vec<u8>, serde_json::Error> {
    if has_fraction(value) {
        return serde_json_canonicalizer::to_vec(value);
    }
    let mut out = Vec::with_capacity(1024);
    write(value, &mut out)?;
    Ok(out)
}

/// Whether any number in `value` is not an integer.
fn has_fraction(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(has_fraction),
        Value::Object(map) => map.values().any(has_fraction),
        _ => false,
    }
}

/// A string as RFC 8785 writes it: as it is between quotes when nothing in it needs an escape
/// (nearly every string of an event), else as serde_json escapes it.
fn write_str(s: &str, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    // Without a short cut, so that the loop is vectorized: the strings are short.
    if s.bytes().fold(false, |any, b| any | (b < 0x20) | (b == b'"') | (b == b'\\')) {
        return serde_json::to_writer(&mut *out, s);
    }
    out.reserve(s.len() + 2);
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
    Ok(())
}

fn write(value: &Value, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => write!(out, "{n}").map_err(serde_json::Error::io)?,
        Value::String(s) => write_str(s, out)?,
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // serde_json's map is ordered by UTF-8 bytes, which is code point order; UTF-16
            // order differs from it only for names with characters from U+E000 up.
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            if map.keys().any(|k| k.chars().any(|c| c >= '\u{e000}')) {
                members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            }
            out.push(b'{');
            for (i, (name, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(name, out)?;
                out.push(b':');
                write(item, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator of JSON values with awkward names and strings.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            self.0 >> 33
        }

        fn text(&mut self) -> String {
            const PIECES: [&str; 14] = [
                "a",
                "Z",
                "é",
                "\u{1f600}",
                "\u{e000}",
                "\u{ffff}",
                "\u{7f}",
                "\u{0}",
                "\u{1f}",
                "\"",
                "\\",
                "/",
                "\n",
                "\u{2028}",
            ];
            (0..self.next() % 5).map(|_| PIECES[(self.next() % PIECES.len() as u64) as usize]).collect()
        }

        fn value(&mut self, depth: u32) -> Value {
            match self.next() % if depth > 3 { 4 } else { 6 } {
                0 => Value::Null,
                1 => Value::Bool(self.next().is_multiple_of(2)),
                2 => Value::from(self.next() as i64 - (1 << 30)),
                3 => Value::String(self.text()),
                4 => Value::Array((0..self.next() % 4).map(|_| self.value(depth + 1)).collect()),
                _ => Value::Object((0..self.next() % 5).map(|_| (self.text(), self.value(depth + 1))).collect()),
            }
        }
    }

    #[test]
    fn the_same_bytes_as_serde_json_canonicalizer() {
        let mut gen = Gen(7);
        for _ in 0..20_000 {
            let value = gen.value(0);
            assert_eq!(
                String::from_utf8(to_vec(&value).unwrap()).unwrap(),
                String::from_utf8(serde_json_canonicalizer::to_vec(&value).unwrap()).unwrap(),
                "{value:?}"
            );
        }
        for text in [r#"{"b":1.5,"a":[1e21,0.000001,-0.0,2]}"#, r#"{"\ue000":1,"\ud83d\ude00":2,"z":-0}"#] {
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(to_vec(&value).unwrap(), serde_json_canonicalizer::to_vec(&value).unwrap(), "{text}");
        }
    }
}
