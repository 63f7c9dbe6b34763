//! `looptop init` and `looptop completions`, through the real binary.

use crate::harness::Project;

#[test]
fn init_writes_a_working_config_once_and_never_overwrites() {
    let project = Project::new();
    project.write("train.py", "print('step 1 loss 0.5')\n");
    project.write("checkpoints/.keep", "");

    let printed = project.run(&["init", "--print"]);
    assert!(printed.status.success(), "{}", printed.stderr);
    assert!(printed.stdout.contains("name = \"train\""), "{}", printed.stdout);
    assert!(!project.path().join("looptop.toml").exists(), "--print writes nothing");

    let wrote = project.run(&["init"]);
    assert!(wrote.status.success(), "{}", wrote.stderr);
    assert!(wrote.stdout.contains("1 job(s): train"), "{}", wrote.stdout);
    let text = std::fs::read_to_string(project.path().join("looptop.toml")).expect("looptop.toml");
    assert_eq!(text, printed.stdout);
    assert!(text.contains("ignore = [\"checkpoints/\"]"), "{text}");

    // The written config runs as it is: init approved it.
    let ran = project.run(&["run", "--once", "--job", "train"]);
    assert!(ran.status.success(), "{}", ran.stderr);
    assert!(ran.stdout.contains("step 1 loss 0.5"), "{}", ran.stdout);

    project.write("looptop.toml", "# mine\n");
    let again = project.run(&["init"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(again.stderr.contains("never overwrites"), "{}", again.stderr);
    let kept = std::fs::read_to_string(project.path().join("looptop.toml")).expect("looptop.toml");
    assert_eq!(kept, "# mine\n", "the user's file is untouched");
}

#[test]
fn completions_cover_the_subcommands_for_each_shell() {
    let project = Project::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = project.run(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", out.stderr);
        for subcommand in ["run", "history", "init", "doctor"] {
            assert!(out.stdout.contains(subcommand), "{shell} lacks {subcommand}");
        }
    }
    assert_eq!(project.run(&["completions", "tcsh"]).status.code(), Some(2));
}
