"""Maintainers' tool: re-measure the zoo's stored results with today's trusted stack, in slices
that survive an interrupted session.

    python -m advlab.zoo.remeasure --status                        # what is stale, what is done
    python -m advlab.zoo.remeasure --worker 0/2 --threads 1 &      # one worker per core
    python -m advlab.zoo.remeasure --worker 1/2 --threads 1 &

A stored result is stale when it has no per-image outcomes or was measured with other attacks
than ``advlab.presets`` now runs at its strength. Each stale model's first N test images are cut
into S slices; worker K of W measures the slices whose number is K modulo W, keeps each in
``--work`` (default ``advlab/zoo/results/slices``, tracked by git: commit the slices as they land
and a new checkout continues from them) as soon as it is done, and skips the slices already
there, so a stopped run continues where it was. The worker that finds all S slices of a model
merges them into ``advlab/zoo/results/NAME.json`` (seconds: the slices' sum, one core each),
deletes the slices and rewrites the model card. The merged result keeps, as "previous", the
row it replaced and the attacks that measured it, with that row's own "previous" inside it (a
history, newest first: ``python -m advlab.zoo.experiments`` tables what each change of the
stack did); ``--previous-from REV`` records it for results merged before that, or by a
worker that dropped the history, from the stored result at git revision REV.

Only the threats whose attacks changed are measured again: a slice keeps the outcomes of every
threat that an earlier slice file, or the stored result, measured with today's attacks for that
threat (the card says which were reused; their time is not counted again). Where a threat's
stack today only appends attacks to the earlier one (``extend``), only the appended attacks run,
on the images the earlier ones left standing, and the earlier per-attack counts are kept.

After a merge, the tables that quote stored results: ``advlab zoo table --stored --out
advlab/zoo/TABLE.md --splice README.md``, ``python -m advlab.zoo.experiments``, and the
``benchmarks/vs_autoattack.py`` command its table names (with ``--resume`` it measures nothing
new and rewrites the column that compares AutoAttack with the stored rows).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["main", "stale", "slice_path", "previous_row", "previous_from"]


def stale(name: str, strength: str = "strong", results: Path | None = None) -> bool:
    """Whether ``name``'s stored result (in ``results``, default the zoo's) must be measured
    again with today's stack."""
    from .measure import RESULTS, stack_description

    path = (results or RESULTS) / f"{name}.json"
    if not path.is_file():
        return True
    res = json.loads(path.read_text())
    return "outcomes" not in res or res.get("attacks") != stack_description(strength)


def slice_path(work: Path, name: str, k: int, s: int) -> Path:
    return work / f"{name}.shard-{k}-of-{s}.json"


def _done(path: Path, attacks: str, n: int) -> bool:
    if not path.is_file():
        return False
    res = json.loads(path.read_text())
    return res.get("attacks") == attacks and res.get("n") == n and "outcomes" in res


def _previous(work: Path, name: str, k: int, s: int, n: int, results: Path | None):
    """What an earlier measurement knows of slice k of s: the slice file, else the stored
    result cut to the slice's images (without its per-attack counts); None if neither has
    per-image outcomes for the same n."""
    from . import outcomes
    from .measure import RESULTS

    for path, whole in ((slice_path(work, name, k, s), False),
                        ((results or RESULTS) / f"{name}.json", True)):
        if path.is_file():
            res = json.loads(path.read_text())
            if res.get("n") == n and "outcomes" in res:
                if not whole:
                    return res
                lo, hi = k * n // s, (k + 1) * n // s
                cut = {t: v[lo:hi] for t, v in outcomes.unpack(res["outcomes"]).items()}
                return {"attacks": res.get("attacks", ""), "outcomes": outcomes.pack(cut),
                        "strength": res.get("strength")}
    return None


def _extended(today: str, had: str | None) -> int:
    """How many attacks of ``had`` (a threat's earlier stack, as quoted) begin ``today``'s
    stack when today's only appends attacks to it (0: not so)."""
    if had is None or not today.startswith(had + ", "):
        return 0
    return len(had.split(", "))


