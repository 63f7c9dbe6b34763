//! Which paths never trigger a run: looptop's defaults, `[watch] ignore`, and the project's own
//! .ignore, .gitignore, .git/info/exclude and global git excludes, with ripgrep's precedence
//! (a deeper file beats a shallower one; .ignore beats .gitignore). The same rules decide which
//! directories are walked and watched and which events count, so the two never disagree.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;

/// Ignored in every project: VCS and looptop's own data, build and cache output, editor
/// temporaries. Without these a job that writes its caches (pytest, mypy) would retrigger itself.
pub const DEFAULT_IGNORES: &[&str] = &[
    ".git/",
    ".hg/",
    ".svn/",
    ".looptop/",
    "target/",
    "node_modules/",
    "__pycache__/",
    ".venv/",
    ".mypy_cache/",
    ".pytest_cache/",
    // pytest builds its cache under this name, then renames it to .pytest_cache.
    "pytest-cache-files-*/",
    ".ruff_cache/",
    ".ipynb_checkpoints/",
    "*.pyc",
    "*.swp",
    "*.swx",
    "*.swo",
    "*~",
    "4913",
    ".#*",
    "#*#",
    "*___jb_tmp___",
    "*___jb_old___",
];

/// Per-directory ignore files, in the order they take precedence.
const IGNORE_FILES: &[&str] = &[".ignore", ".gitignore"];

/// The ignore rules of one project.
#[derive(Debug)]
pub struct IgnoreRules {
    root: PathBuf,
    /// looptop's defaults and `[watch] ignore`: nothing can un-ignore these.
    fixed: Gitignore,
    /// Per-directory ignore files, keyed by directory, each in `IGNORE_FILES` order.
    per_dir: HashMap<PathBuf, Vec<Gitignore>>,
    /// .git/info/exclude, then the global excludes file.
    repo_wide: Vec<Gitignore>,
    /// Problems met while reading ignore files, for the user.
    pub warnings: Vec<String>,
}

impl IgnoreRules {
    /// Rules for the project at `root` with extra patterns (gitignore syntax).
    pub fn new(root: &Path, extra: &[String]) -> Self {
        let mut warnings = Vec::new();
        let mut fixed = GitignoreBuilder::new(root);
        for line in DEFAULT_IGNORES.iter().copied().chain(extra.iter().map(String::as_str)) {
            if let Err(e) = fixed.add_line(None, line) {
                warnings.push(format!("ignore pattern `{line}`: {e}"));
            }
        }
        let fixed = fixed.build().unwrap_or_else(|e| {
            warnings.push(format!("ignore patterns: {e}"));
            Gitignore::empty()
        });
        let mut repo_wide = Vec::new();
        let exclude = root.join(".git").join("info").join("exclude");
        if exclude.is_file() {
            repo_wide.push(load(root, &[exclude], &mut warnings));
        }
        let (global, error) = GitignoreBuilder::new(root).build_global();
        if let Some(e) = error {
            warnings.push(format!("global git excludes: {e}"));
        }
        repo_wide.push(global);
        Self {
            root: root.to_path_buf(),
            fixed,
            per_dir: HashMap::new(),
            repo_wide,
            warnings,
        }
    }

    /// Reads (or re-reads) the ignore files of `dir`; call it for each directory walked, and
    /// again when one of its ignore files changes.
    pub fn load_dir(&mut self, dir: &Path) {
        let files: Vec<PathBuf> = IGNORE_FILES
            .iter()
            .map(|name| dir.join(name))
            .filter(|f| f.is_file())
            .collect();
        if files.is_empty() {
            self.per_dir.remove(dir);
            return;
        }
        let matchers = files
            .iter()
            .map(|f| load(dir, std::slice::from_ref(f), &mut self.warnings))
            .collect();
        self.per_dir.insert(dir.to_path_buf(), matchers);
    }

    /// Whether `path` (absolute, under the root) is ignored.
    pub fn is_ignored(&self, path: &Path, is_dir: bool) -> bool {
        if !path.starts_with(&self.root) {
            return false;
        }
        if self.fixed.matched_path_or_any_parents(path, is_dir).is_ignore() {
            return true;
        }
        let dirs = path.ancestors().skip(1).take_while(|dir| dir.starts_with(&self.root));
        for dir in dirs {
            for matcher in self.per_dir.get(dir).into_iter().flatten() {
                match decide(matcher, path, is_dir) {
                    Some(ignored) => return ignored,
                    None => continue,
                }
            }
        }
        self.repo_wide
            .iter()
            .find_map(|m| decide(m, path, is_dir))
            .unwrap_or(false)
    }

    /// Whether a file's name makes it an ignore file, whose change must reload the rules.
    pub fn is_ignore_file(path: &Path) -> bool {
        path.file_name()
            .is_some_and(|name| IGNORE_FILES.iter().any(|f| name == *f))
    }
}

fn decide(matcher: &Gitignore, path: &Path, is_dir: bool) -> Option<bool> {
    match matcher.matched_path_or_any_parents(path, is_dir) {
        Match::Ignore(_) => Some(true),
        Match::Whitelist(_) => Some(false),
        Match::None => None,
    }
}

fn load(dir: &Path, files: &[PathBuf], warnings: &mut Vec<String>) -> Gitignore {
    let mut builder = GitignoreBuilder::new(dir);
    for file in files {
        if let Some(e) = builder.add(file) {
            warnings.push(format!("{}: {e}", file.display()));
        }
    }
    builder.build().unwrap_or_else(|e| {
        warnings.push(format!("{}: {e}", dir.display()));
        Gitignore::empty()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("src/gen")).expect("mkdir");
        std::fs::write(dir.path().join(".gitignore"), "*.log\n/data/\n").expect("write");
        std::fs::write(dir.path().join("src/.gitignore"), "gen/\n!keep.log\n").expect("write");
        dir
    }

    fn rules(root: &Path) -> IgnoreRules {
        let mut rules = IgnoreRules::new(root, &["*.parquet".to_string()]);
        rules.load_dir(root);
        rules.load_dir(&root.join("src"));
        rules
    }

    #[test]
    fn defaults_config_and_gitignore_apply() {
        let dir = project();
        let root = dir.path();
        let rules = rules(root);
        assert!(rules.is_ignored(&root.join(".git"), true));
        assert!(rules.is_ignored(&root.join("src/__pycache__/m.pyc"), false));
        assert!(rules.is_ignored(&root.join("x.parquet"), false));
        assert!(rules.is_ignored(&root.join("run.log"), false));
        assert!(rules.is_ignored(&root.join("data"), true));
        assert!(rules.is_ignored(&root.join("src/gen/a.py"), false));
        assert!(rules.is_ignored(&root.join("src/.a.py.swp"), false));
        assert!(!rules.is_ignored(&root.join("src/a.py"), false));
        assert!(
            !rules.is_ignored(&root.join("src/data"), true),
            "/data/ is anchored at the root"
        );
    }

    #[test]
    fn a_deeper_whitelist_wins() {
        let dir = project();
        let rules = rules(dir.path());
        assert!(!rules.is_ignored(&dir.path().join("src/keep.log"), false));
    }

    #[test]
    fn reloading_a_directory_picks_up_edits() {
        let dir = project();
        let root = dir.path();
        let mut rules = rules(root);
        assert!(!rules.is_ignored(&root.join("notes.md"), false));
        std::fs::write(root.join(".gitignore"), "*.md\n").expect("write");
        rules.load_dir(root);
        assert!(rules.is_ignored(&root.join("notes.md"), false));
        assert!(IgnoreRules::is_ignore_file(&root.join("src/.gitignore")));
    }
}
