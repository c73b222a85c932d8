"""What searching in bfloat16 buys an evaluation, and what it costs in strength.

    ADVLAB_DATA=../shared/data python benchmarks/search_precision.py \\
        --model mnist-eat-apgd-l1ft --n 100 --threats linf,l2,l1 --strength lite --threads 1 \\
        --out benchmarks/results/search_precision_n100.json \\
        --table benchmarks/results/search_precision_n100.md

For each threat, runs the stack of ``advlab.presets.attacks(strength)`` through
``evaluate_union`` twice on the same first n MNIST test images of a zoo model: with the attacks
in the model's own float32, then searching in bfloat16 (``search_dtype="bfloat16"``: every
layer but the last under ``torch.autocast``; every example checked in float32). It reports the
CPU seconds of each and their ratio (one process, so the ratio holds on a loaded machine),
each side's robust accuracy, and the images only one side breaks: a lower-precision search that
left standing images the float32 one breaks would overclaim, so these are the numbers to read
before using ``--search-dtype bfloat16``. The speed-up needs native bf16 (GPUs, and CPUs with
AVX512-BF16 or AMX); elsewhere bfloat16 can be slower than float32.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch

import advlab.zoo as zoo
from advlab.data import mnist_tensors
from advlab.device import fast_on_cpu
from advlab.evaluate import evaluate_union
from advlab.evaluation.strengths import NAMES as STRENGTHS
from advlab.presets import attacks


def measure(model, x, y, threat: str, strength: str, search_dtype: str) -> dict:
    """One side: robust (N,) bool, CPU seconds, and CPU seconds per attack of the stack."""
    stack = attacks("mnist", strength, include=[threat])
    t0 = time.process_time()
    res = evaluate_union(model, (x, y), stack, progress=False, keep_worst=False,
                         search_dtype=search_dtype)
    return {"robust": res.robust[threat] & res.clean, "cpu_seconds": time.process_time() - t0}


def row(model, x, y, threat: str, strength: str) -> dict:
    """float32 then bfloat16 on the same images: accuracies (%), images only one side breaks."""
    f32 = measure(model, x, y, threat, strength, "float32")
    b16 = measure(model, x, y, threat, strength, "bfloat16")
    a, b = f32["robust"], b16["robust"]
    return {"threat": threat, "n": int(y.numel()),
            "float32": round(100 * a.float().mean().item(), 1),
            "bfloat16": round(100 * b.float().mean().item(), 1),
            "only_float32_breaks": (b & ~a).nonzero().flatten().tolist(),
            "only_bfloat16_breaks": (a & ~b).nonzero().flatten().tolist(),
            "cpu_seconds_float32": round(f32["cpu_seconds"], 1),
            "cpu_seconds_bfloat16": round(b16["cpu_seconds"], 1),
            "ratio": round(b16["cpu_seconds"] / f32["cpu_seconds"], 2)}


def markdown(rows: list[dict], command: str, model: str, strength: str) -> str:
    out = [f"Produced by `{command}`; first {rows[0]['n']} MNIST test images of `{model}`, "
           f"the {strength!r} attacks of `advlab.presets`, one process.", "",
           "| threat | robust, float32 search (%) | robust, bfloat16 search (%) | only float32 "
           "breaks | only bfloat16 breaks | CPU s float32 | CPU s bfloat16 | ratio |",
           "|---" * 8 + "|"]
    for r in rows:
        out.append(f"| {r['threat']} | {r['float32']} | {r['bfloat16']} | "
                   f"{len(r['only_float32_breaks'])} | {len(r['only_bfloat16_breaks'])} | "
                   f"{r['cpu_seconds_float32']:.0f} | {r['cpu_seconds_bfloat16']:.0f} | "
                   f"{r['ratio']:.2f} |")
    return "\n".join(out) + "\n"


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="mnist-eat-apgd-l1ft", help="a zoo model")
    p.add_argument("--n", type=int, default=100, help="the first N MNIST test images")
    p.add_argument("--threats", default="linf,l2,l1", help="comma-separated: linf, l2, l1, rt")
    p.add_argument("--strength", default="lite", choices=STRENGTHS)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", type=Path, default=Path("runs/search_precision.json"))
    p.add_argument("--table", type=Path, default=None, metavar="FILE.md")
    args = p.parse_args(argv)
    if args.model not in zoo.available():
        p.error(f"unknown zoo model {args.model!r}; shipped: {', '.join(zoo.available())}")
    args.threat_names = [t.strip() for t in args.threats.split(",") if t.strip()]
    bad = [t for t in args.threat_names if t not in ("linf", "l2", "l1", "rt")]
    if bad:
        p.error(f"unknown threats {bad}: choose from linf, l2, l1, rt")
    if not 1 <= args.n <= 10000:
        p.error(f"--n {args.n}: choose 1..10000 test images")
    return args


def main(argv=None) -> int:
    args = parse(argv if argv is not None else sys.argv[1:])
    if args.threads:
        torch.set_num_threads(args.threads)
    x, y = mnist_tensors(args.n, train=False)
    model = fast_on_cpu(zoo.load(args.model))
    rows = []
    for threat in args.threat_names:
        rows.append(row(model, x, y, threat, args.strength))
        r = rows[-1]
        print(f"{threat}: float32 {r['float32']}% in {r['cpu_seconds_float32']} s, bfloat16 "
              f"{r['bfloat16']}% in {r['cpu_seconds_bfloat16']} s (ratio {r['ratio']}); only "
              f"float32 breaks {r['only_float32_breaks']}, only bfloat16 breaks "
              f"{r['only_bfloat16_breaks']}", flush=True)
    command = "python benchmarks/search_precision.py " + shlex.join(
        argv if argv is not None else sys.argv[1:])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"command": command, "model": args.model,
                                    "strength": args.strength, "torch": torch.__version__,
                                    "rows": rows}, indent=1))
    print(f"wrote {args.out}")
    if args.table is not None:
        args.table.write_text(markdown(rows, command, args.model, args.strength))
        print(f"wrote {args.table}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
