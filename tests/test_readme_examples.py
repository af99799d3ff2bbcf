"""tools/readme_examples.py: README markers and the pure block-rewriting helpers.

Nothing here runs the example commands (that takes minutes); the outputs are
refreshed by running the script by hand.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _load_tool():
    name = "readme_examples_tool"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / "readme_examples.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look the module up while the class is built
    spec.loader.exec_module(module)
    return module


tool = _load_tool()
README = (REPO / "README.md").read_text(encoding="utf-8")

SAMPLE = """intro
<!-- example:a -->
old a
<!-- /example:a -->
middle
<!-- example:b -->
<!-- /example:b -->
outro
"""


def test_readme_markers_are_well_formed_and_match_the_script():
    names = tool.marker_names(README)  # raises on unpaired / nested / duplicate markers
    script = [e.name for e in tool.EXAMPLES]
    assert len(set(script)) == len(script)
    assert names == script  # README shows the blocks in the order the script runs them
    raw = re.findall(r"<!--\s*/?example:", README)
    assert len(raw) == 2 * len(names)


def test_readme_blocks_hold_a_console_block_per_example():
    contents = tool.block_contents(README)
    for example in tool.EXAMPLES:
        body = contents[example.name]
        assert body.startswith("```console\n$ snnc") or body.startswith("```console\n$ mkdir"), example.name
        assert body.endswith("\n```"), example.name
        assert body.count("```") == 2, example.name


def test_examples_use_one_thread_where_the_command_has_it():
    for example in tool.EXAMPLES:
        for step in example.steps:
            command = step.args.split(" --")[0].split()[0]
            if command in ("search", "train", "stream", "energy") and step.rc == 0:
                assert "--threads 1" in step.args, step.args


def test_replace_blocks_rewrites_only_the_marked_regions():
    out = tool.replace_blocks(SAMPLE, {"b": "new b\nline 2", "a": "\n\nnew a\n"})
    assert out == SAMPLE.replace("old a", "new a").replace(
        "<!-- example:b -->\n", "<!-- example:b -->\nnew b\nline 2\n"
    )
    # a block not named is untouched; replacing twice is idempotent
    assert tool.replace_blocks(SAMPLE, {"b": "x"}).split("middle")[0] == SAMPLE.split("middle")[0]
    once = tool.replace_blocks(SAMPLE, {"a": "z"})
    assert tool.replace_blocks(once, {"a": "z"}) == once
    assert tool.block_contents(out) == {"a": "new a", "b": "new b\nline 2"}


def test_replace_blocks_raises_on_missing_or_broken_markers():
    with pytest.raises(tool.ExampleError, match="c"):
        tool.replace_blocks(SAMPLE, {"c": "x"})
    broken = {
        "unclosed": "<!-- example:a -->\nx\n",
        "stray close": "x\n<!-- /example:a -->\n",
        "nested": "<!-- example:a -->\n<!-- example:b -->\n<!-- /example:b -->\n<!-- /example:a -->\n",
        "twice": SAMPLE + "<!-- example:a -->\n<!-- /example:a -->\n",
        "mismatched": "<!-- example:a -->\n<!-- /example:b -->\n",
    }
    for _what, text in broken.items():
        with pytest.raises(tool.ExampleError):
            tool.replace_blocks(text, {"a": "x"})
        with pytest.raises(tool.ExampleError):
            tool.marker_names(text)


def test_clean_output_drops_bars_ansi_and_the_work_folder():
    raw = (
        "\rtrain:   0%|          | 0/24 [00:00<?, ?step/s]"
        "\rtrain:  50%|#####     | 12/24 [00:01<00:01,  6.76step/s, loss=3.084]epoch 1/2 loss 3.1\n"
        "\r                                   \r\x1b[1mwrote /tmp/snnc_readme_x/run/a.pt\x1b[0m\n"
        "\n"
        "snasnet: 100%|##########| 20/20 [00:03<00:00,  9.33cand/s, best=624.39]\n"
        "    \n"
        "done\n"
    )
    assert tool.clean_output(raw, ["/tmp/snnc_readme_x"]) == ("epoch 1/2 loss 3.1\nwrote /tmp/ex/run/a.pt\n\ndone")


def test_truncate_keeps_head_and_tail_or_resumes_at_a_pattern():
    text = "\n".join(f"l{i}" for i in range(30))
    assert tool.truncate(text, 5, 5) == "\n".join(
        [f"l{i}" for i in range(5)] + ["..."] + [f"l{i}" for i in range(25, 30)]
    )
    assert tool.truncate("a\nb", 1, 1) == "a\nb"
    lines = tool.truncate(text, 3, 2, resume=r"^l1[0-9]$").split("\n")
    assert lines == ["l0", "l1", "l2", "...", "l10", "l11", "..."]
    # a pattern that never matches after the head falls back to head + tail
    assert tool.truncate(text, 3, 2, resume="nope") == tool.truncate(text, 3, 2)


def test_shown_command_wraps_at_option_boundaries():
    args = (
        "train --arch spikedhs-stereo --data {d}/rec_data.hdf5 --width 2 --max-disparity 40 "
        "--steps 2 --burn-in 1 --epochs 2 --out {d}/run_stereo --threads 1"
    )
    shown = tool.shown_command(args)
    assert shown.startswith("$ snnc train --arch spikedhs-stereo")
    assert "{d}" not in shown and "/tmp/ex/run_stereo" in shown
    for line in shown.split("\n"):
        assert len(line) <= tool.WRAP
    for line in shown.split("\n")[:-1]:
        assert line.endswith(" \\")
    # joining the continuation lines gives back the command, option values next to their options
    joined = " ".join(part.rstrip(" \\").strip() for part in shown.split("\n"))
    assert joined == "$ snnc " + args.replace("{d}", "/tmp/ex")