def _measure_slice(name, n, strength, k, s, prev):
    """Slice k of s measured with today's stack, reusing ``prev``'s outcomes of the threats it
    measured with today's attacks, and joined with its other outcomes (``with_earlier``); for
    a threat whose stack today only appends attacks to prev's, only those run, on the images
    prev's attacks left standing (``extend``)."""
    from .measure import command, measure, stack_description, threat_attacks

    if prev is not None and prev.get("strength", strength) != strength:
        prev = None  # another strength's outcomes say nothing about this one
    today = threat_attacks(stack_description(strength))
    had = threat_attacks(prev["attacks"]) if prev else {}
    keep = [t for t, a in today.items() if had.get(t) == a]
    longer = {t: _extended(a, had.get(t)) for t, a in today.items() if t not in keep}
    longer = {t: m for t, m in longer.items() if m}
    rest = [t for t in today if t not in keep and t not in longer]
    if prev is None:
        return measure(name, n, strength, (k, s))
    if rest:
        res = measure(name, n, strength, (k, s), include=rest)
        joined = with_earlier(res, prev, keep + list(longer), strength)
        if joined is None:  # not the same model as before: nothing of prev applies
            return measure(name, n, strength, (k, s))
    else:  # nothing to measure from scratch: prev's outcomes are the start
        lo, hi = k * n // s, (k + 1) * n // s
        base = {"n": n, "strength": strength, "seconds": 0.0, "cpu_seconds": 0.0,
                "command": command(name, n, strength), "outcomes": prev["outcomes"],
                **({"slice": [lo, hi]} if s > 1 else {})}
        joined = with_earlier(base, prev, keep + list(longer), strength)
    if not longer:
        return joined
    joined["reused"] = [t for t in joined.get("reused", []) if t not in longer]
    if not joined["reused"]:
        del joined["reused"]
    return extend(joined, name, n, strength, (k, s), longer)


def extend(res: dict, name: str, n: int, strength: str, shard: tuple[int, int],
           longer: dict[str, int]) -> dict:
    """``res`` with, for each threat t of ``longer``, the attacks of today's stack after its
    first ``longer[t]`` run on the images ``res`` has standing under t; what they break
    counts as broken, their first breaks join ``res["breaks"]``, their time its seconds, and
    "extended" lists the threats (the card: the earlier attacks' outcomes kept, not rerun)."""
    import copy
    import time

    import advlab.zoo as zoo

    from ..data import mnist_tensors
    from ..device import fast_on_cpu, pick_device
    from ..evaluation.presets import attacks
    from ..evaluation.union import evaluate_union
    from . import outcomes
    from .measure import describe_attack
    from .table import COLUMNS

    k, s = shard
    lo, hi = k * n // s, (k + 1) * n // s
    dev = pick_device(None)  # the GPU when present, as ``measure``
    x, y = mnist_tensors(n, train=False)
    x, y = x[lo:hi].to(dev), y[lo:hi].to(dev)
    model = fast_on_cpu(zoo.load(name, device=dev))  # channels_last on a CPU
    survive = {t: v.to(dev) for t, v in outcomes.unpack(res["outcomes"]).items()}
    breaks = copy.deepcopy(res.get("breaks", {}))
    t0, c0 = time.time(), time.process_time()
    for t, m in longer.items():
        tail = attacks("mnist", strength, include=[t])[t][m:]
        idx = survive[t].nonzero().flatten()
        firsts = [0] * len(tail)
        if idx.numel():
            got = evaluate_union(model, (x[idx], y[idx]), {t: tail}, progress=False)
            survive[t][idx] = got.robust[t]
            firsts = (got.breaks(t) + firsts)[:len(tail)]
        counts = breaks.setdefault(t, {})
        counts.update({describe_attack(a): c for a, c in zip(tail, firsts, strict=True)})
    survive = {t: v.cpu() for t, v in survive.items()}
    acc = outcomes.accuracies(survive)
    return {**res, **{c: acc[c] for c in COLUMNS}, "outcomes": outcomes.pack(survive),
            "breaks": breaks, "extended": sorted(longer),
            "seconds": res.get("seconds", 0.0) + time.time() - t0,
            "cpu_seconds": res.get("cpu_seconds", 0.0) + time.process_time() - c0}


