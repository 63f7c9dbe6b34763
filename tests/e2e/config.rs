//! Config errors point at the line; untrusted configs are refused until approved.

use crate::harness::Project;

/// Each file in tests/fixtures/invalid starts with `# expect: LINE: TEXT`: looptop must exit 2
/// and say `looptop.toml:LINE:` and TEXT.
#[test]
fn every_invalid_fixture_names_its_line() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures") {
        let path = entry.expect("entry").path();
        let source = std::fs::read_to_string(&path).expect("read");
        let expect = source
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .expect("expect line");
        let (line, text) = expect.split_once(": ").expect("LINE: TEXT");
        let project = Project::new();
        project.write("looptop.toml", &source);
        let done = project.run(&["run", "--once", "--trust"]);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        assert_eq!(done.status.code(), Some(2), "{name}: {}", done.stderr);
        assert!(
            done.stderr.contains(&format!("looptop.toml:{line}:")),
            "{name}: wanted line {line} in:\n{}",
            done.stderr
        );
        assert!(
            done.stderr.contains(text),
            "{name}: wanted {text:?} in:\n{}",
            done.stderr
        );
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} fixtures");
}

#[test]
fn an_unapproved_config_is_refused_until_trusted() {
    let project = Project::new();
    project.write(
        "looptop.toml",
        "[[job]]\nname = \"hello\"\ncommand = \"echo hi from config\"\n",
    );
    let refused = project.run(&["run", "--once"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        refused.stderr.contains("echo hi from config"),
        "the commands are shown: {}",
        refused.stderr
    );
    assert!(refused.stderr.contains("looptop trust"), "{}", refused.stderr);
    assert!(refused.stdout.is_empty(), "nothing ran");

    let trusted = project.run(&["trust"]);
    assert!(trusted.status.success(), "{}", trusted.stderr);
    assert!(trusted.stdout.contains("echo hi from config"));
    let ran = project.run(&["run", "--once"]);
    assert!(ran.status.success(), "{}", ran.stderr);
    assert_eq!(ran.stdout, "hi from config\n");

    project.write(
        "looptop.toml",
        "[[job]]\nname = \"hello\"\ncommand = \"echo changed\"\n",
    );
    assert_eq!(
        project.run(&["run", "--once"]).status.code(),
        Some(2),
        "an edit asks again"
    );
    assert!(project.run(&["run", "--once", "--trust"]).status.success());
    let ad_hoc = project.run(&["run", "--once", "--", "true"]);
    assert!(
        ad_hoc.status.success(),
        "commands after -- need no approval: {}",
        ad_hoc.stderr
    );
}

#[test]
fn usage_errors_exit_2() {
    let project = Project::new();
    let nothing = project.run(&["run", "--once"]);
    assert_eq!(nothing.status.code(), Some(2));
    assert!(nothing.stderr.contains("nothing to run"), "{}", nothing.stderr);
    project.write("looptop.toml", "[[job]]\nname = \"train\"\ncommand = \"true\"\n");
    let typo = project.run(&["run", "--once", "--job", "trian"]);
    assert_eq!(typo.status.code(), Some(2));
    assert!(typo.stderr.contains("did you mean `train`"), "{}", typo.stderr);
    assert_eq!(project.run(&["run", "--bogus"]).status.code(), Some(2));
}

/// The config reference in README.md is valid, so it cannot drift from the code.
#[test]
fn the_readme_config_reference_parses() {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).expect("README.md");
    let start = readme
        .find("```toml\n[watch]")
        .expect("a toml block with [watch] in README.md")
        + "```toml\n".len();
    let block = &readme[start..start + readme[start..].find("```").expect("closing fence")];
    let project = Project::new();
    for dir in ["src", "tests"] {
        std::fs::create_dir_all(project.path().join(dir)).expect("mkdir");
    }
    project.write("queries/features.sql", "SELECT 1;\n");
    let config = looptop::config::Config::parse(std::path::Path::new("README.md"), block, project.path())
        .unwrap_or_else(|e| panic!("README's config does not parse:\n{e}"));
    let names: Vec<&str> = config.jobs.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, ["test", "train", "features"]);
    assert_eq!(config.watch.paths.len(), 2);
}
