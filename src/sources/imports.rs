//! The project's Python import graph, for running the tests a change can affect first. Each
//! `.py` file of the project (walked as the watcher walks it: ignore files honoured, virtual
//! environments and caches skipped) is read for its `import` and `from … import` statements,
//! and kept with its size and modification time, so that a refresh reads again only the files
//! that changed. Names resolve to files of the project the way Python's path does in practice:
//! from the root, from `src/`, and from the importing file's own directory (pytest's default
//! `prepend` import mode); relative imports from the file's package. Names that match no file
//! (the standard library, installed packages) are not followed. The graph leans towards
//! selecting too much: a name that matches several files depends on all of them.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::Path;
use std::time::SystemTime;

use crate::diagnose::per_test::Target;

/// Directories never walked for Python files besides those the ignore files name.
const SKIP_DIRS: &[&str] = &[
    "__pycache__",
    "node_modules",
    "site-packages",
    ".looptop",
    ".git",
    ".tox",
    ".nox",
];

/// One `import` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// Leading dots of a relative import (0: absolute).
    pub level: usize,
    /// The module named (`a.b` in `from a.b import c`; empty in `from . import c`).
    pub module: String,
    /// Names imported from it (`c`), which may be submodules.
    pub names: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

#[derive(Debug, Clone)]
struct Parsed {
    stamp: Stamp,
    imports: Vec<Import>,
}

/// The Python files of a project and what each imports.
#[derive(Debug, Clone, Default)]
pub struct ImportGraph {
    /// By path relative to the root, with `/`.
    files: BTreeMap<String, Parsed>,
}

/// The test files a change reaches.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reach {
    /// Each test file (relative to the root) with why it is affected.
    pub targets: Vec<Target>,
    /// Whether every changed path could be followed (false for a data file, a deleted module…).
    pub complete: bool,
}

