//! Starting a job's main process as the leader of a session of its own, as fast as a plain
//! spawn.
//!
//! std's `Command` can only call `setsid` in a `pre_exec` hook, which makes it fork looptop
//! (copying the page tables of a process that holds DuckDB and the TUI) instead of using
//! `posix_spawn`: that cost a few milliseconds before every run, and they were counted in the
//! run's duration. glibc's `posix_spawn` has `POSIX_SPAWN_SETSID` (since 2.26), so the job gets
//! its own session (no controlling terminal: it can neither read from nor scribble over the
//! TUI's terminal) at the price of a vfork. The `Command` built by the runner stays the
//! description of what to run; this module only carries it out.
//!
//! `posix_spawn_file_actions_addchdir_np` (glibc 2.29) is looked up at run time, so looptop
//! still builds and runs against an older glibc (RHEL 8 has 2.28): there, and wherever the fast
//! path is refused, the job is started through std's fork path with the same session and stdio.

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Where a program without a `/` is looked for when the job's environment has no `PATH`.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// A process started by [`spawn_session_leader`]: its pid and the read ends of its output.
#[derive(Debug)]
pub struct Spawned {
    /// The process id, which is also its session and process group id.
    pub pid: u32,
    /// Its standard output.
    pub stdout: File,
    /// Its standard error.
    pub stderr: File,
}

/// Starts `command` (program, arguments, environment changes, working directory) in a new
/// session, with stdin on /dev/null and stdout and stderr on pipes; every signal starts at its
/// default disposition and none is blocked. The stdio settings and `env_clear` of `command` are
/// not looked at. A program without a `/` is looked for in the job's own `PATH`, like `execvp`.
/// The caller reaps the process.
pub fn spawn_session_leader(command: Command) -> io::Result<Spawned> {
    match spawn_with_posix_spawn(&command) {
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) || e.raw_os_error() == Some(libc::EINVAL) => {
            spawn_with_fork(command)
        }
        other => other,
    }
}

/// The fast path: posix_spawn with `POSIX_SPAWN_SETSID`. ENOSYS or EINVAL when this glibc
/// cannot do it (no `addchdir_np`, or too old for the flag).
fn spawn_with_posix_spawn(command: &Command) -> io::Result<Spawned> {
    let env = child_env(command);
    let cwd = command.get_current_dir();
    let path = env
        .get(OsStr::new("PATH"))
        .map_or(OsStr::new(DEFAULT_PATH), OsString::as_os_str);
    let program = resolve(command.get_program(), path, cwd)?;
    let argv = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(c_string)
        .collect::<io::Result<Vec<_>>>()?;
    let envp = env
        .iter()
        .map(|(key, value)| {
            let mut pair = key.clone();
            pair.push("=");
            pair.push(value);
            c_string(&pair)
        })
        .collect::<io::Result<Vec<_>>>()?;

    let (stdout, stdout_writer) = pipe()?;
    let (stderr, stderr_writer) = pipe()?;
    let mut actions = FileActions::new()?;
    actions.open_null_as_stdin()?;
    actions.dup2(&stdout_writer, libc::STDOUT_FILENO)?;
    actions.dup2(&stderr_writer, libc::STDERR_FILENO)?;
    if let Some(dir) = cwd {
        actions.chdir(dir)?;
    }
    let attributes = Attributes::new_session_with_default_signals()?;
    let pid = attributes.spawn(&actions, &program, &argv, &envp)?;
    // The pipes' write ends now belong to the child alone, so its exit closes them.
    drop((stdout_writer, stderr_writer));
    Ok(Spawned {
        pid: u32::try_from(pid).unwrap_or(0),
        stdout,
        stderr,
    })
}

