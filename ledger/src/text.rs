//! Text for people: what a producer wrote, made safe to print on a terminal. Every string a
//! producer controls passes through [`esc`] in the tables and sentences the ledger prints, so
//! that control characters (an escape sequence, a carriage return, a newline) and
//! bidirectional overrides show as escapes instead of moving the cursor, rewriting a line or
//! forging one. JSON output needs none of this: serde escapes as JSON does.

use std::fmt;

/// A string shown with its control and bidirectional-override characters escaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Escaped<'a>(pub &'a str);

/// `s`, to be printed escaped.
pub fn esc(s: &str) -> Escaped<'_> {
    Escaped(s)
}

/// Whether `c` must not reach a terminal as it is.
fn unsafe_char(c: char) -> bool {
    // C0 and C1 controls, DEL, and the Unicode bidi embeddings, overrides and isolates.
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.0.chars().any(unsafe_char) {
            return f.pad(self.0);
        }
        let mut out = String::with_capacity(self.0.len() + 8);
        for c in self.0.chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
                c => out.push(c),
            }
        }
        f.pad(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_overrides_are_escaped_and_the_rest_kept() {
        let shown = esc("ana\x1b[2K\r...\nFORGED LINE\u{202e}txt.exe").to_string();
        assert_eq!(shown, "ana\\u{1b}[2K\\r...\\nFORGED LINE\\u{202e}txt.exe");
        assert_eq!(esc("plain text, ünïcode, 日本").to_string(), "plain text, ünïcode, 日本");
        assert_eq!(format!("[{:<6}]", esc("a\tb")), "[a\\tb  ]", "padding applies to what is shown");
        assert_eq!(esc("\u{9b}31m").to_string(), "\\u{9b}31m", "the C1 control sequence introducer");
    }
}
