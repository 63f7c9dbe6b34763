#!/usr/bin/env python3
"""Affected tests first: on a real test suite from PyPI, how soon a change's tests report, with
looptop's `affected` set to "off" (the whole suite in pytest's order), "first" and "only".

The suite is an sdist with its tests, fetched with `pip download --no-binary :all:` (default:
more-itertools 10.5.0, about 660 tests in two files, `tests/test_more.py` then
`tests/test_recipes.py`). In its extracted tree the script writes a looptop.toml with one job,
`python3 -m pytest -q -p no:cacheprovider` (kind "test"), and for each mode runs
`looptop run --json --job tests`: the first run (the whole suite) warms the caches, then the
script edits the changed test file (`--changed`, default `tests/test_recipes.py`, a comment line
appended) `--edits` times, waiting for each run to finish. For each of those runs it reads from
looptop's own history (`test_cases.finished_ms`, when each test's result was known, in ms after
the run's start):

* **first result**: the first result of a test of the changed file;
* **all results**: the last result of a test of the changed file (the answer to "did my change
  break its tests?");
* **run**: the whole run, pytest's start-up and collection included;
* **tests**: how many tests ran.

Medians over the edits. Every process started is stopped, also when interrupted.

    python3 benches/affected_first.py [--looptop PATH] [--sdist FILE] [--edits 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from benchlib import (CLEANUP, add_looptop_option, first_version_line, kill_group, log,
                      looptop_binary, print_results, run_main)

PACKAGE = "more-itertools==10.5.0"
MODES = ["off", "first", "only"]
RUN_TIMEOUT_S = 300.0


def fetch_sdist(spec: str, into: Path) -> Path:
    """Downloads the sdist of `spec` into `into` (pip's cache makes a second time quick)."""
    log(f"pip download {spec}")
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                    spec, "-d", str(into)], check=True)
    found = sorted(p for p in into.iterdir() if p.name.endswith((".tar.gz", ".zip")))
    if not found:
        sys.exit(f"error: pip downloaded no sdist of {spec}")
    return found[0]


def extract(sdist: Path, into: Path) -> Path:
    with tarfile.open(sdist) as archive:
        archive.extractall(into, filter="data")
    roots = [p for p in into.iterdir() if p.is_dir()]
    if len(roots) != 1:
        sys.exit(f"error: {sdist} does not hold one top directory")
    return roots[0]


class Session:
    """`looptop run --json` in the project, its JSON events read line by line."""

    def __init__(self, looptop: str, project: Path, env: dict) -> None:
        self.proc = subprocess.Popen([looptop, "run", "--json", "--trust", "--job", "tests"], cwd=project,
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        self.stop = CLEANUP.push("looptop", lambda: kill_group(self.proc, first=2))

    def next_finished(self) -> dict:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("looptop exited")
            event = json.loads(line)
            if event.get("event") == "run_finished":
                return event
        raise RuntimeError("no run_finished in time")


def measure_mode(looptop: str, project: Path, mode: str, changed: str, edits: int, env: dict) -> list[dict]:
    (project / "looptop.toml").write_text(
        '[[job]]\nname = "tests"\ncommand = "python3 -m pytest -q -p no:cacheprovider"\nkind = "test"\n'
        f'affected = "{mode}"\nenv = {{ PYTHONDONTWRITEBYTECODE = "1" }}\n')
    session = Session(looptop, project, env)
    runs = []
    try:
        session.next_finished()  # the whole suite, at start
        for i in range(edits):
            with open(project / changed, "a", encoding="utf-8") as f:
                f.write(f"# edit {mode} {i}\n")
            event = session.next_finished()
            runs.append({"run_id": event["run_id"], "duration_ms": event["duration_ms"],
                         "tests": (event.get("tests") or {}).get("count")})
    finally:
        session.stop()
    for run in runs:
        sql = (f"SELECT min(finished_ms) FILTER (WHERE file = '{changed}') AS first_ms, "
               f"max(finished_ms) FILTER (WHERE file = '{changed}') AS all_ms "
               f"FROM test_cases WHERE run_id = '{run['run_id']}'")
        out = subprocess.run([looptop, "query", sql, "--json"], cwd=project, env=env, capture_output=True,
                             text=True, check=True).stdout
        row = json.loads(out.splitlines()[0])
        run.update(first_ms=row["first_ms"], all_ms=row["all_ms"])
    return runs


def render(results: dict) -> str:
    meta = results["meta"]
    lines = [
        "## Affected tests first, on a real suite",
        "",
        f"{meta['package']}: {meta['changed']} edited {meta['edits']} times per mode; medians. "
        f"Times in ms after the run's start, from looptop's history (`test_cases.finished_ms`).",
        "",
        "| affected | first result of the changed file ms | all its results ms | whole run ms | tests run |",
        "|---|---:|---:|---:|---:|",
    ]
    for mode in MODES:
        runs = results["modes"].get(mode) or []
        if not runs:
            continue

        def median(key: str) -> str:
            values = [r[key] for r in runs if r.get(key) is not None]
            return f"{statistics.median(values):.0f}" if values else "-"

        lines.append(f"| {mode} | {median('first_ms')} | {median('all_ms')} | {median('duration_ms')} | "
                     f"{median('tests')} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_looptop_option(parser)
    parser.add_argument("--package", default=PACKAGE, help=f"pip requirement of the sdist (default: {PACKAGE})")
    parser.add_argument("--sdist", help="use this sdist instead of downloading one")
    parser.add_argument("--changed", default="tests/test_recipes.py", help="the test file to edit")
    parser.add_argument("--edits", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    looptop = looptop_binary(args)
    work = Path(tempfile.mkdtemp(prefix="looptop-affected-"))
    CLEANUP.push("work dir", lambda: subprocess.run(["rm", "-rf", str(work)], check=False))
    try:
        sdist = Path(args.sdist) if args.sdist else fetch_sdist(args.package, work / "dl")
        project = extract(sdist, work / "src")
        env = dict(os.environ, XDG_DATA_HOME=str(work / "data"), NO_COLOR="1")
        modes = {}
        for mode in MODES:
            log(f"affected = {mode}")
            modes[mode] = measure_mode(looptop, project, mode, args.changed, args.edits, env)
    finally:
        CLEANUP.run_all()
    invocation = " ".join(shlex.quote(a) for a in ["python3", "benches/affected_first.py", *sys.argv[1:]])
    results = {"meta": {"package": sdist.name, "changed": args.changed, "edits": args.edits,
                        "looptop": first_version_line(looptop), "invocation": invocation},
               "modes": modes}
    print_results(results, render, args.json)
    return 0


if __name__ == "__main__":
    run_main(main)
