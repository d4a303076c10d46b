//! The floor plan of `src/` (ARCHITECTURE.md): each layer imports only the layers below it.
//! Read from the code's own `crate::` paths, so a change that reaches up fails here.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The layers from the bottom; a module may use its own layer and those before it.
const LAYERS: [&str; 8] = [
    "ffi", "config", "figures", "host", "respond", "daemon", "serve", "module",
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| *l == module)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a file names through `crate::`, also inside `use crate::{a, b::c}`.
fn crate_modules(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Only the first segment of each item (nested braces belong to a later segment).
            let mut depth = 0;
            let mut item_start = true;
            let mut current = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        item_start = true;
                        names.push(std::mem::take(&mut current));
                        continue;
                    }
                    _ => {}
                }
                if item_start && depth == 0 {
                    if c.is_alphanumeric() || c == '_' {
                        current.push(c);
                    } else if !current.is_empty() {
                        item_start = false;
                    }
                }
            }
            names.push(current);
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            names.push(name);
        }
    }
    names.retain(|n| !n.is_empty() && n != "self");
    names
}

#[test]
fn every_layer_imports_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut breaks: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut seen_layers = 0;
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative.iter().next().unwrap().to_string_lossy();
        let top = top.trim_end_matches(".rs");
        if top == "lib" {
            continue;
        }
        let own = layer(top).unwrap_or_else(|| {
            panic!(
                "src/{top} is in no layer of the floor plan: add it to LAYERS and ARCHITECTURE.md"
            )
        });
        seen_layers |= 1 << own;
        let text = fs::read_to_string(file).unwrap();
        for used in crate_modules(&text) {
            match layer(&used) {
                Some(used_layer) if used_layer > own => breaks
                    .entry(format!("src/{}", relative.display()))
                    .or_default()
                    .push(format!("crate::{used} (layer {used_layer} above {own})")),
                Some(_) => {}
                None => panic!(
                    "src/{} uses crate::{used}, which is in no layer",
                    relative.display()
                ),
            }
        }
    }
    assert_eq!(seen_layers, (1 << LAYERS.len()) - 1, "a layer has no files");
    assert!(
        breaks.is_empty(),
        "imports that reach up a layer: {breaks:#?}"
    );
}

#[test]
fn the_reader_finds_grouped_and_nested_imports() {
    let text = "use crate::config::{A, B};\nuse crate::{ffi::{self, X}, host::Y};\nlet x = crate::serve::f();";
    assert_eq!(crate_modules(text), ["config", "ffi", "host", "serve"]);
}
