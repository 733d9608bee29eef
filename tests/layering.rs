//! The library's layers (README, "Architecture → Layers"): each top-level
//! module of `src/` may use only modules of the layers below its own. The
//! test reads every source file, takes the `crate::MODULE` paths of its code
//! (comments and `#[cfg(test)] mod tests` left out: a doc link or a test may
//! look anywhere), and fails on an import that reaches sideways or up,
//! naming the file, the module it reaches and the layers it may use.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// Bottom first. A module uses only modules of earlier layers.
const LAYERS: &[(&str, &[&str])] = &[
    ("foundations", &["error", "env", "ids", "backoff"]),
    ("shared plumbing; the log port", &["sqlite", "logs"]),
    ("ports and their local stores", &["table", "objects", "topic", "batch"]),
    ("the local Batch engine; the pipeline spec", &["engine", "spec"]),
    ("planning; the deployment contract", &["plan", "deploy"]),
    ("the job graph", &["graph"]),
    ("the run lifecycle", &["run"]),
    ("AWS adapters; triggers; user inputs; Terraform variables", &["aws", "trigger", "inputs", "tfvars"]),
    ("backends; cost model; the Batch API server", &["backend", "cost", "batchapi"]),
    ("the job runtime; the pipeline service", &["runtime", "service"]),
    ("the web server", &["serve"]),
    ("the command line", &["cli"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, modules)| modules.contains(&module))
}

/// Top-level modules declared in `src/lib.rs`.
fn declared_modules(src: &Path) -> BTreeSet<String> {
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs");
    lib.lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l
                .strip_prefix("pub mod ")
                .or_else(|| l.strip_prefix("pub(crate) mod "))
                .or_else(|| l.strip_prefix("mod "))?;
            Some(rest.trim_end_matches(';').trim().to_owned())
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source directory") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file: without comment lines, unit test files and the
/// `#[cfg(test)] mod tests` block at its end.
fn code_of(path: &Path, text: &str) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    if name.ends_with("_tests.rs") || name == "tests.rs" {
        return None;
    }
    let text = text.find("#[cfg(test)]\nmod tests").map_or(text, |i| &text[..i]);
    Some(text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n"))
}

/// The top-level modules `code` names through `crate::`: in paths
/// (`crate::run::x`) and in grouped imports (`use crate::{run::x, spec}`).
fn crate_modules(code: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident_at =
        |s: &str| -> String { s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // A grouped import: every item at the group's top level.
            let mut depth = 0;
            let mut item_start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if c.is_whitespace() => {}
                    _ if item_start && depth == 0 => {
                        out.insert(ident_at(&group[j..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident_at(rest));
        }
    }
    out.retain(|m| known.contains(m));
    out
}

#[test]
fn every_module_uses_only_the_layers_below_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let known = declared_modules(&src);
    let unplaced: Vec<&String> = known.iter().filter(|m| layer_of(m).is_none()).collect();
    assert!(
        unplaced.is_empty(),
        "modules of src/lib.rs in no layer of tests/layering.rs: {unplaced:?}: place them"
    );

    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut problems = BTreeMap::new();
    for path in files {
        let rel = path.strip_prefix(&src).expect("under src").to_string_lossy().into_owned();
        let top = rel.split('/').next().unwrap_or_default().trim_end_matches(".rs").to_owned();
        let Some(mine) = layer_of(&top) else { continue };
        let text = std::fs::read_to_string(&path).expect("a source file");
        let Some(code) = code_of(&path, &text) else { continue };
        for used in crate_modules(&code, &known) {
            let theirs = layer_of(&used).expect("placed above");
            if used != top && theirs >= mine {
                let below: Vec<&str> = LAYERS[..mine].iter().flat_map(|(_, m)| m.iter().copied()).collect();
                problems.insert(
                    format!("src/{rel}"),
                    format!(
                        "`{top}` ({}) uses `{used}` ({}): it may use only {below:?}; move what it needs down, or the code up",
                        LAYERS[mine].0, LAYERS[theirs].0
                    ),
                );
            }
        }
    }
    assert!(
        problems.is_empty(),
        "imports that reach sideways or up:\n{}",
        problems.iter().map(|(f, p)| format!("  {f}: {p}")).collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn the_scan_sees_paths_and_grouped_imports_but_not_comments() {
    let known: BTreeSet<String> = ["run", "spec", "batch", "graph"].map(String::from).into();
    let code = "use crate::{batch::{A, B}, spec};\nfn f() { crate::run::go(); }\n";
    assert_eq!(crate_modules(code, &known), ["batch", "run", "spec"].map(String::from).into());
    let text = "//! see [`crate::graph`]\nuse crate::spec;\n#[cfg(test)]\nmod tests { use crate::graph; }\n";
    let code = code_of(Path::new("x.rs"), text).unwrap();
    assert_eq!(crate_modules(&code, &known), ["spec"].map(String::from).into());
    assert_eq!(code_of(Path::new("csv_tests.rs"), text), None);
}
