#!/usr/bin/env python3
"""Draw a picture of looptop's TUI for the README, from a real run.

Copies examples/quickstart into a temporary directory, starts the built looptop binary there
in a detached tmux session on a private tmux server, lets the train job run (with more steps
than the example's 20), edits model.py after each run to trigger the next (so the trend has
bars), captures the screen while the last run is well under way (so the resources pane has
live graphs), quits looptop, and turns the colored capture into a standalone SVG
(examples/tui.svg) plus its plain text (examples/tui.txt).

    python3 examples/tui-picture.py [--looptop PATH] [--out FILE] [--size 100x30]
                                    [--theme dark] [--job train] [--runs 4] [--steps 120]

Needs tmux and a built looptop (cargo build [--release]); only Python's standard library.
"""

import argparse
import itertools
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from xml.sax.saxutils import escape

REPO = Path(__file__).resolve().parent.parent

# The SVG's grid: pixels per column and per row, the text's baseline within a row, the margin.
CELL_W, CELL_H, BASELINE, PAD = 8.4, 17, 13, 12
STEP_S = 0.03  # about how long one training step of the example takes
FONT = 'font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="14px"'

# The terminal's own colors (background, text) behind each theme, which draws on the default.
TERMINAL = {
    "light": ("#ffffff", "#2e3440"),
    "nord": ("#2e3440", "#eceff4"),
    "gruvbox": ("#282828", "#ebdbb2"),
}
DARK_TERMINAL = ("#1e1e2e", "#d8dee9")

# Block elements drawn as rects, as (top, height) in eighths of a row, so bars have no gaps.
BLOCKS = {chr(0x2581 + i): (7 - i, i + 1) for i in range(8)}  # ▁ ▂ ▃ ▄ ▅ ▆ ▇ █
BLOCKS["▀"] = (0, 4)

# Box drawing drawn as lines, as the sides of the cell each one reaches (left, right, top, bottom),
# so borders join up whatever the font's line height.
BOX = {"─": "lr", "│": "tb", "┌": "rb", "┐": "lb", "└": "rt", "┘": "lt", "├": "tbr", "┤": "tbl",
       "┬": "lrb", "┴": "lrt", "┼": "lrtb", "╭": "rb", "╮": "lb", "╰": "rt", "╯": "lt"}


def fail(message):
    sys.exit(f"tui-picture: {message}")


def find_looptop():
    """The first built binary: $CARGO_TARGET_DIR's release, its debug, then target/'s."""
    dirs = [Path(os.environ["CARGO_TARGET_DIR"])] if os.environ.get("CARGO_TARGET_DIR") else []
    dirs.append(REPO / "target")
    for path in (d / profile / "looptop" for d in dirs for profile in ("release", "debug")):
        if path.is_file():
            return path
    return None


class Tmux:
    """A private tmux server (its own socket) holding one session that runs looptop."""

    def __init__(self):
        self.socket = f"looptop-picture-{os.getpid()}"
        self.target = "looptop"
        self.socket_path = None

    def __call__(self, *args):
        done = subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args],
                              capture_output=True, text=True)
        if done.returncode != 0:
            fail(f"tmux {args[0]} failed: {done.stderr.strip()}")
        return done.stdout

    def start(self, command, cols, rows):
        # remain-on-exit keeps the pane (and what looptop printed) if looptop exits early.
        self("new-session", "-d", "-s", self.target, "-x", str(cols), "-y", str(rows), command,
             ";", "set-window-option", "-g", "remain-on-exit", "on")
        self.socket_path = self("display-message", "-p", "#{socket_path}").strip()

    def screen(self, colors=False):
        return self("capture-pane", "-p", *(["-e"] if colors else []), "-t", self.target)

    def exit_status(self):
        """How looptop ended once its pane is dead: "exit code N", "signal N", or "" while tmux
        has not reaped it yet (it closed the terminal but has no status); None while it runs."""
        dead, status, signal = (self("display-message", "-p", "-t", self.target,
                                     "#{pane_dead}:#{pane_dead_status}:#{pane_dead_signal}")
                                .strip().split(":") + ["", ""])[:3]
        if dead != "1":
            return None
        return f"exit code {status}" if status else f"signal {signal}" if signal else ""

    def kill(self):
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)
        if self.socket_path:  # tmux leaves its socket file behind
            Path(self.socket_path).unlink(missing_ok=True)


