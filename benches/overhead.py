#!/usr/bin/env python3
"""Side-by-side overhead benchmark: looptop's sampling cost against btop and bottom.

The goal (from the issue): sampling must not be what slows the loop. btop and bottom are the
yardstick, measured in tmux at their default refresh. looptop samples four times a second
while a job runs and should stay under 1 % of one core as a whole, with a peak RSS under
30 MB with the history open, headless and with its TUI. This script measures all four
(looptop headless, looptop with its TUI, btop, bottom) in ONE run, at the same time, over the
same window, so they see the same machine and the same load.

What runs
=========

* **The workload**, a stand-in for a training job: ``python3 workload.py`` (written into a
  temporary directory) starts ``--workers`` (default 4) worker processes with
  ``multiprocessing`` (fork, like a PyTorch DataLoader). Each worker loops: a little CPU work
  (a short arithmetic loop, well under a millisecond), puts a small "batch" on a
  ``multiprocessing.Queue`` every tenth pass (which gives it a feeder thread), then sleeps
  10 ms. The main process consumes the queue and has a heartbeat thread. So the job is a tree
  of several processes and threads, lightly busy, for the whole window. It runs until the
  driver creates a stop file (with a safety deadline), then joins its workers and exits 0.
* **looptop**, headless: ``looptop run --once -- python3 workload.py STOP N MAX`` with a fresh
  project directory (one README file) as working directory (no looptop.toml: defaults, so
  250 ms sampling and the history in ``.looptop/history.duckdb`` of that directory),
  ``XDG_DATA_HOME`` / ``XDG_CONFIG_HOME`` pointing into the temporary directory and
  ``NO_COLOR=1``. Its stdout and stderr go to a log file.
* **looptop with its TUI** (``looptop-tui``): ``looptop -- python3 workload.py STOP_TUI N MAX``
  (plain ``looptop`` opens the TUI, runs the command once at start, then watches the
  directory) in a detached tmux session like btop's and bottom's below, in a fresh project
  directory of its own, with the same XDG variables, ``TERM`` as tmux sets it and no
  ``NO_COLOR``: the colored TUI as users see it. It is quit with ``q`` after the window.
* The headless and the TUI looptop each run their own copy of the workload, with a stop file
  each; btop and bottom run none.
* **btop** and **bottom** (``btm``), each in a detached tmux session of its own, on a private
  tmux server (its own socket; no other tmux session is touched), with a fixed terminal size
  (160x48), the tool given directly as the session's command, ``NO_COLOR`` removed from its
  environment, and ``XDG_CONFIG_HOME`` pointing to a fresh, empty directory, so that each runs
  with its *default* configuration whatever the user's config says: btop refreshes every
  2000 ms, bottom every 1000 ms (their documented defaults; btop's screen header shows its
  refresh, which the script reads back when it can). They simply watch the machine.

All four are started one after the other (the tmux ones first, the TUI looptop last of them);
the script waits until each looptop's workload tree is up (main process plus all workers)
and then a warm-up of ``WARMUP_S`` (3 s), so start-up costs are outside the window (looptop's
is reported separately).

What is measured
================

For each measured process, at the start and at the end of the window (``--seconds``,
default 60; the actual window length is taken from ``time.monotonic``):

* **CPU time**: ``utime + stime`` from ``/proc/PID/stat`` (fields 14 and 15, clock ticks,
  divided by ``os.sysconf("SC_CLK_TCK")``). These cover every thread of the process, alive or
  exited, and *not* its children (``cutime``/``cstime`` are not used): for looptop the job's
  CPU is not looptop's overhead. On Linux the sum ``utime + stime`` is scaled to the
  scheduler's exact runtime, so it is not a tick-sampled estimate; its resolution is one tick
  (10 ms), that is +-0.02 % of one core over a 60 s window.
* **CPU % of one core** = CPU time in the window / window length x 100.
* **CPU ms per refresh** = CPU time in the window / number of refreshes in the window
  (window / refresh interval: looptop 4 per second, btop 1 per 2 s, bottom 1 per 1 s). For
  looptop, everything it did in the window is charged to its samples (event loop, status
  printing or drawing the TUI, history batches), since sampling is why it is awake.
* **Peak RSS** = ``VmHWM`` and **RSS** = ``VmRSS`` from ``/proc/PID/status`` at the end of
  the window (MB = 10^6 bytes; the raw kB are in the JSON). looptop's ``RssAnon`` /
  ``RssFile`` split, thread count and CPU by thread (threads alive at the window's end, from
  ``/proc/PID/task``) are reported too, headless and TUI.

Which process is measured: for headless looptop, the pid the script started (its comm is
checked); for the others, the tmux pane's pid (``tmux display-message -p '#{pane_pid}'``),
which is the tool itself because the command is given directly to ``new-session``; its comm
is checked (``looptop`` / ``btop`` / ``btm``), and if it is not the tool, the pane's child
with that name is used. The tmux servers' own CPU (drawing what the TUIs print, the cost of
the terminal rather than of the tool) is measured the same way and shown apart, not added to
the tools'.

Also recorded: the host's CPU busy share over the window (from ``/proc/stat``, all cores,
workloads included), each workload tree's size and CPU, load averages, and for each looptop
the CPU it used before the window (start-up + warm-up) and, after the window, until it
exited (one looptop after the other): its stop file is created, the job ends, headless
looptop writes its last batch of samples and the run's end to the history and exits; the TUI
one does the same once its job has ended and it gets ``q``. The script polls it every 20 ms
meanwhile, so the peak RSS "until exit" is a lower bound (a peak in the last 20 ms before
exit can be missed).
looptop's exit code must be the job's (0) headless, 0 after ``q`` with the TUI.

**Idle**: a second, shorter measurement after the first (``--idle-seconds``, default 10,
0 to skip): ``looptop run --postpone -- touch MARKER`` in a fresh, unchanged project
directory, so looptop watches files and waits, with no run active. Measured the same way
after a short settle time (2 s). MARKER lives outside the project; if it exists at the end, a
run happened and the idle figure is flagged as invalid.

Caveats
=======

* No NVIDIA GPU / NVML here unless the machine has one (the output says which): looptop's
  NVML reads are then not part of its figures.
* ``--once`` runs no file watcher; in watch mode (the TUI's) the watcher (inotify) is also
  there, idle unless files change (its idle cost is what the idle measurement shows, headless,
  with the sampler off).
* On a machine with few cores, everything competes: the two workloads, the four tools, the tmux
  servers, this script (which sleeps during the window). Anything else running (a build)
  changes the numbers; the load average at start is printed. Run it on a quiet machine.
* btop and bottom sample the whole machine (every process) at their refresh and draw a
  screen; looptop samples the host and the job's tree only; headless it prints nothing while
  the run is quiet, with its TUI it redraws. That is the comparison the issue asks for (the
  tools at their defaults), not a like-for-like one per sample.

Usage
=====

    python3 benches/overhead.py [--seconds 60] [--looptop PATH] [--json]
                                [--tools looptop,looptop-tui,btop,bottom] [--workers 4]
                                [--idle-seconds 10] [--keep] [--baseline PATH]

``--baseline PATH`` adds a fifth tool, ``looptop-baseline``: another looptop binary (an
earlier commit's build), headless, with its own copy of the workload, in the same window: what
a change to looptop costs, side by side (``--tools looptop,looptop-baseline`` for just the two).

Progress goes to stderr; the results (Markdown, or JSON with ``--json``) go to stdout, ready
to paste into a notes file. Every process the script starts is stopped on exit, on an error
and on Ctrl-C / SIGTERM / SIGHUP (tmux servers killed, process groups killed); the temporary
directory is removed unless ``--keep``.
"""

