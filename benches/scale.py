#!/usr/bin/env python3
"""Scale: watching a tree of 100,000 files, looptop beside watchexec, in one run.

The tree: ``--dirs`` directories (default 1,000, nested three deep) of ``--files`` files each
(default 100), created once. Each tool then runs, one after the other, in that tree:

* looptop: ``looptop run --postpone -- sh -c 'echo run >> STAMPS'``
* watchexec: ``watchexec --postpone --shell=none -- sh -c 'echo run >> STAMPS'``

where STAMPS is a file outside the tree: each line is one run. Measured per tool:

* **ready**: from the tool's start until an edit of a file deep in the tree starts the job. The
  script edits that file every 100 ms from the start on until the job has run: the first edit that
  triggers marks the moment the tool watches the deep directory (so the figure is an upper bound,
  within 100 ms plus the tool's debounce).
* **RSS**: VmHWM (peak) and VmRSS of the tool's process once ready and after 2 s of quiet.
* **deep edit**: after the quiet, one more edit of another deep file must start the job (within 5 s).

    python3 benches/scale.py [--looptop PATH] [--dirs 1000] [--files 100] [--json]
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

from benchlib import (CLEANUP, add_looptop_option, find_program, first_version_line, kill_group,
                      load_text, log, looptop_binary, looptop_source, print_results, read_status,
                      run_main, short_version, tail_of)

PROBE_EVERY_S = 0.1
READY_TIMEOUT_S = 120.0
QUIET_S = 2.0
EDIT_TIMEOUT_S = 5.0


def make_tree(root: Path, dirs: int, files: int) -> list[Path]:
    """`dirs` directories of `files` files, three levels deep; returns the directories."""
    made = []
    for i in range(dirs):
        d = root / f"a{i % 10}" / f"b{i // 10 % 10}" / f"c{i // 100}"
        d.mkdir(parents=True, exist_ok=True)
        for j in range(files):
            (d / f"f{j}.py").write_text(f"x = {j}\n")
        made.append(d)
    return made


def runs_in(stamps: Path) -> int:
    try:
        return len(stamps.read_text().splitlines())
    except OSError:
        return 0


def measure(name: str, argv: list[str], tree: Path, deep: list[Path], stamps: Path, workdir: Path,
            env: dict) -> dict:
    log_path = workdir / f"{name}.log"
    with open(log_path, "wb") as log_file:
        started = time.monotonic()
        proc = subprocess.Popen(argv, cwd=tree, stdin=subprocess.DEVNULL, stdout=log_file,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, **env})
    stop = CLEANUP.push(f"{name} (pid {proc.pid})", lambda: kill_group(proc))
    out: dict = {"command": shlex.join(argv)}
    try:
        before = runs_in(stamps)
        ready: Optional[float] = None
        probe = deep[0] / "f0.py"
        while ready is None:
            if proc.poll() is not None:
                out["error"] = f"exited with {proc.returncode}: {tail_of(log_path)}"
                return out
            if time.monotonic() - started > READY_TIMEOUT_S:
                out["error"] = f"no run after {READY_TIMEOUT_S:.0f} s of edits"
                return out
            probe.write_text(f"x = {time.monotonic()}\n")
            time.sleep(PROBE_EVERY_S)
            if runs_in(stamps) > before:
                ready = time.monotonic() - started
        out["ready_s"] = ready
        out["memory_ready_kb"] = read_status(proc.pid)
        time.sleep(QUIET_S)
        out["memory_quiet_kb"] = read_status(proc.pid)
        before = runs_in(stamps)
        edited = time.monotonic()
        (deep[-1] / "f99.py").write_text("x = 'deep edit'\n")
        while runs_in(stamps) == before and time.monotonic() - edited < EDIT_TIMEOUT_S:
            time.sleep(0.005)
        out["deep_edit_ran"] = runs_in(stamps) > before
        out["deep_edit_s"] = time.monotonic() - edited if out["deep_edit_ran"] else None
        return out
    finally:
        stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_looptop_option(parser)
    parser.add_argument("--dirs", type=int, default=1000)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    args = parser.parse_args()
    looptop = looptop_binary(args)
    tools = {"looptop": looptop}
    watchexec = find_program("watchexec")
    if watchexec:
        tools["watchexec"] = watchexec
    else:
        log("skipping watchexec: not installed (`cargo install watchexec-cli`)")

    workdir = Path(tempfile.mkdtemp(prefix="looptop-scale-"))
    CLEANUP.push(f"temporary directory {workdir}", lambda: shutil.rmtree(workdir, ignore_errors=True))
    try:
        tree = workdir / "tree"
        log(f"creating {args.dirs * args.files} files in {args.dirs} directories ...")
        deep = make_tree(tree, args.dirs, args.files)
        stamps = workdir / "stamps"
        job = ["sh", "-c", f"echo run >> {shlex.quote(str(stamps))}"]
        xdg = {"XDG_DATA_HOME": str(workdir / "xdg"), "XDG_CONFIG_HOME": str(workdir / "xdg")}
        commands = {
            "looptop": [looptop, "run", "--postpone", "--"] + job,
            "watchexec": [tools.get("watchexec", ""), "--postpone", "--shell=none", "--"] + job,
        }
        results = {
            "meta": {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cores": os.cpu_count(),
                     "files": args.dirs * args.files, "dirs": args.dirs, "repo_commit": looptop_source(),
                     "loadavg_at_start": os.getloadavg(),
                     "invocation": shlex.join(["python3", "benches/scale.py"] + sys.argv[1:])},
            "tools": {},
        }
        for name, binary in tools.items():
            log(f"{name} ...")
            entry = measure(name, commands[name], tree, deep, stamps, workdir, xdg)
            entry["version"] = short_version(first_version_line(binary))
            results["tools"][name] = entry
    finally:
        CLEANUP.run_all()

    print_results(results, render, args.json)
    ok = all("error" not in t and t.get("deep_edit_ran") for t in results["tools"].values())
    return 0 if ok else 1


def megabytes(kb: Optional[int]) -> str:
    return f"{kb * 1024 / 1e6:.1f}" if kb else "n/a"


def render(results: dict) -> str:
    meta = results["meta"]
    lines = ["## Scale: watching a tree of many files", "",
             f"- date: {meta['date']}; {meta['cores']} cores; load average at start "
             f"{load_text(meta['loadavg_at_start'])}; repository at {meta['repo_commit']}",
             f"- the tree: {meta['files']} files in {meta['dirs']} directories, three levels deep", "",
             "| tool | ready (a deep edit runs the job) | peak RSS MB | RSS MB after 2 s quiet | "
             "a later deep edit |",
             "|---|---:|---:|---:|---|"]
    for name, t in results["tools"].items():
        if "error" in t:
            lines.append(f"| {name} {t.get('version', '')} | failed: {t['error'].splitlines()[0]} | | | |")
            continue
        edit = f"ran after {t['deep_edit_s'] * 1000:.0f} ms" if t["deep_edit_ran"] else "NO RUN"
        lines.append(f"| {name} {t['version']} | {t['ready_s']:.2f} s | "
                     f"{megabytes(t['memory_quiet_kb'].get('hwm_kb'))} | {megabytes(t['memory_quiet_kb'].get('rss_kb'))} | "
                     f"{edit} |")
    return "\n".join(lines)


if __name__ == "__main__":
    run_main(main)
