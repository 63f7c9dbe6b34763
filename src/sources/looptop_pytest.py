"""looptop's pytest plugin: per-test results for looptop, and the affected tests first.

looptop loads it with `-p looptop_pytest` (through PYTEST_ADDOPTS and PYTHONPATH) only for the
jobs it runs, and it does nothing unless LOOPTOP_TESTS_OUT names a file. It writes one JSON line
per test (node id, file, outcome, duration) as each test finishes, so a run that is stopped
midway still leaves the results it had; it changes nothing pytest itself reports, so the user's
own --junitxml, -p and addopts work as before. With LOOPTOP_TESTS_SELECT it moves the tests the
change can affect to the front of the run (after any other plugin's reordering), or runs only
them. Any error of its own is swallowed: it must never break a test run.
"""

import json
import os
import time

import pytest

_OUT = "LOOPTOP_TESTS_OUT"
_SELECT = "LOOPTOP_TESTS_SELECT"
_ROOT = "LOOPTOP_ROOT"


def pytest_configure(config):
    # pytest-xdist workers report to the controller, which writes the lines; they only order
    # (and select) what they collected, all alike. The controller takes the file's name out of
    # the environment, so that a pytest that a test starts in a subprocess writes nothing there.
    worker = hasattr(config, "workerinput")
    path = None if worker else os.environ.pop(_OUT, None)
    select = os.environ.get(_SELECT)
    if not path and not (worker and select):
        return
    try:
        recorder = _Recorder(path, select, os.environ.get(_ROOT), config)
    except Exception:  # noqa: BLE001 - never break the user's run
        return
    config.pluginmanager.register(recorder, "looptop-recorder")


def _first_line(report):
    try:
        text = report.longreprtext or ""
    except Exception:  # noqa: BLE001
        text = str(getattr(report, "longrepr", "") or "")
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    errors = [l[1:].strip() for l in lines if l.startswith("E ")]
    line = errors[-1] if errors else (lines[-1] if lines else "")
    return line[:300]


class _Recorder:
    def __init__(self, path, select, root, config):
        self.out = open(path, "a", encoding="utf-8", buffering=1) if path else None
        self.root = os.path.realpath(root) if root else None
        self.rootpath = str(getattr(config, "rootpath", None) or getattr(config, "rootdir", "") or "")
        self.select = None
        if select:
            with open(select, encoding="utf-8") as f:
                self.select = json.load(f)
        self.pending = {}
        self.write({"event": "start"})

    def write(self, record):
        if self.out is None:
            return
        try:
            self.out.write(json.dumps(record) + "\n")
        except Exception:  # noqa: BLE001
            pass

    def file_of(self, nodeid):
        """The node's file relative to looptop's project root (pytest's ids are relative to its rootdir)."""
        path = nodeid.split("::", 1)[0]
        if not self.root or not path:
            return path or None
        try:
            full = os.path.realpath(os.path.join(self.rootpath, path))
            return os.path.relpath(full, self.root).replace(os.sep, "/")
        except ValueError:
            return path

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session, config, items):
        try:
            total = len(items)
            first = None
            if self.select:
                wanted = set(self.select.get("first", []))
                hit = [i.nodeid in wanted or self.file_of(i.nodeid) in wanted for i in items]
                front = [i for i, h in zip(items, hit) if h]
                rest = [i for i, h in zip(items, hit) if not h]
                first = len(front)
                if self.select.get("only") and front:
                    if rest:
                        config.hook.pytest_deselected(items=rest)
                    items[:] = front
                else:
                    items[:] = front + rest
            self.write({"event": "collected", "total": total, "first": first})
        except Exception:  # noqa: BLE001
            pass

    def pytest_collectreport(self, report):
        try:
            if report.failed:
                self.write(
                    {
                        "nodeid": report.nodeid or ".",
                        "file": self.file_of(report.nodeid),
                        "outcome": "error",
                        "duration_ms": 0.0,
                        "message": _first_line(report),
                        "when": "collect",
                        "t": time.time(),
                    }
                )
        except Exception:  # noqa: BLE001
            pass

    def pytest_runtest_logreport(self, report):
        try:
            record = self.pending.setdefault(
                report.nodeid,
                {
                    "nodeid": report.nodeid,
                    "file": self.file_of(report.nodeid),
                    "outcome": "passed",
                    "duration_ms": 0.0,
                },
            )
            record["duration_ms"] += float(getattr(report, "duration", 0.0) or 0.0) * 1000.0
            xfail = hasattr(report, "wasxfail")
            if report.when == "call":
                if xfail:
                    record["outcome"] = "xfailed" if report.skipped else "xpassed"
                else:
                    record["outcome"] = report.outcome
            elif report.failed and record["outcome"] != "failed":
                record["outcome"] = "error"
            elif report.skipped and report.when == "setup":
                record["outcome"] = "xfailed" if xfail else "skipped"
            if report.failed and "message" not in record:
                record["message"] = _first_line(report)
            if report.when == "teardown":
                record["t"] = time.time()
                self.write(self.pending.pop(report.nodeid))
        except Exception:  # noqa: BLE001
            pass

    def pytest_sessionfinish(self, session, exitstatus):
        try:
            for record in self.pending.values():
                self.write(record)
            self.pending.clear()
            self.write({"event": "finish", "exitstatus": int(exitstatus)})
            if self.out is not None:
                self.out.close()
                self.out = None
        except Exception:  # noqa: BLE001
            pass
