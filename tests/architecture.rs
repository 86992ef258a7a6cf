//! The invariants ARCHITECTURE.md states, checked on the source tree: each is a plain text
//! search over `src/` (code lines only: comments are skipped), so a change that breaks one fails
//! here with the file and line named.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The path relative to src/, with forward slashes.
fn rel(path: &Path) -> String {
    path.strip_prefix(src()).unwrap().to_string_lossy().replace('\\', "/")
}

/// (line number, line) of the code lines of a file before its `#[cfg(test)]` module (tests may
/// reach across layers to compare them), comments dropped.
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        let code = match line.find("//") {
            Some(k) if !line[..k].contains('"') => &line[..k],
            _ => line,
        };
        out.push((i + 1, code.to_string()));
    }
    out
}

/// Whether `line` names `needle` as a path of its own (`wgpu::` but not `egui_wgpu::`).
fn names(line: &str, needle: &str) -> bool {
    line.match_indices(needle).any(|(i, _)| !line[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
}

/// Files (relative to src/) whose code names any of `needles`.
fn offenders(files: impl Fn(&str) -> bool, needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for path in rust_files(&src()) {
        let name = rel(&path);
        // A module's `tests.rs` is its test module, in a file of its own.
        if !files(&name) || name.ends_with("/tests.rs") {
            continue;
        }
        for (n, line) in code_lines(&path) {
            if needles.iter().any(|x| names(&line, x)) {
                found.push(format!("src/{name}:{n}: {}", line.trim()));
            }
        }
    }
    found
}

#[test]
fn only_the_gpu_engine_names_a_wgpu_type() {
    let found = offenders(|f| !f.starts_with("engine/gpu/"), &["wgpu::", "use wgpu"]);
    assert!(found.is_empty(), "wgpu outside engine::gpu:\n{}", found.join("\n"));
}

#[test]
fn only_the_front_end_touches_egui() {
    let front_end = |f: &str| f.starts_with("ui/") || f == "app.rs" || f == "web.rs" || f == "main.rs" || f.starts_with("platform/");
    let found = offenders(|f| !front_end(f), &["egui::", "use egui", "eframe::", "egui_plot"]);
    assert!(found.is_empty(), "egui outside ui, app, web and platform:\n{}", found.join("\n"));
}

#[test]
fn the_layers_import_downwards_only() {
    // (folder or file prefix, modules it must not import)
    let rules: [(&str, &[&str]); 6] = [
        ("model/", &["crate::config", "crate::engine", "crate::metrics", "crate::run", "crate::lab", "crate::cli", "crate::ui", "crate::app", "crate::optim"]),
        ("data/", &["crate::model", "crate::engine", "crate::metrics", "crate::run", "crate::lab", "crate::cli", "crate::ui", "crate::app"]),
        ("metrics/", &["crate::engine", "crate::run", "crate::lab", "crate::cli", "crate::ui", "crate::app"]),
        ("engine/", &["crate::run", "crate::lab", "crate::cli", "crate::ui", "crate::app", "crate::experiments"]),
        ("experiments/", &["crate::cli", "crate::lab", "crate::ui", "crate::app", "crate::platform", "plotters", "indicatif", "std::fs"]),
        ("lab/", &["crate::cli", "crate::ui", "crate::app", "std::fs"]),
    ];
    let mut found = Vec::new();
    for (prefix, banned) in rules {
        found.extend(offenders(|f| f.starts_with(prefix), banned));
    }
    assert!(found.is_empty(), "an import against the layering (ARCHITECTURE.md):\n{}", found.join("\n"));
}

#[test]
fn platform_differences_stay_in_their_modules() {
    // cfg(target_arch) outside tests: the platform layer, the entry points, the module list, the
    // GPU engine's blocking helpers and the command line's blocking engine choice.
    let allowed =
        |f: &str| f.starts_with("platform/") || f.starts_with("engine/gpu/") || ["lib.rs", "core.rs", "main.rs", "web.rs", "engine/choice.rs"].contains(&f);
    let found = offenders(|f| !allowed(f), &["target_arch"]);
    assert!(found.is_empty(), "cfg(target_arch) outside the platform layer:\n{}", found.join("\n"));
}

#[test]
fn every_source_file_says_what_it_owns_and_stays_short() {
    let mut problems = Vec::new();
    for path in rust_files(&src()) {
        let text = std::fs::read_to_string(&path).unwrap();
        if !text.trim_start().starts_with("//!") {
            problems.push(format!("src/{} does not open with a //! comment", rel(&path)));
        }
        let lines = text.lines().count();
        if lines > 700 {
            problems.push(format!("src/{} has {lines} lines (at most 700)", rel(&path)));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_repository_carries_its_own_reference() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let algorithms = std::fs::read_to_string(root.join("docs/ALGORITHMS.md")).unwrap();
    for heading in [
        "## SGD",
        "## USAM",
        "## SAM",
        "## n-SAM",
        "## m-SAM",
        "## m-USAM",
        "## ASAM",
        "## RW-SAM",
        "## Metrics",
        "### Top Hessian eigenvalue",
        "### Hessian trace",
        "### m-sharpness curve",
        "### Loss landscapes",
    ] {
        assert!(algorithms.lines().any(|l| l.trim() == heading), "docs/ALGORITHMS.md has no {heading:?}");
    }
    let mut outside = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                if !["target", ".git", "node_modules", "dist"].contains(&name.as_str()) {
                    stack.push(path);
                }
            } else if ["rs", "md", "wgsl", "html", "js", "toml", "yml"].iter().any(|e| name.ends_with(&format!(".{e}")))
                && std::fs::read_to_string(&path).is_ok_and(|t| t.contains(concat!("shared/", "SPEC")))
            {
                outside.push(path.display().to_string());
            }
        }
    }
    assert!(outside.is_empty(), "files that point outside the repository for the reference: {outside:?}");
}

/// The two crates that share src/: the modules samlab-core declares (src/core.rs) are the ones
/// samlab re-exports (src/lib.rs), and samlab declares none of them again (a second copy would
/// make types that look alike and do not match).
#[test]
fn the_app_crate_reexports_every_core_module_and_declares_none() {
    let read = |f: &str| std::fs::read_to_string(src().join(f)).unwrap();
    let declared =
        |text: &str| -> Vec<String> { text.lines().filter_map(|l| l.trim().strip_prefix("pub mod ")?.strip_suffix(';').map(str::to_string)).collect() };
    let (core, lib) = (read("core.rs"), read("lib.rs"));
    let mut core_mods = declared(&core);
    core_mods.sort();
    let reexport =
        lib.lines().find_map(|l| l.trim().strip_prefix("pub use samlab_core::{")?.strip_suffix("};")).expect("lib.rs re-exports samlab_core's modules");
    let mut reexported: Vec<String> = reexport.split(',').map(|m| m.trim().to_string()).collect();
    reexported.sort();
    assert_eq!(reexported, core_mods);
    let again: Vec<String> = declared(&lib).into_iter().filter(|m| core_mods.contains(m)).collect();
    assert!(again.is_empty(), "declared in both crates: {again:?}");
}
