//! cargo-fuzz target `store`: the body shared with CI's stable run, `store_target`.
#![no_main]

#[path = "../../tests/fuzz_targets/mod.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::store_target(data));
