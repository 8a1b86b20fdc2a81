//! cargo-fuzz target `validator`: the body shared with CI's stable run, `validator_target`.
#![no_main]

#[path = "../../tests/fuzz_targets/mod.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::validator_target(data));
