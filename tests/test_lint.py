"""The linters CI runs through the test command: ruff (lint and format) over the package and
the tests, snakefmt over the workflow. Each fails with the linter's own findings."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "cmd",
    [
        [sys.executable, "-m", "ruff", "check", "resnet_repro", "tests"],
        [sys.executable, "-m", "ruff", "format", "--check", "resnet_repro", "tests"],
        ["snakefmt", "--check", "Snakefile", "workflow"],
    ],
    ids=["ruff-check", "ruff-format", "snakefmt"],
)
def test_linter_is_clean(cmd):
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