def with_earlier(res: dict, prev: dict, keep: list[str], strength: str) -> dict | None:
    """``res`` (today's attacks on every threat not in ``keep``) joined with the earlier
    measurement ``prev`` of the same images: the kept threats' outcomes as they were; for a
    threat measured again, an image counts as broken when today's attacks or the earlier ones
    broke it (an adversarial example found is a proof, and a random start that misses it today
    must not raise the number); "earlier_breaks" counts, per threat, the images only the earlier
    attacks broke. None when the clean outcomes differ (another model)."""
    import torch

    from . import outcomes
    from .measure import stack_description, threat_attacks
    from .table import COLUMNS

    old, new = outcomes.unpack(prev["outcomes"]), outcomes.unpack(res["outcomes"])
    if not torch.equal(old["clean"], new["clean"]):
        return None
    survive, earlier = {"clean": new["clean"]}, {}
    for t in threat_attacks(stack_description(strength)):
        if t in keep:
            survive[t] = old[t]
            continue
        survive[t] = new[t] & old[t] if t in old else new[t]
        if t in old:
            earlier[t] = int((new[t] & ~old[t]).sum())
    acc = outcomes.accuracies(survive)
    out = {**res, **{c: acc[c] for c in COLUMNS}, "outcomes": outcomes.pack(survive),
           "attacks": stack_description(strength)}
    out["breaks"] = {**{t: prev["breaks"][t] for t in keep if t in prev.get("breaks", {})},
                     **res.get("breaks", {})}
    if keep:
        out["reused"] = keep
    if earlier:
        out["earlier_breaks"] = earlier
    return out


def _kept_breaks(res: dict, before: dict) -> bool:
    """Put back, for the threats whose earlier outcomes every slice kept (reused, or extended
    by appended attacks), the earlier measurement's per-attack counts, which slices cut from a
    whole stored result do not carry; in place. Whether anything changed."""
    from .measure import threat_attacks

    today = threat_attacks(res["attacks"])
    changed = False
    for t in res.get("reused", []) + res.get("extended", []):
        earlier = before.get("breaks", {}).get(t)
        if not earlier or t not in today:
            continue
        stack = today[t].split(", ")
        counts = {a: c for a, c in {**earlier, **res.get("breaks", {}).get(t, {})}.items()
                  if a in stack}
        if counts != res.get("breaks", {}).get(t):
            res.setdefault("breaks", {})[t] = dict(sorted(counts.items(),
                                                          key=lambda kv: stack.index(kv[0])))
            changed = True
    return changed


def previous_row(before: dict, now: dict) -> dict | None:
    """The accuracies of ``before`` (the stored result ``now`` replaces) and the attacks that
    measured them, when ``now`` was measured with other attacks, with ``before``'s own
    "previous" row nested in it (the history of every change of the stack, newest first);
    else ``before``'s own "previous" row (or None), so the record survives a re-merge with the
    same stack."""
    from .table import COLUMNS

    if not before.get("attacks") or before["attacks"] == now.get("attacks"):
        return before.get("previous")
    row = {"attacks": before["attacks"], "n": before.get("n"),
           **{c: before[c] for c in COLUMNS if c in before}}
    if before.get("previous"):
        row["previous"] = before["previous"]
    return row


def previous_from(rev: str, names: list[str], results: Path | None = None) -> list[str]:
    """Record, in each stored result of ``names``, the row the stored result at git revision
    ``rev`` held, when its attacks differ (for results merged before "previous" was recorded);
    the names it changed."""
    import subprocess

    from .measure import RESULTS

    folder = results or RESULTS
    root = _git_root(folder)
    ok = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                        cwd=folder, capture_output=True, text=True)
    if ok.returncode:
        raise SystemExit(f"--previous-from {rev}: not a commit of {root}; give a commit that "
                         "holds the earlier stored results (git log -- advlab/zoo/results)")
    done = []
    for name in names:
        path = folder / f"{name}.json"
        rel = path.resolve().relative_to(root)
        got = subprocess.run(["git", "show", f"{rev}:{rel.as_posix()}"], cwd=folder,
                             capture_output=True, text=True)
        if got.returncode or not path.is_file():
            continue
        now = json.loads(path.read_text())
        row = previous_row(json.loads(got.stdout), now)
        if row and row != now.get("previous"):
            now["previous"] = row
            path.write_text(json.dumps(now, indent=1) + "\n")
            done.append(name)
    return done