def wait_for(tmux, what, done, timeout=60.0):
    """Polls the screen until done(screen) holds; fails naming `what` and the last screen."""
    deadline = time.monotonic() + timeout
    while True:
        screen = tmux.screen()
        if done(screen):
            return screen
        status = tmux.exit_status()
        if status is not None:
            fail(f"looptop exited ({status or 'no status'}) while waiting for {what}; its screen:\n"
                 + screen.strip("\n"))
        if time.monotonic() > deadline:
            fail(f"gave up after {timeout:.0f} s waiting for {what}; the screen:\n"
                 + screen.strip("\n"))
        time.sleep(0.05)


def runs(screen):
    """How many runs the trend pane's title counts ("loop trend · 2 runs")."""
    found = re.search(r"loop trend · (\d+) runs?\b", screen)
    return int(found.group(1)) if found else 0


def running_for(screen):
    """Seconds the header says the current run has taken ("running 0.4 s"), else None."""
    found = re.search(r"running (\d+(?:\.\d+)?) s", screen.split("\n", 1)[0])
    return float(found.group(1)) if found else None


def finished(n):
    return lambda screen: runs(screen) >= n and running_for(screen) is None


def capture(binary, project, home, args):
    """Runs looptop in tmux through `args.runs` runs and most of one more; returns the colored
    screen."""
    env = {
        "TERM": "xterm-256color",
        "COLORTERM": "truecolor",
        "XDG_DATA_HOME": home / "data",
        "XDG_CONFIG_HOME": home / "config",
        "LOOPTOP_LOG": "off",  # a log line on stderr would scribble over the TUI
    }
    command = " ".join([
        "cd", shlex.quote(str(project)), "&&", "exec", "env",
        *(f"{k}={shlex.quote(str(v))}" for k, v in env.items()),
        shlex.quote(str(binary)), "--trust", "--theme", shlex.quote(args.theme),
        "--job", shlex.quote(args.job),
    ])
    tmux = Tmux()
    try:
        tmux.start(command, *args.size)
        model = project / "model.py"
        for run in range(1, args.runs + 1):
            wait_for(tmux, f"run {run} to finish", finished(run), timeout=120)
            with model.open("a") as f:
                f.write(f"# edit {run} by tui-picture.py, to trigger a rerun\n")
        # Mid-run the resources pane draws live graphs; should the run end first, take that.
        wait_for(tmux, "the last run to be well under way",
                 lambda s: (running_for(s) or 0) >= 0.7 * args.steps * STEP_S or runs(s) > args.runs,
                 timeout=120)
        ansi = tmux.screen(colors=True)
        tmux("send-keys", "-t", tmux.target, "q")
        pressed = time.monotonic()
        # tmux 3.3a sometimes leaves the exited looptop unreaped (a zombie: the terminal is
        # closed, no status): a dead pane without a status for 2 s counts as exited.
        while not (status := tmux.exit_status()):
            if status == "" and time.monotonic() - pressed > 2:
                print("tmux reports no exit status for looptop (not reaped); it has exited",
                      file=sys.stderr)
                return ansi
            if time.monotonic() - pressed > 20:
                fail("looptop did not exit within 20 s of pressing q")
            time.sleep(0.05)
        print(f"looptop exited {time.monotonic() - pressed:.1f} s after q", file=sys.stderr)
        if status != "exit code 0":
            fail(f"looptop exited with {status} after q; its screen:\n{tmux.screen()}")
        return ansi
    finally:
        tmux.kill()


@dataclass(frozen=True)
class Style:
    fg: str = None  # "#rrggbb", or None for the terminal's default
    bg: str = None
    bold: bool = False
    dim: bool = False
    italic: bool = False
    underline: bool = False
    reverse: bool = False


