//! Times as people and clients write them: RFC 3339 with an offset (`2026-04-03T10:15:00Z`,
//! `2026-04-03T12:15:00+02:00`), `now`, or a span before now (`90s`, `30m`, `24h`, `7d`,
//! `2w`). A time without an offset is refused with that named as the problem: which zone it
//! meant cannot be guessed, and an audit answer must not depend on the machine's.

use chrono::{DateTime, Duration, FixedOffset, NaiveDateTime, Utc};

/// Text that is not a time this ledger reads, with why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a time: {why}")]
pub struct BadTime {
    /// The text given.
    pub text: String,
    /// What is wrong, in words.
    pub why: String,
}

/// Reads `text` as a time, spans counting back from `now`.
pub fn parse_time(text: &str, now: DateTime<Utc>) -> Result<DateTime<FixedOffset>, BadTime> {
    let bad = |why: &str| BadTime { text: text.to_string(), why: why.to_string() };
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("now") {
        return Ok(now.fixed_offset());
    }
    if let Some(span) = span(trimmed) {
        let span = span.ok_or_else(|| bad("the span is too long"))?;
        return Ok((now - span).fixed_offset());
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(trimmed) {
        return Ok(t);
    }
    let naive = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
        .iter()
        .any(|f| NaiveDateTime::parse_from_str(trimmed, f).is_ok());
    if naive {
        return Err(bad("it has no UTC offset; add one, as in 2026-04-03T10:15:00Z or 2026-04-03T12:15:00+02:00"));
    }
    Err(bad(
        "write RFC 3339 with an offset (2026-04-03T10:15:00Z), `now`, or a span before now (90s, 30m, 24h, 7d, 2w)",
    ))
}

/// A span such as `24h`: `None` if the text is not one, `Some(None)` if it overflows.
fn span(text: &str) -> Option<Option<Duration>> {
    let unit = text.chars().last()?;
    let number: i64 = text[..text.len() - unit.len_utf8()].parse().ok().filter(|n| *n >= 0)?;
    let seconds = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return None,
    };
    Some(number.checked_mul(seconds).and_then(Duration::try_seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-04-10T12:00:00Z").unwrap().to_utc()
    }

    #[test]
    fn rfc3339_with_offsets_now_and_spans_are_read() {
        let t = |s| parse_time(s, now()).unwrap().to_rfc3339();
        assert_eq!(t("2026-04-03T10:15:00Z"), "2026-04-03T10:15:00+00:00");
        assert_eq!(t("2026-04-03T12:15:00+02:00"), "2026-04-03T12:15:00+02:00");
        assert_eq!(t("now"), "2026-04-10T12:00:00+00:00");
        assert_eq!(t("24h"), "2026-04-09T12:00:00+00:00");
        assert_eq!(t("7d"), "2026-04-03T12:00:00+00:00");
        assert_eq!(t("90s"), "2026-04-10T11:58:30+00:00");
    }

    #[test]
    fn a_time_without_an_offset_is_named_as_the_problem() {
        let e = parse_time("2026-04-03T10:15:00", now()).unwrap_err();
        assert!(e.why.contains("no UTC offset"), "{e}");
        assert!(parse_time("yesterday", now()).unwrap_err().why.contains("RFC 3339"));
        assert!(parse_time("-5h", now()).is_err());
        assert!(parse_time("99999999999999w", now()).unwrap_err().why.contains("too long"));
    }
}
