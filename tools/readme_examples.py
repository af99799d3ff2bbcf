"""Regenerate the example blocks in README.md from real runs of ``snnc``.

Each example is one or more ``snnc`` command lines.  They run in order, through
the installed ``.venv/bin/snnc``, in a fresh temporary folder (later examples
use the files earlier ones wrote), with small settings and ``--threads 1`` so
the whole list takes a few minutes on one CPU core.  Each command's stdout and
stderr are captured together; progress bars, carriage-return redraws and ANSI
codes are removed, the temporary folder is shown as ``/tmp/ex`` and very long
outputs keep their head and end around a ``...`` line.  The result replaces
the text between ``<!-- example:NAME -->`` and ``<!-- /example:NAME -->`` in
README.md (written atomically).

Usage (from the repository root)::

    .venv/bin/python tools/readme_examples.py            # run everything, rewrite README.md
    .venv/bin/python tools/readme_examples.py --check    # report blocks that would change (exit 1)
    .venv/bin/python tools/readme_examples.py --keep     # also keep the work folder

Timings and rates in the outputs differ from run to run, so ``--check`` is for
people, not for the test suite.  Any failing command, unexpected exit code or
missing marker stops the script with a one-line message and exit code 1.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

REPO = Path(__file__).resolve().parent.parent
SHOWN_DIR = "/tmp/ex"  # how the work folder appears in the README
COMMAND_TIMEOUT_S = 900  # one command; a hang fails the script
WRAP = 88  # console line width for long command lines


class ExampleError(Exception):
    """A command failed, a marker is missing or malformed: one-line message."""


@dataclass(frozen=True)
class Step:
    """One command line of an example.

    ``args`` follow ``snnc``; ``{d}`` stands for the work folder.  ``rc`` is the
    exit code the command must return (non-zero for the error examples, which
    are then shown followed by ``$ echo $?``).
    """

    args: str
    rc: int = 0


@dataclass(frozen=True)
class Example:
    """One README block: its marker name, its steps and how much output to keep."""

    name: str
    steps: tuple[Step, ...]
    head: int = 40  # with more than head + tail + 1 lines, keep head and tail lines
    tail: int = 12
    mkdir: tuple[str, ...] = ()  # folders ({d}/...) to create first, shown as `$ mkdir -p`
    resume: str | None = None  # regex: show `tail` lines from its first match after the head


def _ex(
    name: str, *args: str, head: int = 40, tail: int = 12, mkdir: tuple[str, ...] = (), resume: str | None = None
) -> Example:
    return Example(name, tuple(Step(a) for a in args), head, tail, mkdir, resume)


_RULE = r"^-{10}"  # a table's rule line: the tables below resume at their total row

# Order matters: later examples read what earlier ones wrote.
EXAMPLES: tuple[Example, ...] = (
    _ex(
        "zoo-stream",
        "data synth {d}/unseen_data.hdf5 --frames 40 --seed 999 --quiet",
        "stream {d}/unseen_data.hdf5 --frames 10 --out {d}/r.h5 --video {d}/stream.mp4 --threads 1",
    ),
    _ex("models", "models"),
    _ex("help", "--help"),
    _ex("data-synth", "data synth {d}/rec_data.hdf5 --frames 40 --height 64 --width 96"),
    _ex("data-info", "data info {d}/rec_data.hdf5"),
    _ex("info-list", "info --list", "info sequential-dvs"),
    _ex("info", "info spikedhs-stereo", head=8, tail=6, resume=_RULE),
    _ex(
        "search-snasnet",
        "search --method snasnet --task cls --data digits --candidates 20 --out {d}/snas/arch.json --threads 1",
    ),
    _ex(
        "search-spikedhs",
        "search --method spikedhs --task cls --data digits --out {d}/dhs/arch.json "
        "--epochs 4 --warmup 2 --layers 3 --width 4 --time-steps 2 --threads 1",
    ),
    _ex("train-digits", "train --arch {d}/dhs/arch.json --data digits --epochs 3 --out {d}/run_digits --threads 1"),
    _ex(
        "train-stereo",
        "train --arch spikedhs-stereo --data {d}/rec_data.hdf5 --width 2 --max-disparity 38 "
        "--feature-stride 1 --volume-shifts auto --steps 2 --burn-in 1 --augment-crop 32,48 --epochs 2 "
        "--out {d}/run_stereo --threads 1",
    ),
    _ex(
        "export-nir",
        "export {d}/run_stereo/folded.pt --to nir --partition --out {d}/stereo.json --input-shape 1,2,5,64,96",
        "export {d}/run_digits/folded.pt --to nir --out {d}/digits.nir",
    ),
    _ex("export-onnx", "export {d}/run_stereo/folded.pt --to onnx --out {d}/stereo.onnx --input-shape 1,2,5,64,96"),
    _ex("export-lava", "export sequential-dvs --to lava --out {d}/seq.h5"),
    _ex(
        "stream-torch",
        "stream {d}/rec_data.hdf5 --model {d}/run_stereo/folded.pt --frames 8 "
        "--out {d}/results.h5 --png-dir {d}/pngs --png-every 4 --threads 1",
    ),
    _ex(
        "stream-onnx",
        "stream {d}/rec_data.hdf5 --model {d}/run_stereo/folded.pt --backend onnx --frames 4 --json --threads 1",
    ),
    _ex(
        "stream-lava", "stream {d}/rec_data.hdf5 --model {d}/run_stereo/folded.pt --backend lava --frames 3 --threads 1"
    ),
    _ex(
        "stream-hybrid",
        "stream {d}/rec_data.hdf5 --model {d}/run_stereo/folded.pt --backend hybrid --frames 3 --threads 1",
    ),
    _ex(
        "energy",
        "energy {d}/run_stereo/folded.pt --data {d}/rec_data.hdf5 --frames 5 --format table "
        "--plot {d}/energy.png --threads 1",
        head=8,
        tail=12,
        resume=_RULE,
    ),
    _ex(
        "energy-digits",
        "energy {d}/run_digits/folded.pt --data digits --frames 50 --format table --threads 1",
        head=8,
        tail=12,
        resume=_RULE,
    ),
    Example(
        "errors",
        (
            Step("stream {d}/missing_data.hdf5 --model spikedhs-stereo", rc=2),
            Step("export sequential-dvs --to lava --out {d}/seq.h5", rc=2),
        ),
    ),
)

# ---------------------------------------------------------------- markers

_MARKER = re.compile(r"<!--\s*(/?)example:([A-Za-z0-9_.-]+)\s*-->")


def _marker_spans(text: str) -> dict[str, tuple[int, int]]:
    """Name -> (start, end) of the content between its markers, in order of appearance.

    Raises:
        ExampleError: a marker is unpaired, nested, out of order or used twice.
    """
    spans: dict[str, tuple[int, int]] = {}
    current: tuple[str, int] | None = None
    for match in _MARKER.finditer(text):
        closing, name = match.group(1) == "/", match.group(2)
        line = text.count("\n", 0, match.start()) + 1
        if not closing:
            if current is not None:
                raise ExampleError(f"line {line}: example:{name} opens inside example:{current[0]}")
            if name in spans:
                raise ExampleError(f"line {line}: example:{name} appears twice")
            current = (name, match.end())
        else:
            if current is None or current[0] != name:
                raise ExampleError(
                    f"line {line}: /example:{name} closes nothing open"
                    + (f" (example:{current[0]} is open)" if current else "")
                )
            spans[name] = (current[1], match.start())
            current = None
    if current is not None:
        raise ExampleError(f"example:{current[0]} is never closed")
    return spans


def marker_names(text: str) -> list[str]:
    """Names of the example blocks in ``text``, in order.

    Raises:
        ExampleError: a marker is unpaired, nested, out of order or used twice.
    """
    return list(_marker_spans(text))


def replace_blocks(text: str, blocks: Mapping[str, str]) -> str:
    """Return ``text`` with the region between each named marker pair replaced.

    ``blocks`` maps a marker name to its new content; the markers themselves are
    kept, the content goes on its own lines between them, and everything
    outside the marked regions is left byte for byte.  Blocks in ``text`` that
    ``blocks`` does not name are left alone.

    Raises:
        ExampleError: a marker pair for a name in ``blocks`` is missing, or the
            markers in ``text`` are malformed (see ``marker_names``).
    """
    spans = _marker_spans(text)
    missing = [name for name in blocks if name not in spans]
    if missing:
        raise ExampleError(f"no marker pair for example(s): {', '.join(missing)}")
    out = text
    for name in sorted(blocks, key=lambda n: spans[n][0], reverse=True):
        start, end = spans[name]
        out = out[:start] + "\n" + blocks[name].strip("\n") + "\n" + out[end:]
    return out


def block_contents(text: str) -> dict[str, str]:
    """Current content (without the markers and surrounding newlines) of each example block."""
    return {name: text[start:end].strip("\n") for name, (start, end) in _marker_spans(text).items()}


# ---------------------------------------------------------------- output cleaning

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
# a tqdm bar: "desc:  42%|####      | 10/24 [00:01<00:02,  7.1it/s, loss=3.1]"
_BAR = re.compile(r"[^\r\n]*?\d{1,3}%\|[^|\r\n]*\|[^\r\n\[]*\[[^\]\r\n]*\]")


def clean_output(raw: str, work_dir: Sequence[str]) -> str:
    """Captured output as a reader would keep it.

    Removes ANSI codes and progress bars (text printed on a bar's line is
    kept), resolves carriage-return redraws, drops lines of blanks, shows each
    path in ``work_dir`` as ``/tmp/ex`` and trims blank lines at both ends.
    """
    text = _ANSI.sub("", raw)
    for path in sorted(work_dir, key=len, reverse=True):
        text = text.replace(path, SHOWN_DIR)
    lines: list[str] = []
    for line in text.split("\n"):
        bare = _BAR.sub("", line)
        kept = [part.rstrip() for part in bare.split("\r") if part.strip()]
        if kept:
            lines.extend(kept)
        elif line == "":
            lines.append("")  # a real empty line; bars and lines of blanks are redraw noise
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def truncate(text: str, head: int, tail: int, resume: str | None = None) -> str:
    """Shorten a long output around ``...`` lines.

    Without ``resume`` (or when it matches no line after the head), keep the
    first ``head`` and the last ``tail`` lines.  With ``resume``, keep the first
    ``head`` lines and then ``tail`` lines from the first line after them that
    matches the regex ``resume`` (followed by ``...`` if more lines remain).
    """
    lines = text.split("\n")
    if len(lines) <= head + tail + 1:
        return text
    if resume is not None:
        pattern = re.compile(resume)
        for i in range(head, len(lines)):
            if pattern.search(lines[i]):
                kept = lines[:head] + (["..."] if i > head else []) + lines[i : i + tail]
                return "\n".join(kept + (["..."] if i + tail < len(lines) else []))
    return "\n".join([*lines[:head], "...", *lines[-tail:]])


def shown_command(args: str) -> str:
    """``$ snnc ARGS`` with long lines wrapped at option boundaries (shell-valid)."""
    tokens = shlex.split(args.replace("{d}", SHOWN_DIR))
    groups: list[str] = []
    i = 0
    while i < len(tokens):
        group = [tokens[i]]
        if tokens[i].startswith("--") and i + 1 < len(tokens) and not tokens[i + 1].startswith("-"):
            group.append(tokens[i + 1])
            i += 1
        groups.append(shlex.join(group))
        i += 1
    lines, current = [], "$ snnc"
    for group in groups:
        if len(current) + 1 + len(group) > WRAP - 2 and current.strip() not in ("$ snnc", ""):
            lines.append(current + " \\")
            current = "    " + group
        else:
            current += " " + group
    lines.append(current)
    return "\n".join(lines)


# ---------------------------------------------------------------- running


@dataclass
class Runner:
    """Runs the examples' commands in one work folder."""

    snnc: Path
    work: Path

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "PYTHONUNBUFFERED": "1",
                "COLUMNS": "80",
                "LINES": "50",
                "NO_COLOR": "1",
                "TERM": "dumb",
                "PYTHONWARNINGS": "ignore",
            }
        )
        return env

    def run_step(self, example: str, step: Step) -> str:
        argv = [str(self.snnc), *shlex.split(step.args.replace("{d}", str(self.work)))]
        shown = "snnc " + step.args.replace("{d}", SHOWN_DIR)
        try:
            proc = subprocess.run(
                argv,
                cwd=self.work,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=COMMAND_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise ExampleError(f"{example}: `{shown}` ran past {COMMAND_TIMEOUT_S} s") from None
        out = clean_output(proc.stdout.decode("utf-8", "replace"), [str(self.work), os.path.realpath(self.work)])
        if proc.returncode != step.rc:
            last = [ln for ln in out.split("\n") if ln.strip()][-1:] or ["(no output)"]
            raise ExampleError(f"{example}: `{shown}` exited {proc.returncode} (expected {step.rc}): {last[0]}")
        if "Traceback (most recent call last)" in out:
            raise ExampleError(f"{example}: `{shown}` printed a traceback")
        return out

    def render(self, example: Example) -> str:
        """Run ``example`` and return its README block content."""
        parts: list[str] = []
        for folder in example.mkdir:
            Path(folder.replace("{d}", str(self.work))).mkdir(parents=True, exist_ok=True)
            parts.append("$ mkdir -p " + shlex.quote(folder.replace("{d}", SHOWN_DIR)))
        for step in example.steps:
            out = truncate(self.run_step(example.name, step), example.head, example.tail, example.resume)
            parts.append(shown_command(step.args))
            if out:
                parts.append(out)
            if step.rc != 0:
                parts.append(f"$ echo $?\n{step.rc}")
        return "```console\n" + "\n".join(parts) + "\n```"


def render_all(
    snnc: Path, work: Path, examples: Sequence[Example] = EXAMPLES, log: TextIO | None = None
) -> dict[str, str]:
    """Run every example in order in ``work``; name -> block content."""
    runner = Runner(snnc, work)
    blocks: dict[str, str] = {}
    for i, example in enumerate(examples, 1):
        t0 = time.monotonic()
        blocks[example.name] = runner.render(example)
        print(
            f"[{i}/{len(examples)}] {example.name}: {time.monotonic() - t0:.1f} s", file=log or sys.stderr, flush=True
        )
    return blocks


def _write_atomic(path: Path, text: str) -> None:
    sys.path.insert(0, str(REPO))
    from snnc.fileio import write_text_atomic

    write_text_atomic(path, text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="regenerate in memory and list the blocks that would change (exit 1 if any)",
    )
    parser.add_argument("--readme", type=Path, default=REPO / "README.md")
    parser.add_argument("--snnc", type=Path, default=REPO / ".venv" / "bin" / "snnc")
    parser.add_argument("--keep", action="store_true", help="keep the work folder and print its path")
    args = parser.parse_args(argv)
    t_start = time.monotonic()
    try:
        if not args.snnc.exists():
            raise ExampleError(f"{args.snnc}: not found (run `make install` first)")
        text = args.readme.read_text(encoding="utf-8")
        try:
            names = marker_names(text)
        except ExampleError as err:
            raise ExampleError(f"{args.readme}: {err}") from None
        wanted = [e.name for e in EXAMPLES]
        missing = [n for n in wanted if n not in names]
        stale = [n for n in names if n not in wanted]
        if missing:
            raise ExampleError(f"{args.readme}: no marker pair for example(s): {', '.join(missing)}")
        if stale:
            raise ExampleError(f"{args.readme}: marker(s) with no example in this script: {', '.join(stale)}")
        work = Path(tempfile.mkdtemp(prefix="snnc_readme_"))
        try:
            blocks = render_all(args.snnc, work)
        finally:
            if args.keep:
                print(f"work folder kept: {work}", file=sys.stderr)
            else:
                shutil.rmtree(work, ignore_errors=True)
        # read again: the README may have been edited while the commands ran
        text = args.readme.read_text(encoding="utf-8")
        new_text = replace_blocks(text, blocks)
    except (ExampleError, OSError) as err:
        print(f"readme_examples: error: {err}", file=sys.stderr)
        return 1
    elapsed = time.monotonic() - t_start
    if args.check:
        old = block_contents(text)
        changed = [n for n, body in blocks.items() if old.get(n, "") != body.strip("\n")]
        for name in changed:
            print(f"would change: {name}")
        print(f"{len(changed)} of {len(blocks)} blocks would change ({elapsed:.0f} s)")
        return 1 if changed else 0
    if new_text != text:
        try:
            _write_atomic(args.readme, new_text)
        except Exception as err:  # SnncError / OSError: one line, not a traceback
            print(f"readme_examples: error: cannot write {args.readme}: {err}", file=sys.stderr)
            return 1
    print(f"updated {len(blocks)} example blocks in {args.readme} ({elapsed:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
