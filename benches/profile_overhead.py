#!/usr/bin/env python3
"""What the Python profile costs: the same job run by looptop with `[profile] python = true` and
`= false`, side by side in one run, alternating the order each round (on, off; off, on; ...), so
that drifts of the machine fall on both alike.

For each run it records the job's duration as looptop reports it (`run_finished.duration_ms`),
and looptop's own CPU time (utime + stime of the looptop process from /proc/<pid>/stat, read
every 20 ms while it runs; its children's time is not in those fields) over its wall time, in %
of one core. The job is examples/ml-project's starved loader (`train.py --loader starved`:
decoding in Python on the training thread, numpy for the step) unless --command says otherwise.

Goals (issue 13): the job's median duration with profiling on within 2 % of off, and looptop's own
CPU with profiling on at most 2 % of one core.

    python3 benches/profile_overhead.py --looptop target/release/looptop --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import (
    CLEANUP,
    REPO_ROOT,
    add_looptop_option,
    kill_group,
    log,
    looptop_binary,
    print_results,
    run_main,
    unwind_on_signals,
)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
POLL_S = 0.02


def own_cpu_ticks(pid: int) -> int | None:
    """utime + stime of the process itself (fields 14 and 15 of /proc/<pid>/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def one_run(looptop: str, project: Path, profile: bool, rate_hz: int) -> dict:
    """One run of the job (`job.sh` in `project`) under looptop: its duration, looptop's CPU and
    the profile's size."""
    (project / "looptop.toml").write_text(
        f"[profile]\npython = {'true' if profile else 'false'}\nrate_hz = {rate_hz}\n\n"
        '[[job]]\nname = "job"\ncommand = "sh job.sh"\n'
    )
    started = time.monotonic()
    proc = subprocess.Popen(
        [looptop, "run", "--once", "--json", "--trust", "--job", "job"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    stop = CLEANUP.push("looptop", lambda: kill_group(proc))
    ticks = 0
    while proc.poll() is None:
        reading = own_cpu_ticks(proc.pid)
        if reading is not None:
            ticks = reading
        time.sleep(POLL_S)
    wall = time.monotonic() - started
    out, err = proc.communicate()
    stop()
    if proc.returncode != 0:
        raise SystemExit(f"looptop failed ({proc.returncode}): {err[-1500:]}")
    finished = next(json.loads(l) for l in out.splitlines() if '"run_finished"' in l)
    return {
        "profile": profile,
        "duration_ms": finished["duration_ms"],
        "looptop_cpu_pct": ticks / CLOCK_TICKS / wall * 100.0,
        "samples": (finished.get("profile") or {}).get("samples", 0),
    }


def render(results: dict) -> str:
    on, off = results["on"], results["off"]
    lines = [
        "### Python profile: the job with profiling on and off, side by side",
        "",
        f"- job: `{results['command']}`, {results['rounds']} rounds, order alternating; rate {results['rate_hz']} Hz",
        f"- profile samples per run (on): median {on['samples']}; load average at the end: "
        f"{' '.join(f'{v:.2f}' for v in results['meta']['loadavg_at_end'])}",
        "",
        "| profiling | job duration median ms | min ms | max ms | looptop CPU % of one core (median) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in (("on", on), ("off", off)):
        lines.append(
            f"| {name} | {row['median_ms']:.1f} | {row['min_ms']:.1f} | {row['max_ms']:.1f} | {row['cpu_pct']:.2f} |"
        )
    lines += [
        "",
        f"Job duration, on vs off: {results['duration_change_pct']:+.2f} % (goal: within ±2 %). "
        f"looptop's CPU with profiling on: {on['cpu_pct']:.2f} % of one core (goal: ≤ 2 %; "
        f"{on['cpu_pct'] - off['cpu_pct']:+.2f} points over profiling off).",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_looptop_option(parser)
    parser.add_argument("--rounds", type=int, default=5, help="pairs of runs (default 5)")
    parser.add_argument("--rate-hz", type=int, default=50, help="[profile] rate_hz (default 50)")
    parser.add_argument(
        "--command",
        default=f"python3 {REPO_ROOT / 'examples/ml-project/train.py'} --steps 30 --loader starved",
        help="the job (default: the ML example's starved loader, 30 steps)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    unwind_on_signals()
    looptop = looptop_binary(args)
    with tempfile.TemporaryDirectory(prefix="looptop-profile-bench-") as scratch:
        project = Path(scratch)
        runs: list[dict] = []
        (project / "job.sh").write_text(f"exec {args.command}\n")
        for round_ in range(args.rounds):
            order = (True, False) if round_ % 2 == 0 else (False, True)
            for profile in order:
                run = one_run(looptop, project, profile, args.rate_hz)
                log(
                    f"round {round_ + 1}: profile {'on ' if profile else 'off'} "
                    f"{run['duration_ms']:.1f} ms, looptop {run['looptop_cpu_pct']:.2f} % "
                    f"({run['samples']} samples)"
                )
                runs.append(run)

    def summary(profile: bool) -> dict:
        rows = [r for r in runs if r["profile"] == profile]
        durations = [r["duration_ms"] for r in rows]
        return {
            "median_ms": statistics.median(durations),
            "min_ms": min(durations),
            "max_ms": max(durations),
            "cpu_pct": statistics.median(r["looptop_cpu_pct"] for r in rows),
            "samples": int(statistics.median(r["samples"] for r in rows)),
        }

    on, off = summary(True), summary(False)
    results = {
        "meta": {
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "cores": os.cpu_count(),
            "loadavg_at_end": os.getloadavg(),
            "looptop_binary": looptop,
            "invocation": shlex.join(["python3", "benches/profile_overhead.py"] + sys.argv[1:]),
        },
        "command": args.command,
        "rounds": args.rounds,
        "rate_hz": args.rate_hz,
        "on": on,
        "off": off,
        "duration_change_pct": (on["median_ms"] / off["median_ms"] - 1.0) * 100.0,
        "runs": runs,
    }
    print_results(results, render, args.json)
    met = abs(results["duration_change_pct"]) <= 2.0 and on["cpu_pct"] <= 2.0
    return 0 if met else 1


if __name__ == "__main__":
    run_main(main)
