//! The house rules of `ledger/src`, checked on the source text (like rust-analyzer's tidy):
//! every file opens with a `//!` paragraph, no file is over 600 lines, no function outside
//! tests is over 80 lines, no two modules import each other (a module and its own submodules
//! excepted: a folder's files extend the types of its `mod.rs`), and the concerns depend on
//! each other one way only.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 600;
const MAX_FN_LINES: usize = 80;

/// `ledger/src`, or the tree `TIDY_SRC` names (to show the rules catching an older tree).
fn src() -> PathBuf {
    std::env::var_os("TIDY_SRC").map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), PathBuf::from)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for item in std::fs::read_dir(dir).unwrap() {
        let path = item.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The library's files with their module paths (`log::append`; `""` for `lib.rs`). The
/// binary's files are checked for size but are not library modules.
fn modules() -> BTreeMap<String, PathBuf> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut out = BTreeMap::new();
    for path in files {
        let rel = path.strip_prefix(src()).unwrap().with_extension("");
        let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        if parts.first().is_some_and(|p| p == "bin") {
            continue;
        }
        if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
            parts.pop();
        }
        out.insert(parts.join("::"), path);
    }
    out
}

/// The code of a file without its `#[cfg(test)]` module and without comments.
fn code(text: &str) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    let end = lines
        .windows(2)
        .position(|w| w[0].trim() == "#[cfg(test)]" && w[1].trim_start().starts_with("mod tests"))
        .unwrap_or(lines.len());
    lines[..end].iter().copied().filter(|l| !l.trim_start().starts_with("//")).collect()
}

#[test]
fn every_file_opens_with_what_it_owns() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let missing: Vec<_> = files
        .iter()
        .filter(|p| !std::fs::read_to_string(p).unwrap().starts_with("//!"))
        .map(|p| p.display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without a //! paragraph: {missing:?}");
}

#[test]
fn files_and_functions_stay_small() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    assert!(files.len() > 10, "found only {} files", files.len());
    let mut problems = Vec::new();
    let mut functions = 0;
    let mut longest = 0;
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let lines = text.lines().count();
        if lines > MAX_FILE_LINES {
            problems.push(format!("{}: {lines} lines", path.display()));
        }
        let code = code(&text);
        for (n, line) in code.iter().enumerate() {
            let indent = line.len() - line.trim_start().len();
            let head = line.trim_start();
            let is_fn = ["fn ", "pub fn ", "pub(crate) fn ", "pub(super) fn ", "async fn ", "pub async fn "]
                .iter()
                .any(|p| head.starts_with(p));
            if !is_fn || head.ends_with(';') {
                continue;
            }
            functions += 1;
            let close = format!("{}}}", " ".repeat(indent));
            let len = if head.trim_end().ends_with('}') {
                1
            } else {
                code[n..].iter().position(|l| *l == close).map_or(1, |end| end + 1)
            };
            longest = longest.max(len);
            if len > MAX_FN_LINES {
                problems.push(format!("{}: `{}` is {len} lines", path.display(), head.trim_end_matches(" {")));
            }
        }
    }
    println!("{} files, {functions} functions, the longest {longest} lines", files.len());
    assert!(functions > 150, "found only {functions} functions");
    assert!(problems.is_empty(), "too long:\n{}", problems.join("\n"));
}

/// Every module path a file names (`use crate::...`, `use super::...`, `crate::x::y` in code),
/// resolved to the longest known module it starts with.
fn imports(module: &str, text: &str, known: &BTreeMap<String, PathBuf>) -> BTreeSet<String> {
    let here: Vec<&str> = if module.is_empty() { Vec::new() } else { module.split("::").collect() };
    let code = code(text).join("\n");
    let mut out = BTreeSet::new();
    for (start, prefix) in code.match_indices("crate::").chain(code.match_indices("super::")) {
        if code[..start].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let mut base: Vec<String> = if prefix == "crate::" {
            Vec::new()
        } else {
            // A file `a/b.rs` is module `a::b`: `super` is `a`.
            here[..here.len().saturating_sub(1)].iter().map(|s| s.to_string()).collect()
        };
        let rest = &code[start + prefix.len()..];
        let mut segments = Vec::new();
        if let Some(group) = rest.strip_prefix('{') {
            // `use super::{a, b::c}`: each first segment.
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for item in inner.split(',') {
                segments.push(item.trim().split("::").next().unwrap_or("").to_string());
            }
        } else {
            let path: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
            segments.extend(path.split("::").filter(|s| !s.is_empty()).map(str::to_string));
            segments.truncate(4);
        }
        for group_item in if rest.starts_with('{') { segments.clone() } else { vec![segments.join("::")] } {
            let mut path = base.clone();
            path.extend(group_item.split("::").filter(|s| !s.is_empty()).map(str::to_string));
            while !path.is_empty() && !known.contains_key(&path.join("::")) {
                path.pop();
            }
            let target = path.join("::");
            if target != module {
                out.insert(target);
            }
        }
        base.clear();
    }
    out
}

fn is_within(inner: &str, outer: &str) -> bool {
    outer.is_empty() || inner == outer || inner.starts_with(&format!("{outer}::"))
}

#[test]
fn no_two_modules_import_each_other_and_concerns_depend_one_way() {
    let known = modules();
    let edges: BTreeMap<String, BTreeSet<String>> = known
        .iter()
        .map(|(m, path)| (m.clone(), imports(m, &std::fs::read_to_string(path).unwrap(), &known)))
        .collect();
    let found: usize = edges.values().map(BTreeSet::len).sum();
    assert!(found > 10, "the import scan found only {found} imports");
    let mut pairs = Vec::new();
    for (a, targets) in &edges {
        for b in targets {
            if is_within(a, b) || is_within(b, a) {
                continue;
            }
            if edges.get(b).is_some_and(|back| back.contains(a)) && a < b {
                pairs.push(format!("{a} <-> {b}"));
            }
        }
    }
    assert!(pairs.is_empty(), "modules importing each other:\n{}", pairs.join("\n"));
    // The concerns (top-level modules): no cycle at all.
    let top = |m: &str| m.split("::").next().unwrap_or("").to_string();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, targets) in &edges {
        for b in targets {
            if !a.is_empty() && !b.is_empty() && top(a) != top(b) {
                graph.entry(top(a)).or_default().insert(top(b));
            }
        }
    }
    fn reaches(graph: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str, seen: &mut BTreeSet<String>) -> bool {
        graph
            .get(from)
            .into_iter()
            .flatten()
            .any(|n| n == to || (seen.insert(n.clone()) && reaches(graph, n, to, seen)))
    }
    let cycles: Vec<String> = graph
        .keys()
        .filter(|m| reaches(&graph, m, m, &mut BTreeSet::new()))
        .map(|m| format!("{m} -> {:?}", graph[m]))
        .collect();
    assert!(cycles.is_empty(), "concerns in a cycle:\n{}", cycles.join("\n"));
    println!("concerns: {graph:#?}");
}