def xterm_color(n):
    """The xterm 256-color palette: 16 basic colors, a 6x6x6 cube, 24 grays."""
    basic = ["000000", "cd0000", "00cd00", "cdcd00", "0000ee", "cd00cd", "00cdcd", "e5e5e5",
             "7f7f7f", "ff0000", "00ff00", "ffff00", "5c5cff", "ff00ff", "00ffff", "ffffff"]
    if n < 16:
        return "#" + basic[n]
    if n < 232:
        levels = [0, 95, 135, 175, 215, 255]
        n -= 16
        return "#{:02x}{:02x}{:02x}".format(levels[n // 36], levels[n // 6 % 6], levels[n % 6])
    gray = 8 + 10 * (n - 232)
    return f"#{gray:02x}{gray:02x}{gray:02x}"


def apply_sgr(style, params):
    """The style after an SGR sequence's parameters ("1;38;2;255;0;0")."""
    codes = [int(p.split(":")[0] or 0) for p in params.split(";")] if params else [0]
    flags = {1: {"bold": True}, 2: {"dim": True}, 3: {"italic": True}, 4: {"underline": True},
             7: {"reverse": True}, 22: {"bold": False, "dim": False}, 23: {"italic": False},
             24: {"underline": False}, 27: {"reverse": False}}
    i = 0
    while i < len(codes):
        code = codes[i]
        if code == 0:
            style = Style()
        elif code in flags:
            style = replace(style, **flags[code])
        elif code in (38, 48):
            field = "fg" if code == 38 else "bg"
            if codes[i + 1:i + 2] == [5] and i + 2 < len(codes):
                style = replace(style, **{field: xterm_color(codes[i + 2])})
                i += 2
            elif codes[i + 1:i + 2] == [2] and i + 4 < len(codes):
                style = replace(style, **{field: "#{:02x}{:02x}{:02x}".format(*codes[i + 2:i + 5])})
                i += 4
        elif code == 39:
            style = replace(style, fg=None)
        elif code == 49:
            style = replace(style, bg=None)
        elif 30 <= code <= 37 or 90 <= code <= 97:
            style = replace(style, fg=xterm_color(code - 30 if code < 90 else code - 82))
        elif 40 <= code <= 47 or 100 <= code <= 107:
            style = replace(style, bg=xterm_color(code - 40 if code < 100 else code - 92))
        i += 1
    return style


# An SGR sequence, any other CSI sequence, an OSC string, or one character.
TOKEN = re.compile(r"\x1b\[([0-9;:]*)m|\x1b\[[0-?]*[ -/]*[@-~]|\x1b\].*?(?:\x07|\x1b\\)|(.)")


def parse(ansi, cols, rows):
    """The capture as rows of (character, Style) cells. tmux carries styles across lines."""
    style, grid = Style(), []
    for line in ansi.split("\n")[:rows]:
        cells = []
        for m in TOKEN.finditer(line):
            if m.group(1) is not None:
                style = apply_sgr(style, m.group(1))
            elif m.group(2) is not None:
                cells.append((m.group(2), style))
        grid.append((cells + [(" ", style)] * cols)[:cols])
    grid += [[(" ", Style())] * cols] * (rows - len(grid))
    return grid


def spans(cells, key):
    """(start column, length, first cell) for each stretch of cells with one key (None: skipped)."""
    col = 0
    for k, group in itertools.groupby(cells, key):
        n = len(list(group))
        if k is not None:
            yield col, n, cells[col]
        col += n


def text_runs(cells):
    """(start column, text, look) for each run of text of one look. A single plain space joins a
    run; a wider gap starts a new one, so renderers that ignore textLength cannot drift far."""
    found, current, gap = [], None, 0
    for col, (ch, fg, _, s) in enumerate(cells):
        look = (fg, s.bold, s.dim, s.italic, s.underline)
        if ch == " " and not s.underline:
            gap += 1
            continue
        if ch in BLOCKS or ch in BOX:
            current = None
        elif current and current[2] == look and gap < 2:
            current[1] += " " * gap + ch
        else:
            current = [col, ch, look]
            found.append(current)
        gap = 0
    return found


def block(cell):
    """What makes a stretch of block elements one rect: the character, its color, dimness."""
    ch, fg, _, s = cell
    return (ch, fg, s.dim) if ch in BLOCKS else None


def box_path(drawn, top):
    """Path data for the box-drawing (column, character)s of the row at `top`: horizontal strokes
    merged across cells, a vertical stroke per cell."""
    mid_y = top + CELL_H / 2
    horizontal, vertical = [], []
    for col, ch in drawn:
        x0 = PAD + col * CELL_W
        mid_x = x0 + CELL_W / 2
        sides = BOX[ch]
        if "l" in sides or "r" in sides:
            start = x0 if "l" in sides else mid_x
            end = x0 + CELL_W if "r" in sides else mid_x
            if horizontal and abs(horizontal[-1][1] - start) < 1e-6:
                horizontal[-1][1] = end
            else:
                horizontal.append([start, end])
        if "t" in sides or "b" in sides:
            vertical.append((mid_x, top if "t" in sides else mid_y,
                             top + CELL_H if "b" in sides else mid_y))
    return "".join([f"M{a:.1f} {mid_y:g}H{b:.1f}" for a, b in horizontal]
                   + [f"M{x:.1f} {a:g}V{b:g}" for x, a, b in vertical])


def svg(grid, theme):
    """A standalone SVG of the grid: background, cell backgrounds, blocks as rects, text."""
    term_bg, term_fg = TERMINAL.get(theme, DARK_TERMINAL)
    rows, cols = len(grid), len(grid[0])
    width, height = round(2 * PAD + cols * CELL_W), 2 * PAD + rows * CELL_H
    dim = {True: ' opacity="0.6"', False: ""}

    def x(col):
        return f"{PAD + col * CELL_W:.1f}"

    body = []
    for r, row in enumerate(grid):
        y = PAD + r * CELL_H
        cells = []  # (char, fg, bg or None for the default, style), reverse video applied
        for ch, s in row:
            fg, bg = s.fg or term_fg, s.bg
            if s.reverse:
                fg, bg = bg or term_bg, fg
            cells.append((ch, fg, bg, s))
        for col, n, (_, _, bg, _) in spans(cells, lambda c: c[2]):
            body.append(f'<rect x="{x(col)}" y="{y}" width="{n * CELL_W:.1f}" height="{CELL_H}" '
                        f'fill="{bg}"/>')
        for col, n, (ch, fg, _, s) in spans(cells, block):
            top, eighths = BLOCKS[ch]
            body.append(f'<rect x="{x(col)}" y="{y + top * CELL_H / 8:g}" width="{n * CELL_W:.1f}" '
                        f'height="{eighths * CELL_H / 8:g}" fill="{fg}"{dim[s.dim]}/>')
        strokes = {}  # (color, dim): the row's box-drawing (column, character)s in that color
        for col, (ch, fg, _, s) in enumerate(cells):
            if ch in BOX:
                strokes.setdefault((fg, s.dim), []).append((col, ch))
        for (fg, faint), drawn in strokes.items():
            body.append(f'<path d="{box_path(drawn, y)}" stroke="{fg}" fill="none"{dim[faint]}/>')
        for col, text, (fg, bold, faint, italic, underline) in text_runs(cells):
            attrs = (' font-weight="bold"' * bold + ' font-style="italic"' * italic
                     + ' text-decoration="underline"' * underline + dim[faint])
            body.append(f'<text x="{x(col)}" y="{y + BASELINE}" fill="{fg}" '
                        f'textLength="{len(text) * CELL_W:.1f}"{attrs}>{escape(text)}</text>')
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        "<title>looptop</title>",
        f'<rect width="{width}" height="{height}" rx="8" fill="{term_bg}"/>',
        f'<g {FONT} xml:space="preserve" shape-rendering="crispEdges" stroke-linecap="square">',
        *body,
        "</g>",
        "</svg>",
        "",
    ])