/// The portable path: std forks, the child calls setsid, then execs.
fn spawn_with_fork(mut command: Command) -> io::Result<Spawned> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let last_signal = libc::SIGRTMAX();
    // SAFETY: setsid, sigaction and sigprocmask are async-signal-safe and touch no memory of
    // the parent.
    unsafe {
        command.pre_exec(move || {
            nix::unistd::setsid()?;
            reset_signals_in_child(last_signal);
            Ok(())
        });
    }
    let mut child = command.spawn()?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(io::Error::other("the job's output pipes are missing"));
    };
    Ok(Spawned {
        pid: child.id(),
        stdout: File::from(OwnedFd::from(stdout)),
        stderr: File::from(OwnedFd::from(stderr)),
    })
}

/// In a forked child before exec: every catchable signal back to its default action and an
/// empty signal mask, as `POSIX_SPAWN_SETSIGDEF` with a full set and `POSIX_SPAWN_SETSIGMASK`
/// do on the fast path. An ignored signal stays ignored across exec, so without this a looptop
/// started under `nohup` or `&` (SIGHUP, SIGINT, SIGQUIT ignored) would pass that on to the job.
/// Only async-signal-safe calls; glibc refuses its two internal signals (32, 33), which exec
/// resets anyway. `last_signal` is SIGRTMAX, read before the fork.
fn reset_signals_in_child(last_signal: libc::c_int) {
    // SAFETY: sigaction with SIG_DFL and sigprocmask on a sigemptyset-initialised set are
    // async-signal-safe and read no memory but what is on this stack.
    unsafe {
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut default.sa_mask);
        for signal in 1..=last_signal {
            if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                libc::sigaction(signal, &default, std::ptr::null_mut());
            }
        }
        let mut none = MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(none.as_mut_ptr());
        libc::sigprocmask(libc::SIG_SETMASK, none.as_ptr(), std::ptr::null_mut());
    }
}

/// A pipe whose two ends close on exec (the child gets copies through dup2): read end first.
fn pipe() -> io::Result<(File, File)> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    Ok((File::from(read), File::from(write)))
}

/// looptop's environment with the command's changes applied.
fn child_env(command: &Command) -> BTreeMap<OsString, OsString> {
    let mut env: BTreeMap<OsString, OsString> = std::env::vars_os().collect();
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => env.insert(key.to_owned(), value.to_owned()),
            None => env.remove(key),
        };
    }
    env
}

/// The file to execute: `program` itself when it holds a `/` (relative to the job's working
/// directory), else the first executable `program` in `path`'s directories.
fn resolve(program: &OsStr, path: &OsStr, cwd: Option<&Path>) -> io::Result<CString> {
    if program.as_bytes().contains(&b'/') {
        return c_string(program);
    }
    let mut not_executable = false;
    for dir in std::env::split_paths(path) {
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let candidate = dir.join(program);
        let on_disk = match cwd {
            Some(cwd) if candidate.is_relative() => cwd.join(&candidate),
            _ => candidate.clone(),
        };
        match std::fs::metadata(&on_disk) {
            Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => {
                return c_string(candidate.as_os_str());
            }
            Ok(meta) if meta.is_file() => not_executable = true,
            _ => {}
        }
    }
    // What execvp says in the same case.
    Err(io::Error::from_raw_os_error(if not_executable {
        libc::EACCES
    } else {
        libc::ENOENT
    }))
}

fn c_string(text: &OsStr) -> io::Result<CString> {
    CString::new(text.as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} holds a NUL byte", text.to_string_lossy()),
        )
    })
}

/// Turns a posix_spawn* return value (an errno, not -1) into a Result.
fn check(code: libc::c_int) -> io::Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(code))
    }
}

/// `posix_spawn_file_actions_t`, destroyed on drop. Boxed: it is initialised in place.
struct FileActions(Box<MaybeUninit<libc::posix_spawn_file_actions_t>>);

impl FileActions {
    fn new() -> io::Result<Self> {
        let mut actions = Box::new(MaybeUninit::uninit());
        // SAFETY: init writes a valid value into the allocation it is given.
        check(unsafe { libc::posix_spawn_file_actions_init(actions.as_mut_ptr()) })?;
        Ok(Self(actions))
    }

    fn as_mut_ptr(&mut self) -> *mut libc::posix_spawn_file_actions_t {
        self.0.as_mut_ptr()
    }

