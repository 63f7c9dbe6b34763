//! The shipped example runs as the README says it does.

use std::path::Path;

use crate::harness::Project;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read example") {
        let entry = entry.expect("entry");
        let kind = entry.file_type().expect("type");
        let name = entry.file_name();
        // Leave out what running the example leaves behind.
        if [".looptop", "__pycache__", "checkpoints"]
            .iter()
            .any(|skip| name == *skip)
        {
            continue;
        }
        if kind.is_dir() {
            copy_dir(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).expect("copy");
        }
    }
}

#[test]
fn the_quickstart_jobs_pass() {
    let project = Project::new();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    copy_dir(&example, &project.path());
    for job in ["test", "train"] {
        let done = project.run(&["run", "--once", "--trust", "--job", job]);
        assert!(done.status.success(), "job {job}: {}\n{}", done.stdout, done.stderr);
        assert!(done.stderr.contains(&format!("✔ {job} passed")), "{}", done.stderr);
    }
    assert!(
        project.path().join("checkpoints/last.txt").is_file(),
        "training wrote its checkpoint"
    );
}
