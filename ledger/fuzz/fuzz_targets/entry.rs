//! cargo-fuzz target `entry`: the body shared with CI's stable run, `entry_target`.
#![no_main]

#[path = "../../tests/fuzz_targets/mod.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::entry_target(data));
