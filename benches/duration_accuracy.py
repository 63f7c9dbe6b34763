#!/usr/bin/env python3
"""Duration accuracy: the loop times looptop records beside hyperfine's, for the same commands.

For each workload, in one run, rounds alternate between the two tools (hyperfine, looptop,
hyperfine, looptop, ...) so that a machine that slows down or speeds up during the run affects
both alike:

* hyperfine: ``hyperfine -N --warmup 1 --runs N --export-json F -- CMD`` (``-N``: no shell, the
  command is executed directly, as looptop does with several words after ``--``);
* looptop: ``looptop bench --warmup 1 -n N --json -- CMD`` in an empty project directory (with its
  own XDG directories), whose ``bench`` line gives the mean and median of the recorded
  durations (spawn to exit of the main process, as stored in the history).

Every run of both tools is pooled per tool; the target is that looptop's mean is within
1 ms + 1 % of hyperfine's. The workloads: ``sleep 0.3`` (a fixed wall time) and a busy loop of
``sh`` (fixed work, so its time moves with the machine's load).

    python3 benches/duration_accuracy.py [--looptop PATH] [--runs 10] [--rounds 3] [--json]

Needs hyperfine (``apt install hyperfine`` or ``cargo install hyperfine``). Progress goes to
stderr, the results (Markdown, or JSON) to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import (CLEANUP, add_looptop_option, find_program, first_version_line, load_text, log,
                      looptop_binary, looptop_source, print_results, run_main, short_version)

WORKLOADS = {
    "sleep 0.3": ["sleep", "0.3"],
    "sh busy loop": ["sh", "-c", "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done"],
}
TOLERANCE_MS = 1.0
TOLERANCE_SHARE = 0.01


def hyperfine_times(hyperfine: str, argv: list[str], runs: int, workdir: Path) -> list[float]:
    """The durations hyperfine measured, in ms."""
    export = workdir / "hyperfine.json"
    subprocess.run([hyperfine, "-N", "--warmup", "1", "--runs", str(runs), "--style", "none",
                    "--export-json", str(export), "--", shlex.join(argv)],
                   check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    return [t * 1000 for t in json.loads(export.read_text())["results"][0]["times"]]


def looptop_times(looptop: str, argv: list[str], runs: int, project: Path) -> list[float]:
    """The durations looptop recorded for its measured runs, in ms."""
    env = {**os.environ, "XDG_DATA_HOME": str(project / ".xdg"), "XDG_CONFIG_HOME": str(project / ".xdg")}
    out = subprocess.run([looptop, "bench", "--warmup", "1", "-n", str(runs), "--json", "--"] + argv,
                         cwd=project, env=env, check=True, capture_output=True, text=True,
                         stdin=subprocess.DEVNULL)
    events = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    finished = [e for e in events if e.get("event") == "run_finished"]
    # The first `--warmup` runs are not measured.
    return [e["duration_ms"] for e in finished[1:]]


def summary(times: list[float]) -> dict:
    return {"runs": len(times), "mean_ms": statistics.fmean(times), "median_ms": statistics.median(times),
            "stddev_ms": statistics.stdev(times) if len(times) > 1 else 0.0,
            "min_ms": min(times), "max_ms": max(times)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_looptop_option(parser)
    parser.add_argument("--runs", type=int, default=10, help="measured runs per round and tool (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    args = parser.parse_args()
    looptop = looptop_binary(args)
    hyperfine = find_program("hyperfine")
    if not hyperfine:
        sys.exit("error: hyperfine is not installed: `apt install hyperfine` or `cargo install hyperfine`")

    workdir = Path(tempfile.mkdtemp(prefix="looptop-accuracy-"))
    CLEANUP.push(f"temporary directory {workdir}", lambda: shutil.rmtree(workdir, ignore_errors=True))
    results = {
        "meta": {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "kernel": platform.release(),
                 "cores": os.cpu_count(), "loadavg_at_start": os.getloadavg(),
                 "looptop": first_version_line(looptop), "looptop_binary": looptop,
                 "repo_commit": looptop_source(), "hyperfine": short_version(first_version_line(hyperfine)),
                 "runs": args.runs, "rounds": args.rounds,
                 "invocation": shlex.join(["python3", "benches/duration_accuracy.py"] + sys.argv[1:])},
        "workloads": {},
    }
    try:
        for name, argv in WORKLOADS.items():
            project = workdir / f"project-{len(results['workloads'])}"
            project.mkdir()
            times: dict[str, list[float]] = {"hyperfine": [], "looptop": []}
            for round_ in range(args.rounds):
                log(f"{name}: round {round_ + 1}/{args.rounds}")
                times["hyperfine"] += hyperfine_times(hyperfine, argv, args.runs, workdir)
                times["looptop"] += looptop_times(looptop, argv, args.runs, project)
            h, lt = summary(times["hyperfine"]), summary(times["looptop"])
            tolerance = TOLERANCE_MS + TOLERANCE_SHARE * h["mean_ms"]
            difference = lt["mean_ms"] - h["mean_ms"]
            results["workloads"][name] = {"command": shlex.join(argv), "hyperfine": h, "looptop": lt,
                                          "difference_ms": difference, "tolerance_ms": tolerance,
                                          "within": abs(difference) <= tolerance}
    finally:
        CLEANUP.run_all()

    print_results(results, render, args.json)
    return 0 if all(w["within"] for w in results["workloads"].values()) else 1


def render(results: dict) -> str:
    meta = results["meta"]
    lines = ["## Duration accuracy: looptop beside hyperfine", "",
             f"- date: {meta['date']}; {meta['cores']} cores, kernel {meta['kernel']}; load average at "
             f"start {load_text(meta['loadavg_at_start'])}",
             f"- {meta['looptop']} ({meta['looptop_binary']}, repository at {meta['repo_commit']}); "
             f"hyperfine {meta['hyperfine']}",
             f"- {meta['rounds']} alternating rounds of {meta['runs']} measured runs per tool "
             "(after one warm-up run each)", "",
             "| workload | hyperfine mean (median) | looptop mean (median) | difference | "
             "target (1 ms + 1 %) |",
             "|---|---:|---:|---:|---|"]
    for name, w in results["workloads"].items():
        h, lt = w["hyperfine"], w["looptop"]
        lines.append(f"| `{w['command']}` | {h['mean_ms']:.2f} ms ({h['median_ms']:.2f}) | "
                     f"{lt['mean_ms']:.2f} ms ({lt['median_ms']:.2f}) | {w['difference_ms']:+.2f} ms | "
                     f"{'met' if w['within'] else 'NOT MET'} (±{w['tolerance_ms']:.2f} ms) |")
    return "\n".join(lines)


if __name__ == "__main__":
    run_main(main)