impl ImportGraph {
    /// Brings the graph up to date with the `.py` files under `root`: new and changed files are
    /// read, files that are gone are dropped.
    pub fn refresh(&mut self, root: &Path) {
        let mut seen: HashSet<String> = HashSet::new();
        let walker = ignore::WalkBuilder::new(root)
            .hidden(true)
            .require_git(false)
            .filter_entry(|entry| {
                let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
                let name = entry.file_name().to_string_lossy();
                !(is_dir && (SKIP_DIRS.contains(&name.as_ref()) || entry.path().join("pyvenv.cfg").exists()))
            })
            .build();
        for entry in walker.flatten() {
            let path = entry.path();
            if !entry.file_type().is_some_and(|t| t.is_file()) || path.extension().is_none_or(|e| e != "py") {
                continue;
            }
            let Ok(relative) = path.strip_prefix(root) else {
                continue;
            };
            let key = relative.to_string_lossy().replace('\\', "/");
            let Ok(meta) = entry.metadata() else { continue };
            let stamp = Stamp {
                modified: meta.modified().ok(),
                len: meta.len(),
            };
            seen.insert(key.clone());
            if self.files.get(&key).is_some_and(|p| p.stamp == stamp) {
                continue;
            }
            let source = std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned());
            let imports = source.map(|s| parse_imports(&s)).unwrap_or_default();
            self.files.insert(key, Parsed { stamp, imports });
        }
        self.files.retain(|key, _| seen.contains(key));
    }

    /// The test files that `changed` (paths relative to the root) can affect, and why: a test
    /// file that changed, test files that import a changed module (transitively), and every
    /// test file under a `conftest.py` that is reached.
    pub fn reach(&self, changed: &[String]) -> Reach {
        let mut complete = !changed.is_empty();
        let mut origin: HashMap<&str, &str> = HashMap::new();
        let mut queue: VecDeque<&str> = VecDeque::new();
        for path in changed {
            match self.files.get_key_value(path.as_str()) {
                Some((key, _)) => {
                    let key = key.as_str();
                    if origin.insert(key, key).is_none() {
                        queue.push_back(key);
                    }
                }
                None => complete = false,
            }
        }
        let importers = self.importers();
        while let Some(file) = queue.pop_front() {
            let from = origin[file];
            for &importer in importers.get(file).into_iter().flatten() {
                if !origin.contains_key(importer) {
                    origin.insert(importer, from);
                    queue.push_back(importer);
                }
            }
        }
        let mut targets: BTreeMap<&str, String> = BTreeMap::new();
        for (&file, &from) in &origin {
            if is_test_file(file) {
                let why = if file == from {
                    "changed".to_string()
                } else {
                    format!("imports {from}")
                };
                targets.insert(file, why);
            }
        }
        for &file in origin.keys() {
            let Some(dir) = file
                .strip_suffix("conftest.py")
                .filter(|d| d.is_empty() || d.ends_with('/'))
            else {
                continue;
            };
            for test in self.files.keys().filter(|t| t.starts_with(dir) && is_test_file(t)) {
                targets
                    .entry(test.as_str())
                    .or_insert_with(|| format!("conftest {file}"));
            }
        }
        let mut targets: Vec<Target> = targets
            .into_iter()
            .map(|(target, why)| Target {
                target: target.to_string(),
                why,
            })
            .collect();
        // The changed test files themselves first.
        targets.sort_by_key(|t| t.why != "changed");
        Reach { targets, complete }
    }

    /// For each file, the files that import it.
    fn importers(&self) -> HashMap<&str, Vec<&str>> {
        let mut modules: HashMap<String, Vec<&str>> = HashMap::new();
        for file in self.files.keys() {
            for prefix in ["", "src/"] {
                if let Some(inner) = file.strip_prefix(prefix) {
                    modules.entry(module_name(inner)).or_default().push(file);
                }
            }
        }
        let mut importers: HashMap<&str, Vec<&str>> = HashMap::new();
        for (file, parsed) in &self.files {
            let mut deps: HashSet<&str> = HashSet::new();
            for import in &parsed.imports {
                for candidate in self.candidates(file, import) {
                    if let Some((key, _)) = self.files.get_key_value(candidate.as_str()) {
                        deps.insert(key);
                    }
                }
                if import.level == 0 {
                    for name in dotted_prefixes(import) {
                        deps.extend(modules.get(&name).into_iter().flatten().copied());
                    }
                }
            }
            deps.remove(file.as_str());
            for dep in deps {
                importers.entry(dep).or_default().push(file);
            }
        }
        importers
    }

    /// The file paths `import` of `file` may mean, relative to `file`'s directory (a sibling
    /// module, or a relative import's package).
    fn candidates(&self, file: &str, import: &Import) -> Vec<String> {
        let mut base: Vec<&str> = file.split('/').collect();
        base.pop();
        for _ in 1..import.level {
            base.pop();
        }
        let module: Vec<&str> = import.module.split('.').filter(|p| !p.is_empty()).collect();
        let mut paths: Vec<Vec<&str>> = Vec::new();
        if import.level == 0 {
            // `import a.b` from a file next to `a/`: a, a/b.
            for k in 1..=module.len() {
                paths.push(base.iter().copied().chain(module[..k].iter().copied()).collect());
            }
        } else {
            paths.push(base.iter().copied().chain(module.iter().copied()).collect());
        }
        let Some(full) = paths.last().cloned() else {
            return Vec::new();
        };
        for name in &import.names {
            paths.push(full.iter().copied().chain([name.as_str()]).collect());
        }
        paths
            .into_iter()
            .filter(|p| !p.is_empty())
            .flat_map(|p| {
                let joined = p.join("/");
                [format!("{joined}.py"), format!("{joined}/__init__.py")]
            })
            .collect()
    }
}

/// `a.b`, `a.b.c` and, for each imported name, `a.b.c.name` (which may be a submodule).
fn dotted_prefixes(import: &Import) -> Vec<String> {
    let parts: Vec<&str> = import.module.split('.').filter(|p| !p.is_empty()).collect();
    let mut names: Vec<String> = (1..=parts.len()).map(|k| parts[..k].join(".")).collect();
    names.extend(import.names.iter().map(|n| format!("{}.{n}", import.module)));
    names
}

/// `pkg/sub/mod.py` -> `pkg.sub.mod`; `pkg/__init__.py` -> `pkg`.
fn module_name(path: &str) -> String {
    let stem = path.strip_suffix(".py").unwrap_or(path);
    let stem = stem.strip_suffix("/__init__").unwrap_or(stem);
    stem.replace('/', ".")
}

/// Whether pytest collects the file by its default name patterns (`test_*.py`, `*_test.py`).
pub fn is_test_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.ends_with(".py") && (name.starts_with("test_") || name.ends_with("_test.py"))
}

/// The import statements of Python `source`, wherever they are (inside functions and `if`
/// blocks too). Parenthesised and backslash-continued statements are joined first.
pub fn parse_imports(source: &str) -> Vec<Import> {
    let mut imports = Vec::new();
    let mut statement = String::new();
    let mut open = false;
    for line in source.lines() {
        let code = line.split('#').next().unwrap_or("");
        let trimmed = code.trim();
        if !open && !statement.is_empty() {
            statement.clear();
        }
        if statement.is_empty() && !(trimmed.starts_with("import ") || trimmed.starts_with("from ")) {
            continue;
        }
        statement.push(' ');
        statement.push_str(trimmed.trim_end_matches('\\'));
        let parens = statement.matches('(').count() > statement.matches(')').count();
        open = parens || trimmed.ends_with('\\');
        if !open {
            for part in statement.split(';') {
                imports.extend(parse_statement(part.trim()));
            }
            statement.clear();
        }
    }
    imports
}