from __future__ import annotations

import argparse
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

from benchlib import (CLEANUP, add_looptop_option, chosen_tools, find_program, first_version_line,
                      kill_group, log, looptop_binary, looptop_source, read_status, run_main, tail_of)

# --------------------------------------------------------------------------------------
# Settings.
# --------------------------------------------------------------------------------------

ALL_TOOLS = ["looptop", "looptop-tui", "btop", "bottom", "looptop-baseline"]
# The same binary, headless and with its TUI; and another looptop (`--baseline PATH`), headless.
LOOPTOPS = ("looptop", "looptop-tui", "looptop-baseline")
HEADLESS = ("looptop", "looptop-baseline")
MODE = {"looptop": "headless", "looptop-tui": "TUI", "looptop-baseline": "baseline headless"}
# Refresh interval of each tool at its defaults, in seconds.
INTERVAL_S = {"looptop": 0.250, "looptop-tui": 0.250, "btop": 2.0, "bottom": 1.0, "looptop-baseline": 0.250}
# The process name (comm) each measured process must have.
COMM = {"looptop": "looptop", "looptop-tui": "looptop", "btop": "btop", "bottom": "btm",
        "looptop-baseline": "looptop"}
INSTALL_HINT = {
    "btop": "apt-get install -y btop",
    "bottom": "cargo install bottom --locked",
    "tmux": "apt-get install -y tmux",
}
WARMUP_S = 3.0  # after the workload's tree is up, before the window opens
TREE_UP_TIMEOUT_S = 20.0  # the workload must have all its processes by then
IDLE_SETTLE_S = 2.0  # idle measurement: settle time after start
EXIT_WAIT_S = 30.0  # looptop must exit this long after the stop file at most
EXIT_POLL_S = 0.020
TMUX_COLUMNS, TMUX_ROWS = 160, 48
TARGET_CPU_PCT = 1.0  # looptop as a whole, % of one core, while a job runs
TARGET_PEAK_RSS_MB = 30.0  # MB = 10^6 bytes

CLK_TCK = os.sysconf("SC_CLK_TCK")

WORKLOAD_PY = r'''
"""A stand-in for a training job: a main process that consumes "batches" from N worker
processes (forked, like DataLoader workers), each lightly busy, until STOP_FILE exists."""
import multiprocessing as mp
import os
import queue as queue_module
import sys
import threading
import time


def worker(index, stop_file, batches):
    passes = 0
    while not os.path.exists(stop_file):
        acc = 0
        for i in range(2000):  # "decode a sample": a little CPU
            acc += i * i
        passes += 1
        if passes % 10 == 0:
            batches.put((index, passes, acc))
        time.sleep(0.010)  # "wait for I/O"


def heartbeat(stop_file):
    while not os.path.exists(stop_file):
        time.sleep(0.5)


def main():
    stop_file, workers, max_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    context = mp.get_context("fork")
    batches = context.Queue()
    procs = [context.Process(target=worker, args=(i, stop_file, batches), name=f"loader-{i}")
             for i in range(workers)]
    for proc in procs:
        proc.start()
    threading.Thread(target=heartbeat, args=(stop_file,), daemon=True).start()
    print(f"workload: main pid {os.getpid()}, {workers} workers started", flush=True)
    deadline = time.monotonic() + max_s
    received = 0
    while not os.path.exists(stop_file):
        if time.monotonic() > deadline:  # safety net: the driver is gone
            open(stop_file, "w").close()
            break
        try:
            batches.get(timeout=0.1)
            received += 1
        except queue_module.Empty:
            pass
    while True:  # drain, so that the workers' feeder threads can finish
        try:
            batches.get(timeout=0.2)
            received += 1
        except queue_module.Empty:
            break
    for proc in procs:
        proc.join(timeout=5)
        if proc.is_alive():
            proc.kill()
    print(f"workload: done, {received} batches", flush=True)


if __name__ == "__main__":
    main()
'''


# --------------------------------------------------------------------------------------
# /proc readings.
# --------------------------------------------------------------------------------------


def read_stat(pid: int) -> Optional[dict]:
    """comm, CPU ticks (utime + stime, this process only), threads and process group from
    /proc/PID/stat; None when the process is gone."""
    return read_stat_path(Path(f"/proc/{pid}/stat"))


def read_stat_path(path: Path) -> Optional[dict]:
    try:
        text = path.read_text()
    except OSError:
        return None
    close = text.rfind(")")
    comm = text[text.find("(") + 1:close]
    # Fields after the name: state(3) ppid(4) pgrp(5) session(6) ... utime(14) stime(15)
    # ... num_threads(20); index = field number - 3.
    rest = text[close + 1:].split()
    if len(rest) < 18 or rest[0] == "Z":
        return None
    return {
        "comm": comm,
        "ppid": int(rest[1]),
        "pgrp": int(rest[2]),
        "ticks": int(rest[11]) + int(rest[12]),
        "threads": int(rest[17]),
    }


