#!/usr/bin/env python3
"""Side-by-side rerun benchmark: looptop against bacon, watchexec and entr.

What is measured
================

For every tool (looptop, bacon, watchexec, entr; a tool that is not installed is skipped
with a message) this script measures, in one run:

1. **Save -> job start latency.** The job is a tiny C program (``stamp``) that the script
   compiles with gcc into a temporary directory. Its first action in ``main`` is
   ``clock_gettime(CLOCK_REALTIME)``; it appends that time, in nanoseconds, as one line to
   the file named by ``argv[1]`` (one ``O_APPEND`` write). So the moment the job's first
   instruction runs is timestamped without any shell or interpreter start-up in the way.
   The driver keeps a project directory holding ``src/a.py``. For each save it takes
   ``t0 = time.time_ns()`` immediately before open/write/close of ``src/a.py``, then polls
   the stamps file (about every 0.5 ms) until a new line appears. ``latency = stamp - t0``.
   A save that produces no stamp within the timeout (3 s) is a *miss*. Between saves the
   driver pauses (300 ms) so that every save meets an idle tool. Stamps that appear
   without being waited for (a tool that runs twice for one save) are counted as *extra
   runs* in the JSON output.

2. **Storm.** 3,000 files are created under ``src/gen/`` *before* a fresh tool process is
   started (entr watches a fixed list of files, so it must see them at start). Once the
   tool is ready and idle, all 3,000 files are rewritten at a steady pace over about 2 s;
   then the driver waits until no new stamp has appeared for 3 s and counts how many
   times the job started from the beginning of the storm on. One run is the ideal; more
   runs mean the tool split the storm into several batches.

How each tool is run (defaults otherwise: we compare default behaviour)
=======================================================================

* looptop:   ``looptop run --postpone -- STAMP STAMPS`` with the project as working
  directory (several words after ``--`` are exec'd directly, no shell). It watches the
  whole working directory, gitignore-aware.
* watchexec: ``watchexec -w src --shell=none --postpone -- STAMP STAMPS``; ``--postpone``
  keeps it from running at start, ``--shell=none`` execs the program directly.
* entr:      ``find src -type f | entr -n -p STAMP STAMPS``; ``-n`` because there is no
  TTY, ``-p`` to postpone the first run until a change. The file list is fed on stdin.
* bacon:     ``bacon`` in the project directory, inside a detached tmux session (its TUI
  needs a terminal), with this ``bacon.toml`` in the project::

      default_job = "stamp"

      [jobs.stamp]
      command = ["STAMP", "STAMPS"]   # absolute paths; bacon execs it directly
      need_stdout = false             # the job prints nothing anyway
      default_watch = false           # do not add src, tests, benches, ... by default
      watch = ["src"]                 # ... watch exactly src, like the others

  bacon has no "postpone" option: it always runs the job once at start. That first stamp
  is used as its readiness signal and is not counted.

Defaults that shape the numbers (from each tool's documentation or source): looptop waits
5 ms of quiet after a small burst and at least 100 ms (growing with the burst, at most
500 ms) after a burst of 8 paths or more; bacon waits a 15 ms grace period before starting
the job and starts it again on any change while idle; watchexec debounces for 50 ms.

Readiness: after start the driver waits for the initial stamp (bacon) and then a fixed
settle time (1.5 s). It then makes one probe save of ``src/a.py`` that must produce a
stamp (retried a few times) and waits until the tool is quiet; only then does measuring
begin. Probe runs are not counted anywhere.

Caveats
=======

* Timestamps on both sides are CLOCK_REALTIME on the same machine, so they are directly
  comparable; a clock step (NTP) during a run would skew one sample.
* Latency includes the dynamic loader and C start-up of ``stamp`` (it is linked
  statically when the toolchain allows, see ``stamp_static`` in the JSON) and the
  scheduling of the tool's threads; it is the same job for every tool.
* The latency is the difference of two nanosecond timestamps, so polling (every 0.5 ms)
  only decides when the driver notices a stamp, not the number itself; but polling uses
  CPU, and on a machine with few cores the driver, the tool and anything else running (a
  cargo build) compete: the load average at start is recorded in the JSON.
* The storm writer ticks about every millisecond (1.5 files per tick by default) from
  Python, so it is steady but not perfectly so: the longest silence between two writes is
  recorded (``max_gap_between_writes_ms``). This matters for tools that decide from the
  gaps: looptop waits only its short debounce (5 ms by default) after a burst of fewer
  than 8 paths, so a writer that stalls for more than 5 ms within its first few files
  gets that head of the storm run on its own (2 storm runs instead of 1).
* The storm count only sees runs that start before 3 s of quiet; a tool that waits longer
  than that after a storm would be under-counted (none of the defaults does).
* Saves write the file in place (truncate + write), which every tool here sees. Editors
  that save by renaming a new file over the old one behave differently, notably with
  entr, which then needs ``-d`` and a restart.
* Every tool watches only what it needs here (the project, or ``src``); the stamps file
  lives outside the project so that writing it never triggers a run.

Usage
=====

    python3 benches/rerun_latency.py [--looptop PATH] [--saves N] [--tools a,b]
                                     [--out FILE] [--keep]

Markdown results go to stdout, raw numbers to ``--out`` (default /tmp/rerun_latency.json).
Temporary directories and every process started are cleaned up on exit, Ctrl-C included
(``--keep`` keeps the temporary directory, with each tool's log, for inspection).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

from benchlib import (CLEANUP, chosen_tools, default_looptop, find_program, first_version_line,
                      kill_group, log, looptop_source, run_main, short_version, tail_of)

# --------------------------------------------------------------------------------------
# Settings (most can be changed on the command line).
# --------------------------------------------------------------------------------------

ALL_TOOLS = ["looptop", "bacon", "watchexec", "entr"]
POLL_S = 0.0005  # how often the stamps file is polled
SAVE_TIMEOUT_S = 3.0  # a save without a stamp after this long is a miss
PAUSE_S = 0.300  # pause between saves so that the tool is idle again
SETTLE_S = 1.5  # fixed wait after start (watchers set themselves up)
START_STAMP_TIMEOUT_S = 15.0  # bacon: wait this long for its initial run
PROBE_TRIES = 3  # probe saves before giving up on a tool
STORM_FILES = 3000
STORM_SECONDS = 2.0
STORM_QUIET_S = 3.0  # the storm is over when no stamp appeared for this long
STORM_CAP_S = 60.0  # ... or after this long, whatever happens


STAMP_C = r"""
/* stamp: append the time this process started running main(), in ns since the epoch
 * (CLOCK_REALTIME), as one line to the file named by argv[1]. */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* the job's first instruction */
    if (argc < 2) return 2;
    char line[32];
    int n = snprintf(line, sizeof line, "%lld\n",
                     (long long)ts.tv_sec * 1000000000LL + (long long)ts.tv_nsec);
    int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0) return 1;
    ssize_t written = write(fd, line, (size_t)n); /* one O_APPEND write: never torn */
    close(fd);
    return written == n ? 0 : 1;
}
"""


class Running:
    """A started tool: how to check it is alive and how to stop it."""

    def __init__(self, stop: Callable[[], None], alive: Callable[[], bool],
                 describe_failure: Callable[[], str]) -> None:
        self.stop = stop
        self.alive = alive
        self.describe_failure = describe_failure


def start_plain(argv: list[str], cwd: Path, log_path: Path,
                stdin_text: Optional[str] = None) -> Running:
    """Starts a tool as a child in its own session (so that it and its children can be
    stopped together and it does not get the terminal's Ctrl-C), output to a log."""
    log_file = open(log_path, "wb")
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log_file.close()  # the child holds its own copy
    stop_now = CLEANUP.push(f"{argv[0]} (pid {proc.pid})", lambda: kill_group(proc))
    if stdin_text is not None and proc.stdin is not None:
        try:
            proc.stdin.write(stdin_text.encode())
            proc.stdin.close()  # EOF: entr starts watching after reading the whole list
        except BrokenPipeError:
            pass  # it exited early: get_ready reports it with its log
    return Running(
        stop=stop_now,
        alive=lambda: proc.poll() is None,
        describe_failure=lambda: f"exit status {proc.poll()}; log tail:\n{tail_of(log_path)}",
    )


def start_in_tmux(command: str, cwd: Path, workdir: Path, name: str) -> Running:
    """Starts a TUI tool in a detached tmux session on a private server (its own socket,
    so no other tmux session is touched). Panes stay after the tool exits so that its
    last screen can be shown if it fails."""
    socket = f"rerunbench-{os.getpid()}-{name}"
    conf = workdir / f"tmux-{name}.conf"
    conf.write_text("set -g remain-on-exit on\nset -g history-limit 2000\n")
    tmux = ["tmux", "-L", socket, "-f", str(conf)]
    shell_line = f"cd {shlex.quote(str(cwd))} && exec {command}"
    subprocess.run(tmux + ["new-session", "-d", "-s", name, "-x", "200", "-y", "50", shell_line],
                   check=True, stdin=subprocess.DEVNULL)
    pane_pid = None
    out = subprocess.run(tmux + ["list-panes", "-t", name, "-F", "#{pane_pid} #{socket_path}"],
                         capture_output=True, text=True)
    fields = out.stdout.split(maxsplit=1) if out.returncode == 0 else []
    if fields and fields[0].isdigit():
        pane_pid = int(fields[0])
    socket_path = Path(fields[1].strip()) if len(fields) == 2 else None

    def stop() -> None:
        subprocess.run(tmux + ["kill-server"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # A killed server may leave its socket file behind.
        if socket_path is not None and socket_path.name == socket:
            socket_path.unlink(missing_ok=True)
        # Fallback: the pane's process (the tool) and its group, if still there.
        if pane_pid is not None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(os.getpgid(pane_pid), sig)
                    time.sleep(0.2)
                except (ProcessLookupError, PermissionError):
                    break

    def alive() -> bool:
        out = subprocess.run(tmux + ["list-panes", "-t", name, "-F", "#{pane_dead}"],
                             capture_output=True, text=True)
        return out.returncode == 0 and out.stdout.strip() == "0"

    def describe_failure() -> str:
        out = subprocess.run(tmux + ["capture-pane", "-p", "-S", "-", "-t", name],
                             capture_output=True, text=True)
        screen = "\n".join(line.rstrip() for line in out.stdout.splitlines() if line.strip())
        return f"last screen:\n{screen[-1500:]}"

    stop_now = CLEANUP.push(f"tmux server {socket}", stop)
    return Running(stop=stop_now, alive=alive, describe_failure=describe_failure)


# --------------------------------------------------------------------------------------
# Stamps.
# --------------------------------------------------------------------------------------


class StampReader:
    """Reads the stamps file incrementally: each call to `poll` returns the stamps (ns)
    appended since the previous call, whole lines only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""
        self.seen: list[int] = []

    def poll(self) -> list[int]:
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            return []
        if size <= self.offset:
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(size - self.offset)
        self.offset += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()  # empty, or an incomplete last line
        stamps = [int(line) for line in lines if line.strip()]
        self.seen.extend(stamps)
        return stamps

    def wait_new(self, timeout_s: float) -> list[int]:
        """Polls until at least one new stamp arrives or `timeout_s` passes."""
        deadline = time.monotonic() + timeout_s
        while True:
            new = self.poll()
            if new or time.monotonic() >= deadline:
                return new
            time.sleep(POLL_S)

    def wait_quiet(self, quiet_s: float, cap_s: float) -> list[int]:
        """Polls until no stamp has arrived for `quiet_s` (or `cap_s` passed); returns all
        the stamps seen meanwhile."""
        collected: list[int] = []
        start = last = time.monotonic()
        while True:
            now = time.monotonic()
            if now - last >= quiet_s or now - start >= cap_s:
                return collected
            new = self.poll()
            if new:
                collected.extend(new)
                last = time.monotonic()
            time.sleep(POLL_S if new else 0.005)


def save(path: Path, text: str) -> int:
    """One editor-like in-place save; returns t0, taken immediately before open."""
    t0 = time.time_ns()
    with open(path, "w") as f:
        f.write(text)
    return t0


# --------------------------------------------------------------------------------------
# Tools.
# --------------------------------------------------------------------------------------


def version_of(tool: str, binary: str) -> str:
    """The tool's version as it reports it (entr has no --version: its usage text says
    "release: X")."""
    if tool != "entr":
        return short_version(first_version_line(binary))
    try:
        out = subprocess.run([binary], capture_output=True, text=True, timeout=5,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    match = re.search(r"release:\s*(\S+)", out.stdout + out.stderr)
    return match.group(1) if match else "unknown"


BACON_TOML = """\
# Written by benches/rerun_latency.py: one job that runs the stamp program on changes in src.
default_job = "stamp"

[jobs.stamp]
command = [{stamp}, {stamps}]
need_stdout = false
default_watch = false
watch = ["src"]
"""


class Tool:
    """How to start one tool on a project so that it runs STAMP STAMPS on changes."""

    def __init__(self, name: str, binary: str) -> None:
        self.name = name
        self.binary = binary
        # Whether the tool runs the job at start whatever we ask (bacon): the first stamp
        # is then the readiness signal and is not counted.
        self.runs_at_start = name == "bacon"

    def describe(self) -> str:
        return {
            "looptop": "looptop run --postpone -- STAMP STAMPS",
            "watchexec": "watchexec -w src --shell=none --postpone -- STAMP STAMPS",
            "entr": "find src -type f | entr -n -p STAMP STAMPS",
            "bacon": "bacon (in tmux; bacon.toml job: command=[STAMP, STAMPS], "
                     "need_stdout=false, default_watch=false, watch=[src])",
        }[self.name]

    def start(self, project: Path, stamp: Path, stamps: Path, workdir: Path,
              label: str) -> Running:
        log_path = workdir / f"{self.name}-{label}.log"
        if self.name == "looptop":
            return start_plain([self.binary, "run", "--postpone", "--", str(stamp), str(stamps)],
                               project, log_path)
        if self.name == "watchexec":
            return start_plain([self.binary, "-w", "src", "--shell=none", "--postpone", "--",
                                str(stamp), str(stamps)], project, log_path)
        if self.name == "entr":
            # Equivalent of `find src -type f | entr ...`, listed here to avoid a shell.
            files = sorted(str(p.relative_to(project)) for p in (project / "src").rglob("*")
                           if p.is_file())
            return start_plain([self.binary, "-n", "-p", str(stamp), str(stamps)], project,
                               log_path, stdin_text="\n".join(files) + "\n")
        if self.name == "bacon":
            (project / "bacon.toml").write_text(BACON_TOML.format(
                stamp=json.dumps(str(stamp)), stamps=json.dumps(str(stamps))))
            return start_in_tmux(shlex.quote(self.binary), project, workdir,
                                 f"{self.name}-{label}")
        raise ValueError(self.name)


# --------------------------------------------------------------------------------------
# Measurements.
# --------------------------------------------------------------------------------------


class ToolFailed(Exception):
    pass


def make_project(root: Path, storm_files: int) -> Path:
    """A project with src/a.py and, for the storm, `storm_files` files in src/gen/."""
    project = root
    (project / "src").mkdir(parents=True)
    (project / "src" / "a.py").write_text("x = 0\n")
    if storm_files:
        gen = project / "src" / "gen"
        gen.mkdir()
        for i in range(storm_files):
            (gen / f"m{i:04d}.py").write_text(f"value = {i}\n")
    return project


def get_ready(tool: Tool, running: Running, reader: StampReader, probe_file: Path) -> None:
    """Waits until the tool watches: its initial run (bacon), a fixed settle time, then a
    probe save that must produce a stamp; then until it is quiet. Nothing here counts."""
    if tool.runs_at_start:
        if not reader.wait_new(START_STAMP_TIMEOUT_S):
            raise ToolFailed(f"no initial run within {START_STAMP_TIMEOUT_S:.0f} s; "
                             f"{running.describe_failure()}")
    time.sleep(SETTLE_S)
    if not running.alive():
        raise ToolFailed(f"exited during start-up; {running.describe_failure()}")
    for attempt in range(PROBE_TRIES):
        reader.poll()
        save(probe_file, f"probe = {attempt}\n")
        if reader.wait_new(SAVE_TIMEOUT_S):
            break
    else:
        raise ToolFailed(f"{PROBE_TRIES} probe saves started no run; "
                         f"{running.describe_failure()}")
    reader.wait_quiet(quiet_s=0.5, cap_s=10.0)


def percentile(values: list[float], p: float) -> Optional[float]:
    """Linear-interpolated percentile (numpy's default), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def measure_latency(tool: Tool, workdir: Path, stamp: Path, saves: int) -> dict:
    project = make_project(workdir / f"proj-{tool.name}-latency", storm_files=0)
    stamps = workdir / f"stamps-{tool.name}-latency.txt"
    reader = StampReader(stamps)
    running = tool.start(project, stamp, stamps, workdir, "latency")
    try:
        get_ready(tool, running, reader, project / "src" / "a.py")
        latencies_ms: list[float] = []
        misses = 0
        extra_runs = 0
        for i in range(saves):
            extra_runs += len(reader.poll())  # runs nobody asked for since the last save
            t0 = save(project / "src" / "a.py", f"x = {i + 1}\n")
            while True:
                new = reader.wait_new(max(0.0, SAVE_TIMEOUT_S - (time.time_ns() - t0) / 1e9))
                fresh = [s for s in new if s >= t0]
                extra_runs += len(new) - len(fresh)  # stale stamps from before this save
                if fresh:
                    latencies_ms.append((fresh[0] - t0) / 1e6)
                    extra_runs += len(fresh) - 1
                    break
                if not new:  # timed out
                    misses += 1
                    log(f"  {tool.name}: save {i + 1} missed (no run within {SAVE_TIMEOUT_S} s)")
                    break
            time.sleep(PAUSE_S)
            if not running.alive():
                raise ToolFailed(f"exited during the saves; {running.describe_failure()}")
        extra_runs += len(reader.poll())
        return {
            "latencies_ms": [round(v, 3) for v in latencies_ms],
            "p50_ms": percentile(latencies_ms, 50),
            "p95_ms": percentile(latencies_ms, 95),
            "min_ms": min(latencies_ms) if latencies_ms else None,
            "max_ms": max(latencies_ms) if latencies_ms else None,
            "misses": misses,
            "extra_runs": extra_runs,
        }
    finally:
        running.stop()


def measure_storm(tool: Tool, workdir: Path, stamp: Path, files: int, seconds: float) -> dict:
    # The files exist before the tool starts (entr takes a fixed list at start).
    project = make_project(workdir / f"proj-{tool.name}-storm", storm_files=files)
    stamps = workdir / f"stamps-{tool.name}-storm.txt"
    reader = StampReader(stamps)
    running = tool.start(project, stamp, stamps, workdir, "storm")
    try:
        get_ready(tool, running, reader, project / "src" / "a.py")
        reader.poll()
        gen = project / "src" / "gen"
        paths = [gen / f"m{i:04d}.py" for i in range(files)]
        # Steady pace: about every millisecond, write the files due by then (1.5 files per
        # ms by default). Coarser ticks would leave gaps (10 ms ticks: 10 ms of silence after
        # every batch) that a tool with a short debounce rightly takes for the end of a save.
        tick_s = 0.001
        gc.disable()  # no collector pause in the middle of the storm
        try:
            start_ns = time.time_ns()
            start = time.monotonic()
            done = 0
            during: list[int] = []
            last_write = start
            max_gap_s = 0.0  # the longest silence between two writes: how steady the pace was
            while done < files:
                due = min(files, int(files * (time.monotonic() - start) / seconds) + 1)
                while done < due:
                    with open(paths[done], "w") as f:
                        f.write(f"value = {done} # storm\n")
                    done += 1
                    now = time.monotonic()
                    max_gap_s = max(max_gap_s, now - last_write)
                    last_write = now
                during.extend(reader.poll())
                time.sleep(tick_s)
            end_ns = time.time_ns()
        finally:
            gc.enable()
        after = reader.wait_quiet(quiet_s=STORM_QUIET_S, cap_s=STORM_CAP_S)
        runs = [s for s in during + after if s >= start_ns]
        return {
            "files": files,
            "storm_s": (end_ns - start_ns) / 1e9,
            "runs": len(runs),
            "runs_during_storm": sum(1 for s in runs if s <= end_ns),
            "max_gap_between_writes_ms": round(max_gap_s * 1000, 3),
            # When the first run started, from the storm's first write, and when the last
            # one started, from its last write (negative: before the storm ended).
            "first_run_after_start_ms": (runs[0] - start_ns) / 1e6 if runs else None,
            "run_starts_after_start_ms": [round((s - start_ns) / 1e6, 3) for s in runs],
            "last_run_after_end_ms": (runs[-1] - end_ns) / 1e6 if runs else None,
        }
    finally:
        running.stop()


# --------------------------------------------------------------------------------------
# Main.
# --------------------------------------------------------------------------------------


def compile_stamp(workdir: Path) -> tuple[Path, bool]:
    """Compiles stamp.c, statically if the toolchain allows (less loader time)."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if not gcc:
        sys.exit("error: gcc (or cc) is needed to build the stamp program")
    source = workdir / "stamp.c"
    source.write_text(STAMP_C)
    binary = workdir / "stamp"
    for static in (True, False):
        argv = [gcc, "-O2", "-o", str(binary), str(source)] + (["-static"] if static else [])
        if subprocess.run(argv, capture_output=True).returncode == 0:
            return binary, static
    result = subprocess.run([gcc, "-O2", "-o", str(binary), str(source)],
                            capture_output=True, text=True)
    sys.exit(f"error: cannot compile stamp.c:\n{result.stderr}")


def fmt(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--looptop", help="looptop binary (default: $CARGO_TARGET_DIR/release/"
                        "looptop, else target/release/looptop in the repository)")
    parser.add_argument("--saves", type=int, default=50, help="saves per tool (default 50)")
    parser.add_argument("--tools", default=",".join(ALL_TOOLS),
                        help=f"comma-separated, in order (default {','.join(ALL_TOOLS)})")
    parser.add_argument("--out", default="/tmp/rerun_latency.json", help="JSON results file")
    parser.add_argument("--storm-files", type=int, default=STORM_FILES)
    parser.add_argument("--storm-seconds", type=float, default=STORM_SECONDS)
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (projects, stamps, tool logs)")
    args = parser.parse_args()

    wanted = chosen_tools(parser, args.tools, ALL_TOOLS)
    if args.saves < 1:
        parser.error("--saves must be at least 1")
    if args.storm_files < 1 or args.storm_seconds <= 0:
        parser.error("--storm-files must be at least 1 and --storm-seconds positive")

    # Ctrl-C raises KeyboardInterrupt even when started with SIGINT ignored (in the
    # background of a script); SIGTERM and SIGHUP do the same.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    # Which tools can run here.
    tools: list[Tool] = []
    skipped: dict[str, str] = {}
    for name in wanted:
        if name == "looptop":
            binary = args.looptop or default_looptop()
            if not binary or not os.access(binary, os.X_OK):
                skipped[name] = (f"not built ({binary or 'no target/release/looptop'}); build with "
                                 "`cargo build --release` or pass --looptop PATH")
                continue
        else:
            binary = find_program(name)
            if not binary:
                skipped[name] = "not installed"
                continue
            if name == "bacon" and not shutil.which("tmux"):
                skipped[name] = "needs tmux for its terminal UI, and tmux is not installed"
                continue
        tools.append(Tool(name, str(Path(binary).resolve())))
    for name, why in skipped.items():
        log(f"skipping {name}: {why}")

    workdir = Path(tempfile.mkdtemp(prefix="rerun-latency-"))
    if args.keep:
        log(f"keeping {workdir}")
    else:
        CLEANUP.push(f"temporary directory {workdir}",
                     lambda: shutil.rmtree(workdir, ignore_errors=True))

    results: dict = {
        "meta": {
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "host": platform.node(),
            "kernel": platform.release(),
            "cpus": os.cpu_count(),
            "loadavg_at_start": os.getloadavg(),
            "python": platform.python_version(),
            "saves": args.saves,
            "pause_ms": PAUSE_S * 1000,
            "save_timeout_s": SAVE_TIMEOUT_S,
            "storm_files": args.storm_files,
            "storm_seconds": args.storm_seconds,
            "storm_quiet_s": STORM_QUIET_S,
        },
        "skipped": skipped,
        "tools": {},
    }
    try:
        stamp, static = compile_stamp(workdir)
        results["meta"]["stamp_static"] = static
        for tool in tools:
            entry: dict = {"binary": tool.binary, "version": version_of(tool.name, tool.binary),
                           "invocation": tool.describe()}
            if tool.name == "looptop":
                entry["repo_commit_at_run"] = looptop_source()
            results["tools"][tool.name] = entry
            log(f"{tool.name} {entry['version']}: {args.saves} saves ...")
            try:
                entry["latency"] = measure_latency(tool, workdir, stamp, args.saves)
                lat = entry["latency"]
                log(f"  p50 {fmt(lat['p50_ms'])} ms, p95 {fmt(lat['p95_ms'])} ms, "
                    f"misses {lat['misses']}, extra runs {lat['extra_runs']}")
                log(f"{tool.name}: storm of {args.storm_files} files over "
                    f"{args.storm_seconds} s ...")
                entry["storm"] = measure_storm(tool, workdir, stamp, args.storm_files,
                                               args.storm_seconds)
                log(f"  {entry['storm']['runs']} run(s)")
            except ToolFailed as error:
                entry["error"] = str(error)
                log(f"  {tool.name} failed: {error}")
            except Exception as error:  # one broken tool must not stop the others
                entry["error"] = f"{type(error).__name__}: {error}"
                log(f"  {tool.name} failed: {entry['error']}")
    finally:
        CLEANUP.run_all()

    # Results: Markdown on stdout, everything in the JSON file.
    print("| tool | version | save->start p50 ms | p95 ms | misses | storm runs |")
    print("|---|---|---:|---:|---:|---:|")
    for name, entry in results["tools"].items():
        lat = entry.get("latency") or {}
        storm = entry.get("storm") or {}
        print(f"| {name} | {entry['version']} | {fmt(lat.get('p50_ms'))} | "
              f"{fmt(lat.get('p95_ms'))} | {lat.get('misses', 'n/a')} | "
              f"{storm.get('runs', 'n/a')} |")
    for name, why in skipped.items():
        print(f"| {name} | - | skipped: {why} | | | |")
    failed = {n: e["error"] for n, e in results["tools"].items() if "error" in e}
    for name, error in failed.items():
        print(f"\n{name} failed: {error.splitlines()[0]}")
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    log(f"raw results: {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    run_main(main)
