"""scripts/gpu_check.sh and scripts/bench_gpu.py where there is no GPU: the one-line no-CUDA exit, the benchmark
tiny on the CPU, and every step of the check in --cpu-smoke mode (the end-to-end benchmark among them)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "gpu_check.sh"


def environment(**extra):
    return {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", **extra}


def test_without_cuda_it_says_so_in_one_line_and_exits_0(tmp_path):
    done = subprocess.run(["bash", str(SCRIPT), "--out", str(tmp_path / "out")], capture_output=True, text=True,
                          timeout=120, env=environment(CUDA_VISIBLE_DEVICES=""))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "gpu-check: no CUDA device visible to torch " + done.stdout.split("torch ")[1].split(" ")[0]
        + " (CUDA_VISIBLE_DEVICES=); nothing to check"]
    assert not (tmp_path / "out").exists()


def test_a_bad_argument_or_no_torch_is_one_line(tmp_path):
    done = subprocess.run(["bash", str(SCRIPT), "--fast"], capture_output=True, text=True, timeout=60,
                          env=environment())
    assert done.returncode == 2 and "unknown argument --fast" in done.stderr
    done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=60,
                          env=environment(PYTHON=str(tmp_path / "no-python")))
    assert done.returncode == 1 and done.stdout.strip().startswith("gpu-check: cannot import torch with")


def test_the_benchmark_runs_tiny_on_the_cpu(tmp_path, capsys, one_thread):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import bench_gpu
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    assert bench_gpu.main(["--cpu-smoke", "--json", str(tmp_path / "bench.json")]) == 0
    result = json.loads((tmp_path / "bench.json").read_text())
    assert [loop["loop"] for loop in result["loops"]] == ["kit train loop", "bare PyTorch loop", "plain fp32 loop"]
    assert all(loop["images_per_s"] > 0 for loop in result["loops"])
    assert result["loops"][1]["vs_bare"] == 1.0
    printed = capsys.readouterr().out
    assert "kit train loop" in printed and "images/s" in printed


@pytest.mark.slow
def test_every_step_of_the_check_runs_on_the_cpu(tmp_path):
    done = subprocess.run(["bash", str(SCRIPT), "--cpu-smoke", "--out", str(tmp_path / "out")], capture_output=True,
                          text=True, timeout=600, env=environment())
    assert done.returncode == 0, done.stdout + done.stderr
    summary = (tmp_path / "out" / "summary.md").read_text()
    rows = {line.split()[0]: line.split()[1] for line in summary.splitlines()
            if line.split() and line.split()[0] in ("suite", "benchmark", "fanout", "torchrun", "endtoend")}
    assert rows == {"suite": "SKIPPED", "benchmark": "PASS", "fanout": "PASS", "torchrun": "PASS",
                    "endtoend": "PASS"}, summary
    assert "2 fold runs done (cpu,cpu), blended" in summary and "DDP rank 0/2 (gloo)" in summary
    assert "kit train loop" in summary  # the benchmark's table closes the summary
    assert "of the limit: " in summary and "images on the GPU" in summary
    for log in ("machine.log", "benchmark.log", "fanout.log", "torchrun.log", "bench.json", "endtoend.log",
                "end_to_end.json"):
        assert (tmp_path / "out" / log).is_file()
    # step 5, scripts/bench_end_to_end.py: each path of `kit train` against the loop on batches already there
    result = json.loads((tmp_path / "out" / "end_to_end.json").read_text())
    assert [row["run"].split(", ")[-1] for row in result["train"]] == [
        "2 workers", "2 threads", "1 threads", "images on the GPU", "limit: train_one_epoch on batches on the GPU"]
    assert all(row["images_per_s"] > 0 for row in result["train"] + result["predict"])
    endtoend = (tmp_path / "out" / "endtoend.log").read_text()
    assert "augment in the workers" in endtoend and "augment on cpu per batch" in endtoend
    assert "threads read the cache" in endtoend  # the batch path from the cache: the ring of reader threads