fn parse_statement(statement: &str) -> Vec<Import> {
    let first_word = |text: &str| text.split_whitespace().next().unwrap_or("").to_string();
    if let Some(rest) = statement.strip_prefix("import ") {
        return rest
            .split(',')
            .map(first_word)
            .filter(|m| is_dotted_name(m))
            .map(|module| Import {
                level: 0,
                module,
                names: Vec::new(),
            })
            .collect();
    }
    let Some((from, names)) = statement.strip_prefix("from ").and_then(|r| r.split_once(" import")) else {
        return Vec::new();
    };
    let from = from.trim();
    let module = from.trim_start_matches('.');
    let level = from.len() - module.len();
    if !(module.is_empty() || is_dotted_name(module)) || (module.is_empty() && level == 0) {
        return Vec::new();
    }
    let names = names
        .replace(['(', ')'], " ")
        .split(',')
        .map(first_word)
        .filter(|n| is_dotted_name(n))
        .collect();
    vec![Import {
        level,
        module: module.to_string(),
        names,
    }]
}

fn is_dotted_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn import(level: usize, module: &str, names: &[&str]) -> Import {
        Import {
            level,
            module: module.into(),
            names: names.iter().map(|n| n.to_string()).collect(),
        }
    }

    #[test]
    fn reads_every_form_of_import() {
        let source = "import os, a.b as c\nfrom x.y import (\n    p,\n    q as r,  # comment\n)\n\
                      def f():\n    from . import sib\n    from ..up.mod import z; import w\n\
                      from m import *\nx = 'import nothing'\nfrom k \\\n  import v\n";
        assert_eq!(
            parse_imports(source),
            [
                import(0, "os", &[]),
                import(0, "a.b", &[]),
                import(0, "x.y", &["p", "q"]),
                import(1, "", &["sib"]),
                import(2, "up.mod", &["z"]),
                import(0, "w", &[]),
                import(0, "m", &[]),
                import(0, "k", &["v"]),
            ]
        );
    }

    fn project(files: &[(&str, &str)]) -> (tempfile::TempDir, ImportGraph) {
        let dir = tempfile::tempdir().expect("tempdir");
        for (path, body) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, body).expect("write");
        }
        let mut graph = ImportGraph::default();
        graph.refresh(dir.path());
        (dir, graph)
    }

    fn reached(graph: &ImportGraph, changed: &[&str]) -> (Vec<(String, String)>, bool) {
        let changed: Vec<String> = changed.iter().map(|c| c.to_string()).collect();
        let reach = graph.reach(&changed);
        (
            reach.targets.into_iter().map(|t| (t.target, t.why)).collect(),
            reach.complete,
        )
    }

    #[test]
    fn changes_reach_the_tests_that_import_them_transitively() {
        let (dir, mut graph) = project(&[
            ("src/app/__init__.py", ""),
            ("src/app/core.py", "from .util import helper\n"),
            ("src/app/util.py", "import json\n"),
            ("src/app/other.py", ""),
            ("tests/helpers.py", "from app import core\n"),
            ("tests/test_a.py", "import app.other\n"),
            ("tests/test_b.py", "from helpers import thing\n"),
            ("tests/unit/conftest.py", "import app.util\n"),
            ("tests/unit/test_c.py", ""),
            (".venv/pyvenv.cfg", ""),
            (".venv/lib/test_venv.py", "import app.util\n"),
        ]);
        let (targets, complete) = reached(&graph, &["src/app/util.py"]);
        assert!(complete);
        assert_eq!(
            targets,
            [
                ("tests/test_b.py".to_string(), "imports src/app/util.py".to_string()),
                (
                    "tests/unit/test_c.py".to_string(),
                    "conftest tests/unit/conftest.py".to_string()
                ),
            ]
        );
        assert_eq!(
            reached(&graph, &["tests/test_a.py", "README.md"]),
            (vec![("tests/test_a.py".to_string(), "changed".to_string())], false)
        );
        assert_eq!(reached(&graph, &["src/app/other.py"]).0[0].0, "tests/test_a.py");
        // A new import is seen after a refresh.
        std::fs::write(dir.path().join("tests/test_a.py"), "import app.util  # now\n").expect("write");
        graph.refresh(dir.path());
        assert_eq!(reached(&graph, &["src/app/util.py"]).0.len(), 3);
        std::fs::remove_file(dir.path().join("tests/test_b.py")).expect("rm");
        graph.refresh(dir.path());
        assert_eq!(reached(&graph, &["src/app/util.py"]).0.len(), 2);
    }
}
