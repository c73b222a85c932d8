"""Data-parallel training: 2 processes on CPU under torchrun (gloo) match one process."""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from advlab.train import get_recipe, train


def test_torchrun_two_processes_on_cpu_matches_one_process(tmp_path, mnist_train_small):
    from safetensors.torch import load_file

    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "advlab.train", "--recipe", "mnist-standard", "--epochs", "1",
           "--n-train", "256", "--test-images", "0", "--out", str(out), "--threads", "1",
           "--device", "cpu", "--no-progress"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = (out / "train.log").read_text()
    assert "2 process(es)" in log and "done" in log

    x, y = mnist_train_small
    recipe = get_recipe("mnist-standard").with_(n_train=256, monitor=0)
    single = train(recipe, epochs=1, data=(x[:256], y[:256]), device="cpu", progress=False,
                   log=lambda _: None)
    ddp = load_file(str(out / "model.safetensors"))
    for k, v in single.model.state_dict().items():
        torch.testing.assert_close(ddp[k], v.contiguous(), atol=1e-5, rtol=1e-4)
