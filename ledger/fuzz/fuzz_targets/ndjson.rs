//! cargo-fuzz target `ndjson`: the body shared with CI's stable run, `ndjson_target`.
#![no_main]

#[path = "../../tests/fuzz_targets/mod.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::ndjson_target(data));