def thread_ticks(pid: int) -> dict[int, tuple[str, int]]:
    """Per live thread of `pid`: (thread name, utime + stime ticks)."""
    out: dict[int, tuple[str, int]] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        stat = read_stat_path(Path(f"/proc/{pid}/task/{tid}/stat"))
        if stat:
            out[int(tid)] = (stat["comm"], stat["ticks"])
    return out


def by_thread_name(begin: dict[int, tuple[str, int]], end: dict[int, tuple[str, int]]) -> dict:
    """CPU ms in the window per thread name, for threads alive at its end (a thread that
    started in the window counts from 0)."""
    out: dict[str, float] = {}
    for tid, (name, ticks) in end.items():
        before = begin.get(tid, (name, 0))[1]
        out[name] = out.get(name, 0.0) + (ticks - before) / CLK_TCK * 1000
    return dict(sorted(out.items(), key=lambda item: -item[1]))


def snapshot(pid: int) -> Optional[dict]:
    stat = read_stat(pid)
    if stat is None:
        return None
    stat.update(read_status(pid))
    stat["t"] = time.monotonic()
    return stat


def children_of(pid: int) -> list[int]:
    """Direct children of every thread of `pid` (/proc/PID/task/TID/children)."""
    found: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        try:
            found.extend(int(p) for p in Path(f"/proc/{pid}/task/{tid}/children").read_text().split())
        except (OSError, ValueError):
            pass
    return found


def descendants_of(pid: int) -> list[int]:
    out: list[int] = []
    queue = children_of(pid)
    while queue:
        child = queue.pop()
        if child not in out:
            out.append(child)
            queue.extend(children_of(child))
    return out


