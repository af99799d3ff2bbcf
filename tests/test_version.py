"""``snnc --version``: the release number, plus the git revision when run from a checkout."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import snnc
from snnc.version import git_revision, version_text

from cli_helpers import ROOT, expect_ok, run_snnc


def test_version_names_release_and_checkout_revision() -> None:
    out = expect_ok(run_snnc("--version")).strip()
    assert out.startswith(f"snnc {snnc.__version__}")
    if (ROOT / ".git").exists() and shutil.which("git"):
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        assert re.fullmatch(rf"snnc {re.escape(snnc.__version__)} \(git {head}(, dirty)?\)", out), out
    assert out == version_text()


def test_no_revision_outside_a_checkout(tmp_path: Path) -> None:
    package = tmp_path / "site-packages" / "snnc"
    package.mkdir(parents=True)
    assert git_revision(package) is None


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_dirty_flag_follows_tracked_changes(tmp_path: Path) -> None:
    repo = tmp_path / "checkout"
    (repo / "snnc").mkdir(parents=True)
    (repo / "f.txt").write_text("a")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "f.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    clean = git_revision(repo / "snnc")
    assert clean is not None and re.fullmatch(r"[0-9a-f]{7,}", clean), clean
    (repo / "f.txt").write_text("b")
    assert git_revision(repo / "snnc") == f"{clean}, dirty"
