//! The committed JSON Schema files equal what the Rust types generate.
//! `UPDATE_SCHEMAS=1 cargo test -p evidence-schemas --test schema_files` rewrites them.

use std::path::Path;

use evidence_schemas::schema::{schema_files, to_pretty};

#[test]
fn committed_schema_files_match_the_types() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("json");
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    let mut stale = Vec::new();
    for (path, schema) in schema_files() {
        let file = root.join(&path);
        let want = to_pretty(&schema);
        let have = std::fs::read_to_string(&file).unwrap_or_default();
        if have != want {
            if update {
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(&file, want).unwrap();
            } else {
                stale.push(path);
            }
        }
    }
    assert!(
        stale.is_empty(),
        "schema files differ from the Rust types: {stale:?}; run UPDATE_SCHEMAS=1 cargo test -p evidence-schemas --test schema_files"
    );
}

#[test]
fn every_schema_file_is_a_valid_draft_2020_12_schema() {
    for (path, schema) in schema_files() {
        assert!(jsonschema::meta::is_valid(&schema), "{path} is not a valid JSON Schema");
    }
}