def _git_root(folder: Path) -> Path:
    import subprocess

    top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=folder,
                         capture_output=True, text=True)
    if top.returncode:
        raise SystemExit(f"--previous-from needs a git checkout; {folder} is not in one")
    return Path(top.stdout.strip()).resolve()


def _merge_if_complete(name: str, work: Path, s: int, attacks: str, n: int,
                       results: Path | None) -> bool:
    from .measure import RESULTS, merge
    from .model_card import write_card

    if not all(_done(slice_path(work, name, k, s), attacks, n) for k in range(s)):
        return False
    stored = (results or RESULTS) / f"{name}.json"
    before = json.loads(stored.read_text()) if stored.is_file() else {}
    try:
        res = merge(name, s, folder=work, seconds=sum, out=results)
    except FileNotFoundError:  # another worker merged them a moment ago
        return True
    changed = _kept_breaks(res, before)
    row = previous_row(before, res)
    if row:  # what the row said before today's stack (docs/experiments: what the stack changed)
        res["previous"], changed = row, True
    if changed:
        stored.write_text(json.dumps(res, indent=1) + "\n")
    print(f"{name}: merged {s} slices: union l_p {100 * res['union_lp']:.1f}%, "
          f"{res['seconds'] / 60:.0f} min", flush=True)
    if results is None:
        write_card(name)
    return True


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m advlab.zoo.remeasure", description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("models", nargs="*", help="zoo models (default: every shipped one)")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--strength", default="strong")
    p.add_argument("--slices", type=int, default=8, help="slices per model (8: 125 images)")
    p.add_argument("--worker", default="0/1", help="K/W: this is worker K of W")
    p.add_argument("--work", type=Path, default=None,
                   help="where the slices are kept (default advlab/zoo/results/slices)")
    p.add_argument("--results", type=Path, default=None,
                   help="keep the merged numbers here instead of advlab/zoo/results (no card)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--previous-from", metavar="REV", default=None,
                   help="record in each stored result the row it held at git revision REV "
                   "(when measured with other attacks); measure nothing")
    p.add_argument("--status", action="store_true", help="say what is stale and done; measure "
                   "nothing")
    args = p.parse_args(argv)
    from . import available
    from .measure import stack_description

    unknown = [m for m in args.models if m not in available()]
    if unknown:
        p.error(f"unknown zoo models {unknown}; shipped: {', '.join(available())}")
    try:
        k, w = (int(v) for v in args.worker.split("/"))
        assert 0 <= k < w
    except (ValueError, AssertionError):
        p.error(f"--worker {args.worker!r}: expected K/W with 0 <= K < W, e.g. 0/2")
    if args.n % args.slices:
        p.error(f"--slices {args.slices} must divide --n {args.n}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from .measure import RESULTS

    attacks, s = stack_description(args.strength), args.slices
    work = args.work or RESULTS / "slices"
    if args.previous_from:
        done = previous_from(args.previous_from, args.models or available(), args.results)
        print(f"recorded the rows of {args.previous_from} in: {', '.join(done) or 'none'}")
        return 0
    todo = [m for m in (args.models or available()) if stale(m, args.strength, args.results)]
    if args.status:
        for m in args.models or available():
            done = sum(_done(slice_path(work, m, i, s), attacks, args.n) for i in range(s))
            state = f"{done} of {s} slices in {work}" if m in todo else "up to date"
            print(f"{m:<20} {state}")
        return 0
    work.mkdir(parents=True, exist_ok=True)
    for m in todo:
        for i in range(k, s, w):
            path = slice_path(work, m, i, s)
            if not _done(path, attacks, args.n):
                prev = _previous(work, m, i, s, args.n, args.results)
                res = _measure_slice(m, args.n, args.strength, i, s, prev)
                path.write_text(json.dumps(res, indent=1) + "\n")
                print(f"{m}: slice {i + 1} of {s} in {res['seconds'] / 60:.1f} min", flush=True)
        _merge_if_complete(m, work, s, attacks, args.n, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
