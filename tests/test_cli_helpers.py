"""The in-process ``run_snnc`` behaves like the real ``python -m snnc`` and leaves no state behind."""

from __future__ import annotations

import logging
import os
import random
import signal
import warnings

import numpy as np
import pytest
import torch

import cli_helpers
from cli_helpers import ROOT, _captured, _isolated_state, _text_stream, assert_user_error, expect_ok, run_snnc


def test_in_process_and_subprocess_agree_on_output_and_exit_codes() -> None:
    for args in (("--version",), ("info", "spikedhs-nope"), ("info", "--no-such-option")):
        inproc, proc = run_snnc(*args), run_snnc(*args, subprocess=True)
        assert (inproc.returncode, inproc.stdout, inproc.stderr) == (proc.returncode, proc.stdout, proc.stderr), args
    assert_user_error(run_snnc("info", "spikedhs-nope"), "spikedhs-nope")


def test_global_state_is_restored(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SNNC_DEBUG", "1")
    threads, cwd = torch.get_num_threads(), os.getcwd()
    # NumPy's global RNG on purpose (NPY002): the helper must restore exactly that one.
    rng = torch.random.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()  # noqa: NPY002
    handler = signal.getsignal(signal.SIGTERM)
    log = logging.getLogger("snnc.test_helper")
    level = log.level
    with _isolated_state({"SNNC_EXTRA": "x"}):
        assert os.getcwd() == str(ROOT) and "SNNC_DEBUG" not in os.environ and os.environ["SNNC_EXTRA"] == "x"
        torch.set_num_threads(1 if threads != 1 else 2)
        torch.manual_seed(123)
        np.random.seed(123)  # noqa: NPY002
        random.seed(123)
        os.environ["SNNC_LEAK"] = "1"
        os.chdir(tmp_path)
        signal.signal(signal.SIGTERM, lambda *_: None)
        log.setLevel(logging.ERROR)
        log.addHandler(logging.NullHandler())
    assert torch.get_num_threads() == threads and os.getcwd() == cwd
    assert torch.equal(torch.random.get_rng_state(), rng[0])
    assert np.array_equal(np.random.get_state()[1], rng[1]) and random.getstate() == rng[2]  # noqa: NPY002
    assert os.environ["SNNC_DEBUG"] == "1" and "SNNC_LEAK" not in os.environ and "SNNC_EXTRA" not in os.environ
    assert signal.getsignal(signal.SIGTERM) is handler
    assert log.level == level and not log.handlers


def test_warnings_reach_the_captured_stderr_as_in_a_process() -> None:
    out, err = _text_stream(), _text_stream()
    with warnings.catch_warnings(), _captured(out, err):
        warnings.warn("a stray warning", UserWarning, stacklevel=1)
        warnings.warn("hidden by default", DeprecationWarning, stacklevel=1)
    text = cli_helpers._read(err)
    assert "UserWarning: a stray warning" in text and "hidden by default" not in text


def test_native_output_on_file_descriptors_is_captured() -> None:
    with cli_helpers.tempfile.TemporaryFile() as fd_out, cli_helpers.tempfile.TemporaryFile() as fd_err:
        with cli_helpers._captured_fds(fd_out, fd_err):
            os.write(1, b"native out\r\n")
            os.write(2, b"native err\n")
        assert cli_helpers._read_fd(fd_out) == "native out\n"
        assert cli_helpers._read_fd(fd_err) == "native err\n"


@pytest.mark.parametrize(
    "code, expected", [(None, (0, "")), (0, (0, "")), (2, (2, "")), (256 + 3, (3, "")), ("bye", (1, "bye\n"))]
)
def test_exit_status_as_the_interpreter_reports_it(code, expected) -> None:
    assert cli_helpers._exit_status(code) == expected


def test_stdout_is_returned() -> None:
    assert "spikedhs-stereo" in expect_ok(run_snnc("info", "--list")).split()