def size(text):
    found = re.fullmatch(r"(\d+)x(\d+)", text)
    if not found:
        raise argparse.ArgumentTypeError("expected COLSxROWS, like 100x30")
    return int(found.group(1)), int(found.group(2))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--looptop", type=Path, default=find_looptop(),
                        help="the binary (default: the first built one under $CARGO_TARGET_DIR "
                             "or target/, release before debug)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "tui.svg",
                        help="the SVG to write; the plain text goes beside it as .txt")
    parser.add_argument("--size", type=size, default=(100, 30), help="COLSxROWS (default 100x30)")
    parser.add_argument("--theme", default="dark", help="looptop's --theme (default dark)")
    parser.add_argument("--job", default="train", help="the job shown (default train)")
    parser.add_argument("--runs", type=int, default=4,
                        help="finished runs before the captured one (default 4)")
    parser.add_argument("--steps", type=int, default=120,
                        help="training steps per run (default 120, a few seconds)")
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        fail("tmux is not installed; it runs looptop in a terminal of known size")
    if args.looptop is None or not args.looptop.is_file():
        fail(f"no looptop binary at {args.looptop or 'target/{release,debug}/looptop'}; "
             "build it with `cargo build --release` or pass --looptop PATH")

    # SIGTERM unwinds like Ctrl-C, so the tmux server is killed and the temporary copy removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("tui-picture: terminated"))
    with tempfile.TemporaryDirectory(prefix="looptop-picture-") as tmp:
        project = Path(tmp) / "quickstart"
        shutil.copytree(REPO / "examples" / "quickstart", project,
                        ignore=shutil.ignore_patterns(".looptop", "__pycache__"))
        # Longer runs than the example's 20 steps, so that the graphs have something to show.
        config = project / "looptop.toml"
        config.write_text(config.read_text().replace("--steps 20", f"--steps {args.steps}"))
        ansi = capture(args.looptop.resolve(), project, Path(tmp) / "home", args)

    grid = parse(ansi, *args.size)
    text = "\n".join("".join(ch for ch, _ in row).rstrip() for row in grid) + "\n"
    txt = args.out.with_suffix(".txt")
    args.out.write_text(svg(grid, args.theme), encoding="utf-8")
    txt.write_text(text, encoding="utf-8")
    for path in (args.out, txt):
        print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