    fn open_null_as_stdin(&mut self) -> io::Result<()> {
        // SAFETY: the actions are initialised; the path is a NUL-terminated literal, copied.
        check(unsafe {
            libc::posix_spawn_file_actions_addopen(
                self.as_mut_ptr(),
                libc::STDIN_FILENO,
                c"/dev/null".as_ptr(),
                libc::O_RDONLY,
                0,
            )
        })
    }

    fn dup2(&mut self, from: &impl std::os::fd::AsRawFd, to: libc::c_int) -> io::Result<()> {
        // SAFETY: the actions are initialised; `from` stays open until the spawn is done.
        check(unsafe { libc::posix_spawn_file_actions_adddup2(self.as_mut_ptr(), from.as_raw_fd(), to) })
    }

    /// ENOSYS where this glibc has no `posix_spawn_file_actions_addchdir_np`.
    fn chdir(&mut self, dir: &Path) -> io::Result<()> {
        let Some(add_chdir) = add_chdir() else {
            return Err(io::Error::from_raw_os_error(libc::ENOSYS));
        };
        let dir = c_string(dir.as_os_str())?;
        // SAFETY: the actions are initialised; glibc copies the path.
        check(unsafe { add_chdir(self.as_mut_ptr(), dir.as_ptr()) })
    }
}

/// The signature of `posix_spawn_file_actions_addchdir_np`.
type AddChdir = unsafe extern "C" fn(*mut libc::posix_spawn_file_actions_t, *const libc::c_char) -> libc::c_int;

/// `posix_spawn_file_actions_addchdir_np` if this glibc has it (2.29 and later). Looked up at
/// run time: a direct reference would keep looptop from linking against an older glibc.
fn add_chdir() -> Option<AddChdir> {
    static ADD_CHDIR: OnceLock<Option<AddChdir>> = OnceLock::new();
    *ADD_CHDIR.get_or_init(|| {
        // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only looks the symbol up.
        let symbol = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"posix_spawn_file_actions_addchdir_np".as_ptr()) };
        // SAFETY: glibc's symbol of this name has exactly this signature.
        (!symbol.is_null()).then(|| unsafe { std::mem::transmute::<*mut libc::c_void, AddChdir>(symbol) })
    })
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed once.
        unsafe { libc::posix_spawn_file_actions_destroy(self.as_mut_ptr()) };
    }
}

/// `posix_spawnattr_t`, destroyed on drop. Boxed: it is initialised in place.
struct Attributes(Box<MaybeUninit<libc::posix_spawnattr_t>>);

impl Attributes {
    /// A new session; an empty signal mask; every signal back to its default action (looptop
    /// ignores SIGPIPE, as Rust programs do, and an ignored signal stays ignored across exec).
    fn new_session_with_default_signals() -> io::Result<Self> {
        let mut attributes = Self(Box::new(MaybeUninit::uninit()));
        let raw = attributes.0.as_mut_ptr();
        // SAFETY: init writes a valid value into the allocation; the setters get it initialised
        // and sigset_t values that sigemptyset/sigfillset initialised.
        unsafe {
            check(libc::posix_spawnattr_init(raw))?;
            let mut none = MaybeUninit::<libc::sigset_t>::uninit();
            libc::sigemptyset(none.as_mut_ptr());
            check(libc::posix_spawnattr_setsigmask(raw, none.as_ptr()))?;
            let mut all = MaybeUninit::<libc::sigset_t>::uninit();
            libc::sigfillset(all.as_mut_ptr());
            check(libc::posix_spawnattr_setsigdefault(raw, all.as_ptr()))?;
            let flags = libc::c_int::from(libc::POSIX_SPAWN_SETSID)
                | libc::POSIX_SPAWN_SETSIGMASK
                | libc::POSIX_SPAWN_SETSIGDEF;
            let flags = libc::c_short::try_from(flags).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
            check(libc::posix_spawnattr_setflags(raw, flags))?;
        }
        Ok(attributes)
    }

