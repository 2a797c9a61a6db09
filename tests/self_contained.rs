//! The repository stands on its own (docs/architecture.md style rule 17,
//! issue 22): no tracked file refers to a file outside it. The contract
//! is `docs/contract.md` and the code-style rules are in
//! `docs/architecture.md`; a citation of the old design and style files
//! that lived beside the repository is a broken link for whoever clones
//! it. `scripts/cite-contract.sh` rewrites such citations.
//!
//! Walks `git ls-files` from the crate root and fails, listing every
//! `file:line`, on a line that contains the parent directory's `shared`
//! (spelled `..` + `/shared` here, so that this file does not hold it), `DESIGN.md`,
//! `STYLE.md`, `STYLE §`, or the upper-case word `DESIGN` (which covers
//! `DESIGN §N`, a citation cut at the end of a line, and "DESIGN has no
//! row"). This file is the only exception. Needs `git`: without it, or
//! outside a git checkout, the test fails and says so.
//!
//! Also: no source file but `src/app.rs` takes the whole `App` (`&App`,
//! `Arc<App>`); each plane gets its own state (docs/architecture.md
//! "State per plane").

use std::path::Path;
use std::process::Command;

/// This file, which has to spell the patterns it looks for.
const SELF: &str = "tests/self_contained.rs";

/// Substrings that point outside the repository.
const OUTSIDE: [&str; 4] = [concat!("..", "/shared"), "DESIGN.md", "STYLE.md", "STYLE §"];

/// The tracked files, relative to `root`.
fn tracked_files(root: &Path) -> Vec<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["ls-files", "-z"])
        .output()
        .unwrap_or_else(|e| {
            panic!("this test needs `git` on the PATH to list the repository's files: {e}")
        });
    assert!(
        output.status.success(),
        "`git ls-files` failed in {} (is this a git checkout?): {}",
        root.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .split('\0')
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether `line` holds `word` with no letter, digit or `_` on either side.
fn has_word(line: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    line.match_indices(word).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + word.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// Whether `line` refers to a file outside the repository.
fn points_outside(line: &str) -> bool {
    OUTSIDE.iter().any(|p| line.contains(p)) || has_word(line, "DESIGN")
}

/// `file:line: text` for every offending line of one file; binary files
/// (holding a NUL byte) and files missing from the work tree are skipped.
fn offending_lines(root: &Path, name: &str) -> Vec<String> {
    let bytes = match std::fs::read(root.join(name)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("cannot read {name}: {e}"),
    };
    if bytes.contains(&0) {
        return Vec::new();
    }
    String::from_utf8_lossy(&bytes)
        .lines()
        .enumerate()
        .filter(|(_, line)| points_outside(line))
        .map(|(i, line)| format!("{name}:{}: {}", i + 1, line.trim()))
        .collect()
}

#[test]
fn no_file_refers_outside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = tracked_files(root);
    assert!(
        files.iter().any(|f| f == "Cargo.toml"),
        "`git ls-files` in {} did not list Cargo.toml",
        root.display()
    );
    let found: Vec<String> = files
        .iter()
        .filter(|name| name.as_str() != SELF)
        .flat_map(|name| offending_lines(root, name))
        .collect();
    assert!(
        found.is_empty(),
        "{} line(s) refer to a file outside the repository; cite `docs/contract.md §N` \
         and `docs/architecture.md style rule N` instead (scripts/cite-contract.sh does it):\n{}",
        found.len(),
        found.join("\n")
    );
}

#[test]
fn the_patterns_catch_every_form_of_citation() {
    for cited in [
        "//! The control chain of DESIGN §2, one module per control",
        "(DESIGN §7 and §10)",
        "its own (DESIGN.md §7 \"Evidence that survives the disk\", STYLE.md 14),",
        "/// What the token endpoint may read (STYLE §11): this environment's",
        concat!("The contract is `..", "/shared/DESIGN.md`;"),
        "are ours (DESIGN has no row for",
        "/// dates, `remote` inside its IP allowlist (the chain's step 2 rule, DESIGN",
    ] {
        assert!(points_outside(cited), "not caught: {cited}");
    }
    for fine in [
        "//! The control chain of docs/contract.md §2, one module per control",
        "(docs/contract.md §7 and §10)",
        "const STYLE: &str = \"body{font-family:system-ui}\";",
        "style { (PreEscaped(STYLE)) }",
        "persistence_cli::pki_init_writes_the_design_files",
        "OPALE CGU §11-§12",
    ] {
        assert!(!points_outside(fine), "caught by mistake: {fine}");
    }
}

/// Whether `line` hands the whole `App` around.
fn takes_the_app(line: &str) -> bool {
    line.contains("Arc<App>")
        || line
            .match_indices("&App")
            .any(|(at, _)| !line[at + 4..].starts_with(|c: char| c.is_alphanumeric() || c == '_'))
}

#[test]
fn only_the_builder_takes_the_app() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found: Vec<String> = tracked_files(root)
        .iter()
        .filter(|name| name.starts_with("src/") && name.ends_with(".rs") && *name != "src/app.rs")
        .flat_map(|name| {
            let text = std::fs::read_to_string(root.join(name)).unwrap_or_default();
            text.lines()
                .enumerate()
                .filter(|(_, line)| takes_the_app(line))
                .map(|(i, line)| format!("{name}:{}: {}", i + 1, line.trim()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        found.is_empty(),
        "only src/app.rs may take the whole App; give the plane its own state:\n{}",
        found.join("\n")
    );
    assert!(takes_the_app("fn f(app: &App) {"));
    assert!(takes_the_app("app: Arc<App>,"));
    assert!(!takes_the_app("fn f(a: &AppError) {"));
}
