//! Strict JSON: an event's text parsed into a [`Value`] in one pass that also finds what plain
//! parsing would let through silently. Each such problem is reported with its JSON pointer:
//! - a key repeated in one object (plain parsing keeps the last value, so a tool reading the
//!   first would see another event than the ledger stored): the pointer of the repetition;
//! - a number beyond ±(2^53 − 1): canonical JSON (RFC 8785) writes numbers as IEEE doubles,
//!   which keep integers exact only up to there; stored, such an integer would become another
//!   number, and two different events the same one. (A larger number arriving as a double,
//!   `1e300` or an integer too large for 64 bits, cannot be told apart from an inexact one, and
//!   no field of the contract needs it: it is refused too.)
//!
//! Syntax errors are serde_json's, with their line and column.

use std::fmt::Write as _;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::validate::Problem;

/// The largest integer magnitude a canonical number keeps exactly: 2^53 − 1.
pub const MAX_EXACT_INTEGER: u64 = (1 << 53) - 1;

/// Parses `text`, collecting repeated keys and numbers beyond 2^53 − 1 into `problems`.
pub(crate) fn parse(text: &str, problems: &mut Vec<Problem>) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let mut path = String::new();
    let value = Strict { path: &mut path, problems }.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Appends `key` to a JSON pointer, escaped as RFC 6901 says.
fn push_token(path: &mut String, key: &str) {
    path.push('/');
    // Nearly every key has neither: one copy.
    if !key.bytes().any(|b| b == b'~' || b == b'/') {
        path.push_str(key);
        return;
    }
    for c in key.chars() {
        match c {
            '~' => path.push_str("~0"),
            '/' => path.push_str("~1"),
            c => path.push(c),
        }
    }
}

struct Strict<'a> {
    /// The pointer of the value being parsed.
    path: &'a mut String,
    problems: &'a mut Vec<Problem>,
}

impl Strict<'_> {
    fn inexact(&mut self, shown: &dyn std::fmt::Display) {
        self.problems.push(Problem {
            pointer: self.path.clone(),
            message: format!(
                "the number {shown} is beyond ±{MAX_EXACT_INTEGER} (2^53 - 1), where canonical JSON stops keeping integers exact"
            ),
        });
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_u64<E>(mut self, v: u64) -> Result<Value, E> {
        if v > MAX_EXACT_INTEGER {
            self.inexact(&v);
        }
        Ok(Value::Number(v.into()))
    }

    fn visit_i64<E>(mut self, v: i64) -> Result<Value, E> {
        if v.unsigned_abs() > MAX_EXACT_INTEGER {
            self.inexact(&v);
        }
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(mut self, v: f64) -> Result<Value, E> {
        // Beyond 2^53 a double holds only integers, and which literal it came from (exact or
        // not) is lost: no field of the contract needs such a number.
        if v.abs() > MAX_EXACT_INTEGER as f64 {
            self.inexact(&v);
        } else if v.fract() == 0.0 {
            // Canonical JSON writes an integral double (`1.0`, `1e2`, `-0.0`) as an integer,
            // which reads back as one: held as the integer here, the event the ledger acts on
            // is the event its stored bytes read back as, and an integer field takes it.
            return Ok(Value::Number((v as i64).into()));
        }
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        let base = self.path.len();
        loop {
            let _ = write!(self.path, "/{}", out.len());
            let item = seq.next_element_seed(Strict { path: &mut *self.path, problems: &mut *self.problems })?;
            self.path.truncate(base);
            match item {
                Some(item) => out.push(item),
                None => return Ok(Value::Array(out)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        let base = self.path.len();
        while let Some(key) = map.next_key::<String>()? {
            push_token(self.path, &key);
            if out.contains_key(&key) {
                self.problems.push(Problem {
                    pointer: self.path.clone(),
                    message: format!("the key {key:?} appears more than once in this object"),
                });
            }
            let value = map.next_value_seed(Strict { path: &mut *self.path, problems: &mut *self.problems })?;
            self.path.truncate(base);
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: &[(&str, &str)]) {
        let mut problems = Vec::new();
        let value = parse(text, &mut problems).unwrap();
        let got: Vec<(String, String)> = problems.into_iter().map(|p| (p.pointer, p.message)).collect();
        assert_eq!(got.len(), expected.len(), "{text}: {got:?}");
        for ((pointer, message), (want_pointer, want_part)) in got.iter().zip(expected) {
            assert_eq!(pointer, want_pointer, "{text}");
            assert!(message.contains(want_part), "{text}: {message}");
        }
        if expected.is_empty() {
            let plain = serde_json::from_str::<Value>(text).unwrap();
            let canonical = |v: &Value| serde_json_canonicalizer::to_vec(v).unwrap();
            assert_eq!(canonical(&value), canonical(&plain), "the same JSON as plain parsing: {text}");
        }
    }

    #[test]
    fn repeated_keys_are_found_at_their_repetition() {
        check(r#"{"id":"dupA","id":"dupB"}"#, &[("/id", r#"the key "id" appears more than once"#)]);
        check(r#"{"data":{"a":[{"x/y~":1,"x/y~":2}]}}"#, &[("/data/a/0/x~1y~0", "appears more than once")]);
        check(r#"{"a":{"b":1},"c":{"b":2}}"#, &[]);
    }

    #[test]
    fn integers_beyond_two_to_the_53_are_found() {
        check(r#"{"n":9007199254740991,"m":-9007199254740991,"f":1.5,"e":1e15,"s":-2.5e-300}"#, &[]);
        check(r#"{"e":1e300}"#, &[("/e", "beyond")]);
        check(r#"{"n":9007199254740992}"#, &[("/n", "beyond ±9007199254740991")]);
        check(r#"{"d":{"t":18446744073709551615}}"#, &[("/d/t", "18446744073709551615")]);
        check(r#"[-9223372036854775808]"#, &[("/0", "beyond")]);
        check(r#"{"big":18446744073709551616}"#, &[("/big", "beyond")]);
    }

    #[test]
    fn integral_doubles_are_the_integers_their_canonical_form_reads_back_as() {
        for text in [r#"{"r":1.0}"#, r#"{"r":1e2}"#, r#"{"r":-0.0}"#, r#"{"r":-3.000}"#, r#"{"r":[2.5,4E0]}"#] {
            let value = parse(text, &mut Vec::new()).unwrap();
            let canonical = serde_json_canonicalizer::to_vec(&value).unwrap();
            let back: Value = serde_json::from_slice(&canonical).unwrap();
            assert_eq!(value, back, "{text} -> {}", String::from_utf8_lossy(&canonical));
        }
        let value = parse(r#"{"r":1.0,"s":2.5}"#, &mut Vec::new()).unwrap();
        assert!(value["r"].is_i64() && value["s"].is_f64());
    }

    #[test]
    fn syntax_errors_keep_their_place() {
        let err = parse("{\"a\":\n  tru}", &mut Vec::new()).unwrap_err();
        assert_eq!((err.line(), err.column()), (2, 6));
        assert!(parse("{} x", &mut Vec::new()).is_err(), "trailing characters");
    }
}
