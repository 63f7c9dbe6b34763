"""What the side-by-side benchmark scripts share: progress logging, cleanup on every exit
path, stopping process groups, finding the binaries and naming what was measured."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable, NoReturn, Optional

REPO_ROOT = Path(__file__).resolve().parent.parent
STOP_GRACE_S = 2.0  # the first signal, then SIGKILL after this long


def log(message: str) -> None:
    """Progress messages go to stderr, so stdout holds only the results."""
    print(message, file=sys.stderr, flush=True)


class Cleanup:
    """Everything started or created registers an undo action here. The actions run in
    reverse order on normal exit, on exceptions and on Ctrl-C / SIGTERM / SIGHUP."""

    def __init__(self) -> None:
        self._actions: list[tuple[str, Callable[[], None]]] = []

    def push(self, what: str, action: Callable[[], None]) -> Callable[[], None]:
        """Registers `action`; returns a function that runs it now (once) instead."""
        entry = (what, action)
        self._actions.append(entry)

        def run_now() -> None:
            if entry in self._actions:
                self._actions.remove(entry)
                self._run(entry)

        return run_now

    def run_all(self) -> None:
        while self._actions:
            self._run(self._actions.pop())

    @staticmethod
    def _run(entry: tuple[str, Callable[[], None]]) -> None:
        what, action = entry
        try:
            action()
        except Exception as error:  # cleanup must go on whatever happens
            log(f"cleanup of {what} failed: {error}")


CLEANUP = Cleanup()


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def unwind_on_signals() -> None:
    """SIGTERM and SIGHUP behave like Ctrl-C: they unwind, which runs the cleanup."""
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)


def kill_group(proc: subprocess.Popen, first: int = signal.SIGTERM) -> None:
    """Stops a process started in a session of its own, with all its group: `first` to the
    group, SIGKILL after STOP_GRACE_S (children may outlive the leader)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, first)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.wait(timeout=5)


def tail_of(path: Path, limit: int = 1500) -> str:
    """The last `limit` characters of a log file ("" if it cannot be read)."""
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


def find_program(name: str) -> Optional[str]:
    """`name` on PATH, else in ~/.cargo/bin (where `cargo install` puts it)."""
    found = shutil.which(name)
    if found:
        return found
    cargo_bin = Path.home() / ".cargo" / "bin" / name
    return str(cargo_bin) if cargo_bin.is_file() and os.access(cargo_bin, os.X_OK) else None


def default_looptop() -> Optional[str]:
    """$CARGO_TARGET_DIR/release/looptop if that is set and built, else the repository's
    target/release/looptop."""
    candidates = []
    if os.environ.get("CARGO_TARGET_DIR"):
        target = Path(os.environ["CARGO_TARGET_DIR"])
        if not target.is_absolute():
            target = REPO_ROOT / target
        candidates.append(target / "release" / "looptop")
    candidates.append(REPO_ROOT / "target" / "release" / "looptop")
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def first_version_line(binary: str) -> str:
    """The first line of `binary --version`, "unknown" if it says nothing."""
    try:
        # A session of its own, so that a hanging --version is stopped with all its children.
        proc = subprocess.Popen([binary, "--version"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                                start_new_session=True)
    except OSError:
        return "unknown"
    try:
        stdout, stderr = proc.communicate(timeout=10)
        return (stdout or stderr).strip().splitlines()[0].strip()
    except subprocess.TimeoutExpired:
        kill_group(proc, signal.SIGKILL)
        return "unknown"
    except IndexError:
        return "unknown"


def short_version(line: str) -> str:
    """The version number in a `--version` line ("btop version: 1.3.0" -> "1.3.0")."""
    match = re.search(r"\d+\.\d+(\.\d+)?\S*", line)
    return match.group(0) if match else line


def looptop_source() -> Optional[str]:
    """The repository's commit when the benchmark ran (+dirty for uncommitted changes): a
    hint of which looptop was measured, exact only if the binary was built from it; None
    outside a git checkout."""
    try:
        head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=10)
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def run_main(main: Callable[[], int]) -> NoReturn:
    """Exits with main()'s status; Ctrl-C (and SIGTERM, SIGHUP) exits 130 after the cleanup."""
    unwind_on_signals()
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; processes stopped and temporary files removed")
        sys.exit(130)


def chosen_tools(parser: argparse.ArgumentParser, text: str, known: list[str]) -> list[str]:
    """The tools named in a comma-separated --tools value; an unknown name is a usage error."""
    wanted = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in wanted if t not in known]
    if unknown:
        parser.error(f"unknown tool(s): {', '.join(unknown)} (known: {', '.join(known)})")
    return wanted


def load_text(loadavg: tuple[float, float, float] | list[float]) -> str:
    """A load average as `uptime` prints it."""
    return " ".join(f"{v:.2f}" for v in loadavg)


def print_results(results: dict, render: Callable[[dict], str], as_json: bool) -> None:
    """Prints the results as JSON, or as the Markdown that `render` makes of them, followed by
    the command they came from (`results["meta"]["invocation"]`)."""
    if as_json:
        print(json.dumps(results, indent=2))
        return
    print(render(results))
    print("\n".join(["", "Command:", "", "```", results["meta"]["invocation"], "```"]))


def add_looptop_option(parser: argparse.ArgumentParser) -> None:
    """The `--looptop PATH` option every script takes."""
    parser.add_argument("--looptop", help="looptop binary (default: $CARGO_TARGET_DIR/release/looptop, "
                        "else target/release/looptop)")


def looptop_binary(args: argparse.Namespace) -> str:
    """The looptop to measure (`--looptop`, else the release build), as an absolute path;
    exits with a message naming the fix when there is none."""
    binary = args.looptop or default_looptop()
    if not binary or not os.access(binary, os.X_OK):
        sys.exit(f"error: looptop is not built ({binary or 'no release binary found'}): build it with "
                 "`cargo build --release` or pass --looptop PATH")
    return str(Path(binary).resolve())


def read_status(pid: int) -> dict:
    """Memory fields of /proc/PID/status, in kB (missing ones left out)."""
    wanted = {"VmHWM": "hwm_kb", "VmRSS": "rss_kb", "RssAnon": "anon_kb",
              "RssFile": "file_kb", "RssShmem": "shmem_kb"}
    out: dict = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in wanted:
                out[wanted[key]] = int(value.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return out