def pss_kb(pid: int) -> Optional[int]:
    """Proportional set size of `pid` (/proc/PID/smaps_rollup): its RSS with shared pages split
    between the processes that map them."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def looptop_processes(pid: int) -> list[int]:
    """`pid` and every looptop process below it (its guard, a history writer): moving work
    into a child must not hide it."""
    return [pid] + [p for p in descendants_of(pid) if (read_stat(p) or {}).get("comm") == "looptop"]


def host_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of all cores from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already in user
    return total - idle, total


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def nvml_present() -> bool:
    """Whether this machine has an NVIDIA driver looptop could read through NVML."""
    if Path("/dev/nvidiactl").exists():
        return True
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=10)
        return "libnvidia-ml.so" in out.stdout
    except (OSError, subprocess.SubprocessError):
        return False


# --------------------------------------------------------------------------------------
# Processes.
# --------------------------------------------------------------------------------------


def kill_groups(pgids: set[int]) -> None:
    """SIGKILL to process groups the script recorded (the job's, started by looptop)."""
    me = os.getpgrp()
    for pgid in pgids:
        if pgid > 1 and pgid != me:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


class Tmux:
    """A tool in a detached tmux session on a private server (its own socket), started in
    `cwd` (default: the script's). The pane stays after the tool exits so that its last
    screen can be shown if it fails. NO_COLOR is left out of its environment: the tools draw
    in color, as users see them."""

    def __init__(self, name: str, argv: list[str], workdir: Path, env: dict,
                 cwd: Optional[Path] = None) -> None:
        self.name = name
        self.socket = f"looptop-overhead-{os.getpid()}-{name}"
        conf = workdir / f"tmux-{name}.conf"
        conf.write_text("set -g remain-on-exit on\nset -g history-limit 2000\n")
        self.tmux = ["tmux", "-L", self.socket, "-f", str(conf)]
        self.target = f"={name}:"  # exact session name (no prefix or window-name match)
        new_session = ["new-session", "-d", "-s", name, "-x", str(TMUX_COLUMNS), "-y",
                       str(TMUX_ROWS)] + (["-c", str(cwd)] if cwd else []) + argv
        self.command = ("env -u NO_COLOR "
                        + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
                        + f" tmux -L {self.socket} {shlex.join(new_session)}")
        self.pane_pid: Optional[int] = None
        self.server_pid: Optional[int] = None
        self.socket_path: Optional[Path] = None
        # The server is started by this first command and inherits its environment.
        self.stop = CLEANUP.push(f"tmux server {self.socket}", self._stop)
        base_env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
        subprocess.run(self.tmux + new_session, check=True, stdin=subprocess.DEVNULL,
                       env={**base_env, **env})
        fields = self.query("#{pane_pid} #{pid} #{socket_path}").split(maxsplit=2)
        if len(fields) == 3 and fields[0].isdigit() and fields[1].isdigit():
            self.pane_pid, self.server_pid = int(fields[0]), int(fields[1])
            self.socket_path = Path(fields[2])

    def query(self, fmt: str) -> str:
        out = subprocess.run(self.tmux + ["display-message", "-p", "-t", self.target, fmt],
                             capture_output=True, text=True, stdin=subprocess.DEVNULL)
        return out.stdout.strip() if out.returncode == 0 else ""

    def alive(self) -> bool:
        return self.query("#{pane_dead}") == "0"

    def send_keys(self, *keys: str) -> None:
        subprocess.run(self.tmux + ["send-keys", "-t", self.target, *keys],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    def screen(self) -> str:
        out = subprocess.run(self.tmux + ["capture-pane", "-p", "-t", self.target],
                             capture_output=True, text=True, stdin=subprocess.DEVNULL)
        return out.stdout if out.returncode == 0 else ""

    def describe_failure(self) -> str:
        lines = [line.rstrip() for line in self.screen().splitlines() if line.strip()]
        return "last screen:\n" + "\n".join(lines)[-1500:]

    def _stop(self) -> None:
        subprocess.run(self.tmux + ["kill-server"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self.socket_path is not None and self.socket_path.name == self.socket:
            self.socket_path.unlink(missing_ok=True)  # a killed server may leave it behind
        # Fallback: the pane's process (the tool) and its group, if still there.
        if self.pane_pid is not None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(os.getpgid(self.pane_pid), sig)
                    time.sleep(0.2)
                except (ProcessLookupError, PermissionError):
                    break


def find_tool_pid(root: int, comm: str) -> Optional[int]:
    """`root` if its comm is `comm`, else its first descendant with that comm."""
    for pid in [root] + descendants_of(root):
        stat = read_stat(pid)
        if stat and stat["comm"] == comm:
            return pid
    return None


# --------------------------------------------------------------------------------------
# Tools.
# --------------------------------------------------------------------------------------


def looptop_xdg(workdir: Path) -> dict:
    """looptop's data and config directories, inside the temporary directory."""
    return {"XDG_DATA_HOME": str(workdir / "xdg-data"),
            "XDG_CONFIG_HOME": str(workdir / "xdg-config")}


def start_looptop(binary: str, argv_tail: list[str], project: Path, workdir: Path,
                  label: str) -> tuple[subprocess.Popen, Path, dict]:
    """Starts looptop in `project` in a session of its own, output to a log."""
    env = {**looptop_xdg(workdir), "NO_COLOR": "1"}
    log_path = workdir / f"looptop-{label}.log"
    log_file = open(log_path, "wb")
    proc = subprocess.Popen([binary] + argv_tail, cwd=project, stdin=subprocess.DEVNULL,
                            stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, **env})
    log_file.close()  # the child holds its own copy
    return proc, log_path, env


class ToolFailed(Exception):
    pass


# --------------------------------------------------------------------------------------
# Measurements.
# --------------------------------------------------------------------------------------


def window_figures(start: dict, end: dict, interval_s: Optional[float]) -> dict:
    """CPU and memory figures of one process over the window."""
    window_s = end["t"] - start["t"]
    cpu_s = (end["ticks"] - start["ticks"]) / CLK_TCK
    out = {
        "window_s": round(window_s, 3),
        "cpu_s": round(cpu_s, 3),
        "cpu_pct_of_one_core": cpu_s / window_s * 100 if window_s > 0 else None,
        "cpu_before_window_ms": start["ticks"] / CLK_TCK * 1000,
        "peak_rss_mb": end["hwm_kb"] * 1024 / 1e6 if "hwm_kb" in end else None,
        "rss_mb": end["rss_kb"] * 1024 / 1e6 if "rss_kb" in end else None,
        "status_kb_at_end": {k: v for k, v in end.items() if k.endswith("_kb")},
        "threads_at_end": end["threads"],
    }
    if interval_s:
        refreshes = window_s / interval_s
        out["refresh_interval_ms"] = interval_s * 1000
        out["refreshes_in_window"] = round(refreshes, 1)
        out["cpu_ms_per_refresh"] = cpu_s * 1000 / refreshes if refreshes > 0 else None
    return out


def wait_for_tree(looptop: int, workers: int, alive: Callable[[], bool],
                  describe: Callable[[], str]) -> int:
    """Waits until the job (the workload) of looptop `looptop` has its main process and all
    its workers; returns the job's pid. `alive` says whether looptop still runs, `describe`
    what it left behind (log tail, last screen) for the error."""
    deadline = time.monotonic() + TREE_UP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not alive():
            raise ToolFailed(f"looptop exited before the workload was up; {describe()}")
        for child in children_of(looptop):
            stat = read_stat(child)
            if stat and len(descendants_of(child)) >= workers:
                return child
        time.sleep(0.1)
    raise ToolFailed(f"the workload did not start {workers} workers within "
                     f"{TREE_UP_TIMEOUT_S:.0f} s; {describe()}")


def tree_ticks(pids: list[int]) -> int:
    return sum((read_stat(pid) or {"ticks": 0})["ticks"] for pid in pids)


def follow(pid: int, last: Optional[dict], done: Callable[[], bool]) -> tuple[Optional[dict], bool]:
    """Snapshots `pid` every EXIT_POLL_S until `done()`, for EXIT_WAIT_S at most; returns the
    last snapshot and whether `done()` came true."""
    deadline = time.monotonic() + EXIT_WAIT_S
    while not done():
        if time.monotonic() > deadline:
            return last, False
        last = snapshot(pid) or last
        time.sleep(EXIT_POLL_S)
    return last, True


def exit_figures(last: Optional[dict], end: Optional[dict], t_stop: float) -> dict:
    """looptop's figures from the stop file until it exited, as last seen."""
    return {
        "exit_after_stop_s": round(time.monotonic() - t_stop, 3),
        "total_cpu_ms_last_seen": last["ticks"] / CLK_TCK * 1000 if last else None,
        "cpu_after_window_ms_last_seen":
            (last["ticks"] - end["ticks"]) / CLK_TCK * 1000 if last and end else None,
        "peak_rss_mb_last_seen": last["hwm_kb"] * 1024 / 1e6 if last and "hwm_kb" in last else None,
    }


def new_project(path: Path) -> Path:
    """A fresh project directory for looptop: no looptop.toml, one file."""
    path.mkdir()
    (path / "README").write_text("benchmark project of benches/overhead.py\n")
    return path


def measure_main(args: argparse.Namespace, tools: dict, workdir: Path, results: dict) -> None:
    """The side-by-side run: looptop headless and with its TUI (each running its own copy of
    the workload), btop and bottom in tmux."""
    workload = workdir / "workload.py"
    workload.write_text(WORKLOAD_PY)
    stop_files = {"looptop": workdir / "workload.stop",
                  "looptop-tui": workdir / "workload-tui.stop",
                  "looptop-baseline": workdir / "workload-baseline.stop"}
    projects = {"looptop": workdir / "project", "looptop-tui": workdir / "project-tui",
                "looptop-baseline": workdir / "project-baseline"}
    max_s = WARMUP_S + args.seconds + TREE_UP_TIMEOUT_S + 120
    python = sys.executable or shutil.which("python3") or "python3"

    def job_argv(name: str) -> list[str]:
        return ["--", python, str(workload), str(stop_files[name]), str(args.workers),
                str(int(max_s))]

    started: dict = {}  # name -> {"pid", "server_pid", "handle", "proc", "log", "job_pid"}
    # Cleanup runs in reverse order: for each looptop the stop file first (the job ends by
    # itself), then looptop; last the jobs' process groups, in case looptop could not stop them.
    job_pgids: set[int] = set()
    CLEANUP.push("the workloads' process groups", lambda: kill_groups(job_pgids))
    # The ones in tmux first, btop and bottom before looptop's TUI, so that a looptop's
    # start-up is not the first thing they see.
    for name in ("btop", "bottom", "looptop-tui"):
        if name not in tools:
            continue
        entry = results["tools"][name]
        session = None
        try:
            if name == "looptop-tui":
                argv = [tools[name]] + job_argv(name)
                env, cwd = looptop_xdg(workdir), new_project(projects[name])
            else:
                config_home = workdir / f"config-{name}"
                config_home.mkdir()
                argv, env, cwd = [tools[name]], {"XDG_CONFIG_HOME": str(config_home)}, None
            session = Tmux(name, argv, workdir, env, cwd)
            if name == "looptop-tui":
                CLEANUP.push("workload stop file (TUI)", stop_files[name].touch)
            entry["command"] = session.command
            if session.pane_pid is None:
                raise ToolFailed("tmux gave no pane pid")
            time.sleep(0.3)
            pid = find_tool_pid(session.pane_pid, COMM[name])
            if pid is None or not session.alive():
                raise ToolFailed(f"not running in its tmux pane; {session.describe_failure()}")
            entry["pid"] = pid
            entry["pane_pid_is_tool"] = pid == session.pane_pid
            log(f"{name}: pid {pid} in tmux (server pid {session.server_pid})")
            info = {"pid": pid, "server_pid": session.server_pid, "handle": session}
            if name == "looptop-tui":
                log(f"{name}: running the workload ({args.workers} workers)")
                info["job_pid"] = wait_for_tree(pid, args.workers, session.alive,
                                                session.describe_failure)
                job_pgids.add((read_stat(info["job_pid"]) or {"pgrp": info["job_pid"]})["pgrp"])
            started[name] = info
        except (ToolFailed, subprocess.CalledProcessError, OSError) as error:
            entry["error"] = str(error)
            log(f"{name} failed to start: {error}")
            if session is not None:
                if name in stop_files:
                    stop_files[name].touch()
                session.stop()

    for name in (n for n in HEADLESS if n in tools):
        entry = results["tools"][name]
        argv_tail = ["run", "--once"] + job_argv(name)
        proc, log_path, env = start_looptop(tools[name], argv_tail,
                                            new_project(projects[name]), workdir, "run")
        stop_looptop = CLEANUP.push(f"{name} (pid {proc.pid})", lambda proc=proc: kill_group(proc))
        CLEANUP.push(f"workload stop file ({name})", stop_files[name].touch)
        entry["command"] = (f"cd {shlex.quote(str(projects[name]))} && "
                            + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " "
                            + shlex.join([tools[name]] + argv_tail))
        entry["log"] = str(log_path)
        entry["pid"] = proc.pid
        log(f"{name}: pid {proc.pid}, running the workload ({args.workers} workers)")

        def describe(proc=proc, log_path=log_path) -> str:
            status = "" if proc.poll() is None else f"exit status {proc.returncode}; "
            return f"{status}log tail:\n{tail_of(log_path)}"

        try:
            job_pid = wait_for_tree(proc.pid, args.workers, lambda proc=proc: proc.poll() is None, describe)
        except ToolFailed as error:
            entry["error"] = str(error)
            log(f"{name} failed: {error}")
            stop_looptop()
            job_pid = None
        if job_pid is not None:
            stat = read_stat(proc.pid)
            if stat is None or stat["comm"] != COMM[name]:
                raise ToolFailed(f"pid {proc.pid} is not looptop ({stat})")
            job_pgids.add((read_stat(job_pid) or {"pgrp": job_pid})["pgrp"])
            started[name] = {"pid": proc.pid, "proc": proc, "log": log_path,
                                  "job_pid": job_pid}

    if not started:
        raise ToolFailed("nothing to measure: no tool started")

    log(f"warm-up: {WARMUP_S:.0f} s")
    time.sleep(WARMUP_S)
    for name, info in started.items():
        if "handle" in info and not info["handle"].alive():
            raise ToolFailed(f"{name} exited during the warm-up; {info['handle'].describe_failure()}")

    # The window.
    looptops = [name for name in LOOPTOPS if name in started]
    job_pids = {name: [started[name]["job_pid"]] + descendants_of(started[name]["job_pid"])
                for name in looptops}
    for pid in (pid for pids in job_pids.values() for pid in pids):
        stat = read_stat(pid)
        if stat:
            job_pgids.add(stat["pgrp"])
    begin: dict = {}
    servers_begin: dict = {}
    host_begin = host_cpu()
    job_begin = {name: tree_ticks(pids) for name, pids in job_pids.items()}
    results["meta"]["loadavg_at_window_start"] = os.getloadavg()
    threads_begin = {name: thread_ticks(started[name]["pid"]) for name in looptops}
    for name, info in started.items():
        begin[name] = snapshot(info["pid"])
        if info.get("server_pid"):
            servers_begin[name] = snapshot(info["server_pid"])
    log(f"measuring for {args.seconds:g} s ...")
    t_begin = time.monotonic()
    next_note = t_begin + 10
    while True:
        now = time.monotonic()
        if now >= t_begin + args.seconds:
            break
        time.sleep(min(1.0, t_begin + args.seconds - now))
        for name, info in started.items():
            if "error" in results["tools"][name]:
                continue
            gone = (info["proc"].poll() is not None) if "proc" in info else not info["handle"].alive()
            if gone:
                results["tools"][name]["error"] = "exited during the window"
                log(f"{name} exited during the window")
        if time.monotonic() >= next_note:
            log(f"  {time.monotonic() - t_begin:.0f} s")
            next_note += 10
    end: dict = {name: snapshot(info["pid"]) for name, info in started.items()}
    for name in looptops:
        pids = looptop_processes(started[name]["pid"])
        sizes = [pss_kb(p) for p in pids]
        results["tools"][name]["looptop_processes_at_end"] = len(pids)
        results["tools"][name]["pss_mb_all_looptop_at_end"] = (
            sum(sizes) * 1024 / 1e6 if all(v is not None for v in sizes) else None)
    threads_end = {name: thread_ticks(started[name]["pid"]) for name in threads_begin}
    servers_end = {name: snapshot(started[name]["server_pid"]) for name in servers_begin}
    host_end = host_cpu()
    job_end = {name: tree_ticks(pids) for name, pids in job_pids.items()}
    results["meta"]["loadavg_at_window_end"] = os.getloadavg()

    window_s = max((s["t"] for s in end.values() if s), default=time.monotonic()) - t_begin
    busy = host_end[0] - host_begin[0]
    total = host_end[1] - host_begin[1]
    results["meta"]["window_s"] = round(window_s, 3)
    results["meta"]["host_cpu_busy_pct_all_cores"] = busy / total * 100 if total else None
    for name, pids in job_pids.items():
        results.setdefault("workloads", {})[name] = {
            "processes": len(pids),
            "threads": sum((read_stat(p) or {"threads": 0})["threads"] for p in pids),
            "cpu_pct_of_one_core": (job_end[name] - job_begin[name]) / CLK_TCK / window_s * 100,
        }

    for name in started:
        entry = results["tools"][name]
        if "error" in entry:
            continue
        if begin[name] is None or end[name] is None:
            entry["error"] = "the process was gone at the end of the window"
            continue
        entry.update(window_figures(begin[name], end[name], INTERVAL_S[name]))
        if name in threads_begin:
            entry["cpu_ms_by_thread"] = by_thread_name(threads_begin[name], threads_end[name])
        if name in servers_begin and servers_begin[name] and servers_end.get(name):
            server = window_figures(servers_begin[name], servers_end[name], None)
            results.setdefault("tmux_servers", {})[name] = {
                "pid": started[name]["server_pid"],
                "cpu_pct_of_one_core": server["cpu_pct_of_one_core"],
                "peak_rss_mb": server["peak_rss_mb"],
            }
    if "btop" in started:
        # btop shows its refresh in its header ("- 2000ms +"): read it back.
        match = re.search(r"(\d+)\s*ms\s*\+", started["btop"]["handle"].screen())
        if match:
            results["tools"]["btop"]["refresh_ms_on_screen"] = int(match.group(1))

    # After the window, one looptop after the other (so that each is followed from its own
    # stop file on): let the job end; looptop writes its last samples and exits (the headless
    # one by itself, the TUI on `q` once its job has ended).
    for name in (n for n in HEADLESS if n in started):
        entry = results["tools"][name]
        proc = started[name]["proc"]
        stop_files[name].touch()
        t_stop = time.monotonic()
        last, exited = follow(proc.pid, end[name], lambda proc=proc: proc.poll() is not None)
        if not exited:
            entry["after_window"] = {"error": f"still running {EXIT_WAIT_S:.0f} s after the job "
                                     "was told to stop"}
        else:
            entry["after_window"] = {"exit_code": proc.returncode,
                                     **exit_figures(last, end[name], t_stop)}
            if proc.returncode != 0:
                entry["after_window"]["log_tail"] = tail_of(started[name]["log"])
    if "looptop-tui" in started:
        entry = results["tools"]["looptop-tui"]
        pid, session = started["looptop-tui"]["pid"], started["looptop-tui"]["handle"]
        stop_files["looptop-tui"].touch()
        t_stop = time.monotonic()
        last, job_ended = follow(pid, end["looptop-tui"],
                                 lambda: not any(read_stat(p) for p in job_pids["looptop-tui"]))
        job_end_s = round(time.monotonic() - t_stop, 3)
        session.send_keys("q")
        # The pane's process is gone (read_stat: None, also as a zombie) and tmux has seen it.
        last, exited = follow(pid, last, lambda: read_stat(pid) is None and not session.alive())
        if not exited:
            entry["after_window"] = {"error": f"still running {EXIT_WAIT_S:.0f} s after `q`"}
        else:
            status = session.query("#{pane_dead_status}")
            entry["after_window"] = {"exit_code": int(status) if status.isdigit() else None,
                                     "job_ended_by_itself": job_ended,
                                     "job_end_after_stop_s": job_end_s,
                                     **exit_figures(last, end["looptop-tui"], t_stop)}
            if status != "0":
                entry["after_window"]["last_screen"] = session.describe_failure()
    for name in looptops:
        history = projects[name] / ".looptop" / "history.duckdb"
        results["tools"][name]["history_file_bytes"] = (history.stat().st_size
                                                        if history.exists() else None)

    for info in started.values():
        if "handle" in info:
            info["handle"].stop()


def measure_idle(args: argparse.Namespace, binary: str, workdir: Path) -> dict:
    """looptop watching an unchanged directory, no run active."""
    project = workdir / "idle-project"
    project.mkdir()
    (project / "README").write_text("idle benchmark project of benches/overhead.py\n")
    marker = workdir / "idle-run-happened"
    argv_tail = ["run", "--postpone", "--", "touch", str(marker)]
    proc, log_path, env = start_looptop(binary, argv_tail, project, workdir, "idle")
    stop = CLEANUP.push(f"looptop idle (pid {proc.pid})", lambda: kill_group(proc, signal.SIGINT))
    out: dict = {
        "command": (f"cd {shlex.quote(str(project))} && "
                    + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " "
                    + shlex.join([binary] + argv_tail)),
        "log": str(log_path),
    }
    try:
        time.sleep(IDLE_SETTLE_S)
        if proc.poll() is not None:
            raise ToolFailed(f"exited (status {proc.returncode}); log tail:\n{tail_of(log_path)}")
        stat = read_stat(proc.pid)
        if stat is None or stat["comm"] != COMM["looptop"]:
            raise ToolFailed(f"pid {proc.pid} is not looptop ({stat})")
        log(f"looptop idle: measuring for {args.idle_seconds:g} s ...")
        begin = snapshot(proc.pid)
        time.sleep(args.idle_seconds)
        end = snapshot(proc.pid)
        if begin is None or end is None:
            raise ToolFailed(f"exited during the measurement; log tail:\n{tail_of(log_path)}")
        out.update(window_figures(begin, end, None))
        out["run_happened"] = marker.exists()
    except ToolFailed as error:
        out["error"] = str(error)
        log(f"looptop idle failed: {error}")
    finally:
        stop()
    return out


# --------------------------------------------------------------------------------------
# Output.
# --------------------------------------------------------------------------------------


def fmt(value: Optional[float], digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def looptop_details(name: str, entry: dict) -> str:
    """The line of details of one measured looptop: memory, CPU outside the window, threads."""
    status = entry["status_kb_at_end"]
    details = (f"looptop {MODE[name]} details: {entry['threads_at_end']} threads; RSS at the "
               f"window's end {fmt(status.get('anon_kb', 0) * 1024 / 1e6)} MB anonymous + "
               f"{fmt(status.get('file_kb', 0) * 1024 / 1e6)} MB file-backed; "
               f"CPU before the window (start-up + warm-up) {entry['cpu_before_window_ms']:.0f} ms")
    if entry.get("pss_mb_all_looptop_at_end") is not None:
        details += (f"; PSS of all {entry['looptop_processes_at_end']} looptop processes (its guard "
                    f"included) at the window's end {fmt(entry['pss_mb_all_looptop_at_end'])} MB")
    after = entry.get("after_window") or {}
    if "exit_code" in after:
        if name in HEADLESS:
            steps = "job stop, last history write"
        elif after["job_ended_by_itself"]:
            steps = (f"job stop, {after['job_end_after_stop_s']:.2f} s, then `q`, "
                     "last history write")
        else:
            steps = f"the job had not ended after {EXIT_WAIT_S:.0f} s: `q` stopped it"
        details += (f"; after the window until exit ({steps}), "
                    f"{after['exit_after_stop_s']:.2f} s: "
                    f"{fmt(after['cpu_after_window_ms_last_seen'], 0)} ms CPU, peak RSS seen "
                    f"{fmt(after['peak_rss_mb_last_seen'])} MB (a lower bound: polled every "
                    f"{EXIT_POLL_S * 1000:.0f} ms); exit code {after['exit_code']}")
    elif "error" in after:
        details += f"; after the window: {after['error']}"
    if entry.get("cpu_ms_by_thread"):
        details += ("; CPU in the window by thread (threads alive at its end): "
                    + ", ".join(f"{thread} {ms:.0f} ms"
                                for thread, ms in entry["cpu_ms_by_thread"].items()))
    if entry.get("history_file_bytes") is not None:
        details += f"; history file {entry['history_file_bytes'] / 1e6:.1f} MB"
    return details + "."


def render(results: dict) -> str:
    meta = results["meta"]
    lines = ["## Overhead: looptop (headless and TUI), btop and bottom side by side", ""]
    lines.append(f"- date: {meta['date']}")
    lines.append(f"- machine: {meta['cores']} cores, {meta['cpu_model']}, kernel "
                 f"{meta['kernel']}, {meta['memory_gb']:.1f} GB RAM; NVIDIA/NVML: "
                 + ("present" if meta["nvml_present"] else
                    "absent (looptop's GPU reads are not part of its figures)"))
    load = meta.get("loadavg_at_window_start") or meta["loadavg_at_start"]
    lines.append(f"- load average at the window's start: {' '.join(f'{v:.2f}' for v in load)}"
                 + (f"; host CPU busy over the window: {fmt(meta.get('host_cpu_busy_pct_all_cores'))} %"
                    " of all cores (workload and tools included)"
                    if meta.get("host_cpu_busy_pct_all_cores") is not None else ""))
    if meta.get("window_s"):
        lines.append(f"- window: {meta['window_s']:.1f} s, the same for every tool, after a "
                     f"{WARMUP_S:g} s warm-up; all tools running at the same time")
    workloads = results.get("workloads")
    if workloads:
        lines.append("- workload, one copy per looptop (run by it, not by btop or bottom): "
                     + "; ".join(f"{MODE[name]}: {w['processes']} processes, {w['threads']} "
                                 f"threads, {fmt(w['cpu_pct_of_one_core'])} % of one core over "
                                 "the window"
                                 for name, w in workloads.items()))
    versions = ", ".join(f"{name} `{entry['version']}`" for name, entry in results["tools"].items()
                         if name != "looptop-tui")  # the same binary as looptop
    if versions:
        lines.append(f"- versions: {versions}")
    looptops = [name for name in LOOPTOPS if name in results["tools"]]
    measured = [name for name in looptops if name != "looptop-baseline"]
    if measured:
        lines.append(f"- looptop binary ({' and '.join(MODE[name] for name in measured)}): "
                     f"{results['tools'][measured[0]]['binary']} "
                     f"(repository at {meta.get('repo_commit') or 'unknown'})")
    if "looptop-baseline" in results["tools"]:
        lines.append(f"- baseline looptop binary (`--baseline`): {results['tools']['looptop-baseline']['binary']}")
    lines.append("")
    lines.append("| tool | refresh | CPU % of one core | CPU ms / refresh | peak RSS MB | RSS MB |")
    lines.append("|---|---:|---:|---:|---:|---:|")
    label = {"looptop": "looptop, headless, job running",
             "looptop-baseline": "looptop baseline, headless, job running",
             "looptop-tui": "looptop, TUI (tmux), job running", "btop": "btop (tmux)",
             "bottom": "bottom `btm` (tmux)"}
    for name, entry in results["tools"].items():
        if "error" in entry or "cpu_pct_of_one_core" not in entry:
            why = entry["error"].splitlines()[0] if "error" in entry else "not measured"
            lines.append(f"| {label[name]} | {INTERVAL_S[name] * 1000:.0f} ms | failed: "
                         f"{why} | | | |")
            continue
        lines.append(f"| {label[name]} | {entry['refresh_interval_ms']:.0f} ms | "
                     f"{fmt(entry['cpu_pct_of_one_core'], 2)} | {fmt(entry['cpu_ms_per_refresh'], 2)} | "
                     f"{fmt(entry['peak_rss_mb'])} | {fmt(entry['rss_mb'])} |")
    idle = results.get("idle")
    if idle:
        if "error" in idle:
            lines.append(f"| looptop, idle (no run) | - | failed: {idle['error'].splitlines()[0]} | | | |")
        else:
            lines.append(f"| looptop, idle (no run), {idle['window_s']:.0f} s | - | "
                         f"{fmt(idle['cpu_pct_of_one_core'], 2)} | - | {fmt(idle['peak_rss_mb'])} | "
                         f"{fmt(idle['rss_mb'])} |")
    for name, why in results["skipped"].items():
        lines.append(f"| {name} | | skipped: {why} | | | |")
    lines.append("")
    lines.append(f"CPU time is utime+stime of the tool's own process (all its threads, not its "
                 f"children), resolution 1/{CLK_TCK} s; MB = 10^6 bytes.")
    servers = results.get("tmux_servers")
    if servers:
        lines.append("Terminal cost, not counted above: the tmux server drawing "
                     + "; ".join(f"{name} used {fmt(s['cpu_pct_of_one_core'], 2)} % of one core"
                                 for name, s in servers.items()) + ".")

    if looptops:
        lines.append("")
        verdicts = []
        for name in (n for n in LOOPTOPS if n != "looptop-baseline" or n in results["tools"]):
            entry = results["tools"].get(name)
            if entry is None:
                why = results["skipped"].get(name, "left out by --tools")
                verdicts.append(f"{MODE[name]}: not measured ({why})")
            elif "error" in entry or "cpu_pct_of_one_core" not in entry:
                verdicts.append(f"{MODE[name]}: not measured (failed)")
            else:
                cpu_ok = entry["cpu_pct_of_one_core"] < TARGET_CPU_PCT
                rss = entry["peak_rss_mb"]
                rss_ok = rss is not None and rss < TARGET_PEAK_RSS_MB
                verdicts.append(f"{MODE[name]}: CPU {'met' if cpu_ok else 'NOT MET'} "
                                f"({fmt(entry['cpu_pct_of_one_core'], 2)} %), peak RSS "
                                f"{'met' if rss_ok else 'NOT MET'} ({fmt(rss)} MB)")
        lines.append(f"**looptop against the targets** (CPU < {TARGET_CPU_PCT:g} % of one core, "
                     f"peak RSS < {TARGET_PEAK_RSS_MB:g} MB, while a job runs): "
                     + "; ".join(verdicts) + ".")
        if idle and "error" not in idle:
            lines.append(f"Idle (headless, watching, no run): "
                         f"{fmt(idle['cpu_pct_of_one_core'], 2)} % of one core, "
                         f"{idle['cpu_s'] * 1000:.0f} ms CPU in {idle['window_s']:.0f} s"
                         + ("; WARNING: a run happened during the idle measurement, so it is not idle"
                            if idle.get("run_happened") else "") + ".")
        for name in looptops:
            entry = results["tools"][name]
            if "error" not in entry and "cpu_pct_of_one_core" in entry:
                lines.append(looptop_details(name, entry))

    lines.append("")
    lines.append("Commands:")
    lines.append("")
    lines.append("```")
    for name, entry in results["tools"].items():
        if entry.get("command"):
            lines.append(f"# {name}")
            lines.append(entry["command"])
    if idle and idle.get("command"):
        lines.append("# looptop, idle")
        lines.append(idle["command"])
    lines.append("# this benchmark")
    lines.append(meta["invocation"])
    lines.append("```")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Main.
# --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="length of the measured window (default 60)")
    add_looptop_option(parser)
    parser.add_argument("--json", action="store_true",
                        help="print the results as JSON instead of Markdown")
    parser.add_argument("--tools", default=",".join(ALL_TOOLS),
                        help=f"comma-separated subset of {','.join(ALL_TOOLS)} (default: all)")
    parser.add_argument("--workers", type=int, default=4,
                        help="worker processes of the workload (default 4)")
    parser.add_argument("--idle-seconds", type=float, default=10.0,
                        help="length of the idle measurement of looptop, 0 to skip (default 10)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (workload, logs, history)")
    parser.add_argument("--baseline", help="another looptop binary to measure side by side, "
                        "headless (tool `looptop-baseline`)")
    args = parser.parse_args()

    wanted = chosen_tools(parser, args.tools, ALL_TOOLS)
    if not args.baseline:
        wanted = [name for name in wanted if name != "looptop-baseline"]
    if args.seconds <= 0 or args.idle_seconds < 0 or args.workers < 1:
        parser.error("--seconds must be positive, --idle-seconds at least 0, --workers at least 1")
    if not Path("/proc/self/stat").exists():
        sys.exit("error: this benchmark reads /proc: it runs on Linux only")

    signal.signal(signal.SIGINT, signal.default_int_handler)

    tools: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for name in wanted:
        if name == "looptop-baseline":
            program = str(Path(args.baseline).resolve())
            if not os.access(program, os.X_OK):
                sys.exit(f"error: --baseline {args.baseline}: not an executable looptop")
        elif name in LOOPTOPS:
            program = looptop_binary(args)
        else:
            program = find_program(COMM[name])
        if name in HEADLESS:
            tools[name] = program
        elif not program:
            skipped[name] = f"not installed; install with `{INSTALL_HINT[name]}`"
        elif not shutil.which("tmux"):
            skipped[name] = f"needs tmux for its terminal; install with `{INSTALL_HINT['tmux']}`"
        else:
            tools[name] = program
    for name, why in skipped.items():
        log(f"skipping {name}: {why}")
    if not tools:
        sys.exit("error: no tool to measure")

    try:
        memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError):
        memory_gb = 0.0
    results: dict = {
        "meta": {
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "host": platform.node(),
            "kernel": platform.release(),
            "cores": os.cpu_count(),
            "cpu_model": cpu_model(),
            "memory_gb": memory_gb,
            "nvml_present": nvml_present(),
            "loadavg_at_start": os.getloadavg(),
            "python": platform.python_version(),
            "clk_tck": CLK_TCK,
            "seconds": args.seconds,
            "warmup_s": WARMUP_S,
            "workers": args.workers,
            "tmux_size": f"{TMUX_COLUMNS}x{TMUX_ROWS}",
            "repo_commit": looptop_source(),
            "invocation": shlex.join(["python3", "benches/overhead.py"] + sys.argv[1:]),
            "tui_measured": False,  # set after the run
        },
        "targets": {"cpu_pct_of_one_core": TARGET_CPU_PCT, "peak_rss_mb": TARGET_PEAK_RSS_MB},
        "skipped": skipped,
        "tools": {},
    }
    for name in ALL_TOOLS:
        if name in tools:
            results["tools"][name] = {"binary": tools[name], "version": first_version_line(tools[name])}
    if results["meta"]["loadavg_at_start"][0] > 0.5 * (os.cpu_count() or 1):
        log(f"note: load average {results['meta']['loadavg_at_start'][0]:.2f} on "
            f"{os.cpu_count()} cores: the machine is busy, the figures will be noisier")

    workdir = Path(tempfile.mkdtemp(prefix="looptop-overhead-"))
    if args.keep:
        log(f"keeping {workdir}")
    failed = False
    try:
        try:
            measure_main(args, tools, workdir, results)
        except ToolFailed as error:
            results["error"] = str(error)
            log(f"error: {error}")
            failed = True
        finally:
            CLEANUP.run_all()  # stops everything from the main run before the idle one
        results["meta"]["tui_measured"] = ("cpu_pct_of_one_core"
                                           in results["tools"].get("looptop-tui", {}))
        if "looptop" in tools and args.idle_seconds > 0 and not failed:
            results["idle"] = measure_idle(args, tools["looptop"], workdir)
    finally:
        CLEANUP.run_all()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(render(results))
        if "error" in results:
            print(f"\nThe run failed: {results['error']}")
    failed = failed or any("error" in e for e in results["tools"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    run_main(main)