    /// posix_spawn: the child's pid, or why it could not start (exec errors included).
    fn spawn(
        &self,
        actions: &FileActions,
        program: &CString,
        argv: &[CString],
        envp: &[CString],
    ) -> io::Result<libc::pid_t> {
        let argv = null_terminated(argv);
        let envp = null_terminated(envp);
        let mut pid: libc::pid_t = 0;
        // SAFETY: attributes and actions are initialised; every string lives until this returns;
        // both pointer arrays end with a null pointer.
        check(unsafe {
            libc::posix_spawn(
                &mut pid,
                program.as_ptr(),
                actions.0.as_ptr(),
                self.0.as_ptr(),
                argv.as_ptr(),
                envp.as_ptr(),
            )
        })?;
        Ok(pid)
    }
}

impl Drop for Attributes {
    fn drop(&mut self) {
        // SAFETY: initialised in `new_session_with_default_signals`, destroyed once.
        unsafe { libc::posix_spawnattr_destroy(self.0.as_mut_ptr()) };
    }
}

/// The C array of pointers that exec takes: each string, then a null pointer.
fn null_terminated(strings: &[CString]) -> Vec<*mut libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr().cast_mut())
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::Pid;
    use std::io::Read;

    type Spawn = fn(Command) -> io::Result<Spawned>;

    /// Both ways a job is started, each test runs on each: the fast path, and the fallback
    /// for older glibc.
    const PATHS: [(&str, Spawn); 2] = [("posix_spawn", posix_spawn_path), ("fork", spawn_with_fork)];

    fn posix_spawn_path(command: Command) -> io::Result<Spawned> {
        spawn_with_posix_spawn(&command)
    }

    /// Runs `command` to its end: its exit code, stdout and stderr.
    fn run(spawn: Spawn, command: Command) -> (i32, String, String) {
        let mut spawned = spawn(command).expect("spawn");
        let (mut out, mut err) = (String::new(), String::new());
        spawned.stdout.read_to_string(&mut out).expect("stdout");
        spawned.stderr.read_to_string(&mut err).expect("stderr");
        let pid = Pid::from_raw(i32::try_from(spawned.pid).expect("pid"));
        match waitpid(pid, None).expect("waitpid") {
            WaitStatus::Exited(_, code) => (code, out, err),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn sh(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.arg("-c").arg(script);
        command
    }

    #[test]
    fn the_job_leads_its_own_session_and_group_without_a_terminal() {
        for (path, spawn) in PATHS {
            let (code, out, _) = run(spawn, sh("echo $$; ps -o sid=,pgid=,tty= -p $$"));
            assert_eq!(code, 0, "{path}");
            let mut lines = out.lines();
            let pid = lines.next().expect("pid").trim().to_string();
            let fields: Vec<&str> = lines.next().expect("ps line").split_whitespace().collect();
            assert_eq!(fields, [pid.as_str(), pid.as_str(), "?"], "{path}: {out}");
        }
    }

    #[test]
    fn output_is_split_and_stdin_is_empty() {
        for (path, spawn) in PATHS {
            let (code, out, err) = run(spawn, sh("cat; echo to-out; echo to-err >&2; exit 3"));
            assert_eq!(
                (code, out.as_str(), err.as_str()),
                (3, "to-out\n", "to-err\n"),
                "{path}"
            );
        }
    }

    #[test]
    fn environment_changes_and_working_directory_apply() {
        let dir = tempfile::tempdir().expect("tempdir");
        let expected = format!(
            "{}\nset no-home\n",
            dir.path().canonicalize().expect("canonical").display()
        );
        for (path, spawn) in PATHS {
            let mut command = sh("pwd; echo \"${LOOPTOP_SPAWN_TEST:-unset}\" \"${HOME:-no-home}\"");
            command
                .env("LOOPTOP_SPAWN_TEST", "set")
                .env_remove("HOME")
                .current_dir(dir.path());
            assert_eq!(run(spawn, command).1, expected, "{path}");
        }
    }

    /// The standard signals (1-31) that a process blocks and ignores, read from its
    /// /proc/<pid>/status text. Signals 32 and 33 are glibc's own: posix_spawn leaves them
    /// ignored and the new program's libc takes them back, so they are not looked at.
    fn blocked_and_ignored(status: &str) -> (u64, u64) {
        let standard = |name: &str| {
            let line = status.lines().find(|l| l.starts_with(name)).expect(name);
            u64::from_str_radix(line[name.len()..].trim(), 16).expect("hex") & 0x7fff_ffff
        };
        (standard("SigBlk:"), standard("SigIgn:"))
    }

    /// Starts a job on each path and checks that it blocks and ignores no standard signal.
    /// grep itself is the spawned process (a shell would block signals around its forks).
    fn check_jobs_start_with_default_signals() {
        for (path, spawn) in PATHS {
            let mut grep = Command::new("grep");
            grep.args(["-E", "^Sig(Ign|Blk)", "/proc/self/status"]);
            let (_, out, _) = run(spawn, grep);
            assert_eq!(blocked_and_ignored(&out), (0, 0), "{path}: {out}");
        }
    }

    #[test]
    fn signals_start_at_their_defaults() {
        // The test harness, like looptop, runs with SIGPIPE ignored.
        check_jobs_start_with_default_signals();
    }

    #[test]
    fn signals_ignored_by_looptops_parent_start_at_their_defaults() {
        // `nohup cmd &` starts cmd with SIGHUP, SIGINT and SIGQUIT ignored. The check runs in a
        // copy of this test binary started that way: changing this process's dispositions would
        // leak into the tests running beside it.
        let exe = std::env::current_exe().expect("test binary");
        let output = Command::new("sh")
            .arg("-c")
            .arg(r#"trap '' HUP INT QUIT; exec "$0" "$@""#)
            .arg(exe)
            .args([
                "--exact",
                "sources::spawn::tests::a_job_of_a_looptop_that_ignores_signals_does_not",
                "--ignored",
                "--test-threads=1",
            ])
            .output()
            .expect("run the test binary");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    #[test]
    #[ignore = "run by signals_ignored_by_looptops_parent_start_at_their_defaults, in a process that ignores SIGHUP, SIGINT and SIGQUIT"]
    fn a_job_of_a_looptop_that_ignores_signals_does_not() {
        let own = std::fs::read_to_string("/proc/self/status").expect("own status");
        let hup_int_quit = 0b111;
        assert_eq!(
            blocked_and_ignored(&own).1 & hup_int_quit,
            hup_int_quit,
            "this process should ignore SIGHUP, SIGINT and SIGQUIT: {own}"
        );
        check_jobs_start_with_default_signals();
    }

    #[test]
    fn the_program_is_found_in_the_jobs_own_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tool = dir.path().join("only-here");
        std::fs::write(&tool, "#!/bin/sh\necho found \"$@\"\n").expect("write");
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        for (path, spawn) in PATHS {
            let mut command = Command::new("only-here");
            command
                .arg("it")
                .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()));
            assert_eq!(run(spawn, command).1, "found it\n", "{path}");
        }
    }

    #[test]
    fn a_program_that_cannot_start_says_why() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("plain"), "not a program").expect("write");
        for (path, spawn) in PATHS {
            let missing = spawn(Command::new("looptop-no-such-program")).expect_err("missing");
            assert_eq!(missing.raw_os_error(), Some(libc::ENOENT), "{path}");
            let absent = spawn(Command::new("/nonexistent/train")).expect_err("absent");
            assert_eq!(absent.raw_os_error(), Some(libc::ENOENT), "{path}");
            let mut command = Command::new("plain");
            command.env("PATH", dir.path());
            let denied = spawn(command).expect_err("not executable");
            assert_eq!(denied.raw_os_error(), Some(libc::EACCES), "{path}");
        }
    }

    #[test]
    fn this_glibc_takes_the_fast_path() {
        // Debian 12 and every current distribution have glibc >= 2.29: the fork fallback must
        // not be what runs here unnoticed.
        assert!(add_chdir().is_some());
        let mut command = sh("pwd");
        command.current_dir("/");
        assert_eq!(run(posix_spawn_path, command).1, "/\n");
    }
}
