"""tools/gpu-check --rehearse: every step of the GPU proof runs on the CPU at toy sizes, so the
script cannot rot between GPU runs (issue 22)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_gpu_check_rehearses_every_step_on_the_cpu(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gpu-check"), "--rehearse", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    report = json.loads((out / "gpu-report.json").read_text())
    failed = {r["step"]: r.get("error") for r in report if r["status"] != "pass"}
    assert proc.returncode == 0 and not failed, (failed, proc.stdout[-3000:])
    steps = [r["step"] for r in report]
    assert steps == [
        "machine",
        "install",
        "cuda-tests",
        "bench",
        "bench-study",
        "workflow",
        "resume",
        "precision",
        "determinism",
    ]
    results = {r["step"]: r["result"] for r in report}
    # The CUDA tests exist and are skipped on the CPU, not missing.
    assert results["cuda-tests"]["tests"] >= 3
    assert results["cuda-tests"]["skipped"] == results["cuda-tests"]["tests"]
    bench = results["bench"]["resnet8"]
    assert {"trainer", "dataloader", "ceiling"} <= set(bench)
    assert bench["trainer"]["ops_per_step"] > 0
    assert [(r["compile"], r["channels_last"]) for r in bench["compile"]] == [
        ("eager", False),
        ("eager", True),
    ]
    assert results["bench"]["packed2"]["packed"]["jobs"] == 2
    assert results["bench-study"]["compiled"]["2_devices"]["makespan_seconds"] > 0
    assert results["resume"]["killed_and_resumed_equals_whole"] is True
    assert results["resume"]["epochs"] == 3
    assert results["determinism"]["weights_bit_identical"] is True
    assert "resnet8" in results["workflow"]["table6"]
    md = (out / "gpu-report.md").read_text()
    assert "| bench | pass |" in md and "rehearsal on the CPU" in md
    assert len(list(out.iterdir())) <= 8  # report, JSON, logs and the work folder
