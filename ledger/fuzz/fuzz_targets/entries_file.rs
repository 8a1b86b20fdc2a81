//! cargo-fuzz target `entries_file`: the body shared with CI's stable run, `entries_file_target`.
#![no_main]

#[path = "../../tests/fuzz_targets/mod.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::entries_file_target(data));
