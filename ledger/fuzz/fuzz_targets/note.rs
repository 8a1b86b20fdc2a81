//! cargo-fuzz target `note`: the body shared with CI's stable run, `note_target`.
#![no_main]

#[path = "../../tests/fuzz_targets/mod.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::note_target(data));
