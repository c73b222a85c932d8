"""advlab's trusted evaluation against AutoAttack's standard suite, image by image.

    pip install torchattacks foolbox numba   # only for this benchmark; not advlab's
    ADVLAB_DATA=../shared/data python benchmarks/vs_autoattack.py \\
        --models mnist-msd,mnist-linf --n 100 --threats linf,l2

For each zoo model and each l_p threat at the paper's budget (l_inf 0.3, l_2 2), on the first n
MNIST test images, runs ``advlab.presets.trusted_attacks`` (through ``evaluate_union``) and
AutoAttack's standard suite (torchattacks: APGD-CE, APGD-T over 9 targets, FAB-T over 9
targets, Square with 5000 queries; each attack on the images the ones before it left standing),
then prints the accuracy under each, under both, the images only one of them breaks, and the
CPU time of each and their ratio, and the ratio of wall times (one process, AutoAttack first;
with ``--threads 1`` the CPU seconds measure the work even on a shared, loaded machine).
``--suite original`` (the default) uses AutoAttack's own parameters (100 steps for APGD, APGD-T
and FAB-T); ``--suite torchattacks`` the ``torchattacks.AutoAttack`` class as it ships (10 steps
each); ``--suite croce-hein`` Croce & Hein's own package (``pip install pyautoattack``, the
PyPI packaging of github.com/fra31/auto-attack), standard version, whose l_1 version (l1-APGD,
targeted l1-APGD, FAB-T and Square; Croce & Hein 2021) then replaces the independent l_1
attacks below. advlab's own forward pass decides for both; an AutoAttack
output outside the threat model or the box does not count as broken (reported as "invalid").

torchattacks has no l_1 AutoAttack (its APGD supports Linf and L2 only). For l_1 the independent
attacks are torchattacks' EAD (elastic-net, Chen et al. 2018: a minimum-l_1 attack with a binary
search over its constant; ``--ead-steps`` iterations per search step), then, on the images EAD
left standing, foolbox's FMN-L1 (fast minimum-norm, Pintor et al. 2021; ``--fmn-steps``), then,
on the images both left standing, foolbox's Pointwise attack (decision-based: from salt-and-pepper
noise it resets pixels to the clean image while the label stays wrong) and Brendel-Bethge-L1
(Brendel et al. 2019; ``--bb-steps``) from Pointwise's points, which walks the decision boundary
towards the clean image: neither needs a gradient at x, so a masked one does not stop them
(``pip install foolbox numba``, benchmark only). An image counts as broken only when the output
is misclassified and within l_1 10 and the box.

``--checkpoint FILE[:ARCH]`` (repeatable) compares weights that are not in the zoo, e.g. a
training run's ``best.safetensors`` before it ships.

Every row keeps which images survive on each side (one bit per image), and a model measured
under all three threats gets a union row: the accuracy against the union of l_inf, l_2 and l_1
under advlab's stack, under AutoAttack (the independent attacks for l_1), and under both. The
``--out`` file is rewritten after every row; ``--resume`` keeps its rows (same n and suite, and
advlab's attacks as they are today: a row measured with another stack is measured again, on
advlab's side only, since AutoAttack's does not depend on it) and measures the rest,
so a run over the whole zoo can span sessions. ``--table FILE.md`` writes the rows as a
markdown table with the one command that measures all of them (the kept rows' models too);
``--splice docs/evaluation.md`` puts that table between its ``<!-- vs-autoattack-table -->``
markers.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

import advlab.zoo as zoo
from advlab.data import mnist_tensors
from advlab.device import fast_on_cpu
from advlab.evaluate import evaluate_union
from advlab.generated_blocks import find, splice
from advlab.presets import threats, trusted_attacks
from advlab.zoo.outcomes import pack_bits, unpack_bits

NORMS = {"linf": "Linf", "l2": "L2", "l1": "L1"}


@dataclass(frozen=True)
class L1Side:
    """The independent l_1 attacks and their settings (a row says which measured it)."""

    ead_steps: int = 200  # EAD iterations per binary-search step (9 searches)
    fmn_steps: int = 100  # FMN-L1 steps, on the images EAD left standing
    bb_steps: int = 200  # Brendel-Bethge-L1 steps from Pointwise, on those FMN left (0: none)

    @property
    def label(self) -> str:
        """How a row quotes its independent l_1 attacks (another: the row is measured again)."""
        text = f"EAD {self.ead_steps} iterations x 9 searches, then FMN-L1 {self.fmn_steps} steps"
        return text + (f", then Brendel-Bethge-L1 {self.bb_steps} steps from Pointwise"
                       if self.bb_steps else "")


class IndependentL1:
    """EAD, then foolbox's FMN-L1, then (``bb_steps`` > 0) foolbox's Pointwise attack and
    Brendel-Bethge-L1 from its points, each on the images the ones before left standing:
    (x, y) -> x_adv. Pointwise is decision-based and Brendel-Bethge walks the decision boundary
    from an adversarial start, so a masked gradient at x does not stop them."""

    def __init__(self, model, eps: float, ead, side: L1Side):
        self.model, self.eps, self.ead, self.side = model, eps, ead, side

    def _fmodel(self):
        import foolbox as fb

        return fb.PyTorchModel(self.model, bounds=(0, 1))

    def fmn(self, x, y):
        """foolbox's FMN-L1 alone, its outputs clipped to the l_1 ball of radius eps."""
        import foolbox as fb

        _, x_adv, _ = fb.attacks.L1FMNAttack(steps=self.side.fmn_steps)(
            self._fmodel(), x, y, epsilons=self.eps)
        return x_adv.detach()

    def boundary(self, x, y):
        """Pointwise (from salt-and-pepper noise), then Brendel-Bethge-L1 from its adversarial
        points: the closest misclassified point each finds where it lies within the l_1 budget,
        else x (as FMN-L1's outputs are clipped to it)."""
        import foolbox as fb

        fmodel = self._fmodel()
        # the salt-and-pepper start first: Pointwise refuses a batch where it finds none for
        # some image (foolbox asserts), so it runs only from the starts that are adversarial
        _, noisy, _ = fb.attacks.SaltAndPepperNoiseAttack(steps=1000)(fmodel, x, y,
                                                                       epsilons=None)
        with torch.no_grad():
            found = (self.model(noisy.detach()).argmax(1) != y).nonzero().flatten()
        start = x.clone()
        if found.numel():
            _, pw, _ = fb.attacks.PointwiseAttack()(fmodel, x[found], y[found], epsilons=None,
                                                    starting_points=noisy[found])
            start[found] = pw.detach()
        with torch.no_grad():
            adv = self.model(start).argmax(1) != y
        out = torch.where(adv[:, None, None, None], start, x)
        idx = adv.nonzero().flatten()
        if idx.numel():  # Brendel-Bethge needs adversarial starting points
            _, bb, _ = fb.attacks.L1BrendelBethgeAttack(steps=self.side.bb_steps)(
                fmodel, x[idx], y[idx], epsilons=None, starting_points=start[idx])
            out[idx] = bb.detach()
        inside = threats("mnist")["l1"].contains(x, out)  # beyond the budget: not an attack output
        return torch.where(inside[:, None, None, None], out, x)

    def _standing(self, x, x_adv, y):
        with torch.no_grad():
            return ((self.model(x_adv).argmax(1) == y)
                    | ~threats("mnist")["l1"].contains(x, x_adv)).nonzero().flatten()

    def __call__(self, x, y):
        x_adv = self.ead(x, y).detach()
        stages = [self.fmn] + ([self.boundary] if self.side.bb_steps else [])
        for stage in stages:
            idx = self._standing(x, x_adv, y)
            if idx.numel():
                x_adv[idx] = stage(x[idx], y[idx])
        return x_adv


def l1_label(suite: str, l1: L1Side) -> str:
    """How a row quotes AutoAttack's l_1 side (another: the row is measured again)."""
    return CROCE_HEIN_L1 if suite == "croce-hein" else l1.label


CROCE_HEIN_L1 = ("Croce & Hein's AutoAttack, l_1 version (pyautoattack: l1-APGD-CE x 5 restarts, "
                 "l1-APGD-T x 5 targets, FAB-T, Square)")


def croce_hein(model, norm: str, eps: float, batch: int = 500):
    """Croce & Hein's own AutoAttack (``pip install pyautoattack``), standard version, as
    (x, y) -> x_adv; for l_1 its l_1 version (Croce & Hein 2021)."""
    import logging

    from pyautoattack import AutoAttack

    logging.getLogger("auto-attack").setLevel(logging.WARNING)
    attack = AutoAttack(model, norm=norm, eps=float(eps), version="standard", seed=0,
                        device="cpu")
    attack.verbose = False
    return lambda x, y: attack.run_standard_evaluation(x, y, batch_size=batch)[0]


def autoattack(model, name: str, eps: float, suite: str, l1: L1Side = L1Side()):
    """AutoAttack's standard suite on ``model`` as (x, y) -> x_adv: torchattacks' port
    ("original": AutoAttack's parameters; "torchattacks": its class as it ships), whose l_1 side
    is the independent attacks of ``l1``, or Croce & Hein's own package ("croce-hein"), l_1
    included."""
    import torchattacks as ta

    norm = NORMS[name]
    if suite == "croce-hein":
        return croce_hein(model, norm, eps)
    if norm == "L1":  # no l_1 AutoAttack in torchattacks: minimum-norm l_1 attacks
        ead = ta.EADL1(model, kappa=0, lr=0.01, binary_search_steps=9,
                       max_iterations=l1.ead_steps, initial_const=0.01, beta=0.01)
        return IndependentL1(model, eps, ead, l1)
    if suite == "torchattacks":
        return ta.AutoAttack(model, norm=norm, eps=eps, version="standard", n_classes=10, seed=0)
    return ta.MultiAttack([
        ta.APGD(model, norm=norm, eps=eps, steps=100, n_restarts=1, loss="ce", seed=0),
        ta.APGDT(model, norm=norm, eps=eps, steps=100, n_restarts=1, n_classes=10, seed=0),
        ta.FAB(model, norm=norm, eps=eps, steps=100, n_restarts=1, multi_targeted=True,
               n_classes=10, seed=0),
        ta.Square(model, norm=norm, eps=eps, n_queries=5000, n_restarts=1, seed=0),
    ])


def robust_under_autoattack(model, x, y, name, suite, batch, l1: L1Side = L1Side()):
    """(N,) bool still correct, number of invalid outputs, seconds."""
    threat = threats("mnist")[name]
    attack = autoattack(model, name, threat.eps, suite, l1)
    robust, invalid = [], 0
    t0 = _clock()
    for i in range(0, x.shape[0], batch):
        xb, yb = x[i:i + batch], y[i:i + batch]
        x_adv = attack(xb, yb).detach()
        with torch.no_grad():
            correct = model(x_adv).argmax(1) == yb
        valid = threat.contains(xb, x_adv)
        invalid += int((~valid & ~correct).sum())
        robust.append(correct | ~valid)
    return torch.cat(robust), invalid, _since(t0)


def advlab_stack(name: str, queries=None, search_dtype: str = "float32") -> str:
    """How the row quotes advlab's attacks for threat ``name`` (a changed stack: a stale row),
    with the precision they search in when it is not float32."""
    from advlab.zoo.measure import describe_attack

    stack = trusted_attacks("mnist", include=[name], queries=queries)[name]
    said = ", ".join(describe_attack(a) for a in stack)
    return said if search_dtype == "float32" else f"{said}; searching in {search_dtype}"


def robust_under_advlab(model, x, y, name, queries, search_dtype: str = "float32"):
    """(N,) bool correct under advlab's trusted attacks for one threat (searching in
    ``search_dtype``, every break checked in float32), (wall, CPU) seconds, and {attack: wall
    seconds} for each attack of the stack (where the time goes)."""
    from advlab.zoo.measure import describe_attack

    stack = trusted_attacks("mnist", include=[name], queries=queries)
    t0 = _clock()
    res = evaluate_union(model, (x, y), stack, progress=False, keep_worst=False,
                         search_dtype=search_dtype)
    took = _since(t0)
    per_attack = {describe_attack(a): s
                  for a, s in zip(stack[name], res.attack_seconds[name], strict=True)}
    return res.robust[name] & res.clean, took, per_attack


def _clock():
    return time.perf_counter(), time.process_time()


def _since(t0):
    """(wall seconds, CPU seconds of this process) since ``_clock()``."""
    return time.perf_counter() - t0[0], time.process_time() - t0[1]


def previous_rows(path: Path, n: int, suite: str, queries=None, l1: L1Side = L1Side(),
                  search_dtype: str = "float32") -> list[dict]:
    """The rows of an earlier run's ``--out`` file, if it measured the same n and suite; a row
    measured with other advlab attacks than today's (or not saying which) is left out, so that
    it is measured again (``stale_rows`` has it until then)."""
    return _split_rows(path, n, suite, queries, l1, search_dtype)[0]


def stale_rows(path: Path, n: int, suite: str, queries=None, l1: L1Side = L1Side(),
               search_dtype: str = "float32") -> list[dict]:
    """The earlier run's rows that ``previous_rows`` leaves out: the file keeps them (and the
    table shows them, marked) until a run measures them again, so a stopped run loses none."""
    return _split_rows(path, n, suite, queries, l1, search_dtype)[1]


def _split_rows(path: Path, n: int, suite: str, queries, l1: L1Side, search_dtype: str):
    if not path.is_file():
        return [], []
    old = json.loads(path.read_text())
    if old.get("suite") != suite or old.get("n", n) != n or any(r["n"] != n for r in old["rows"]):
        raise SystemExit(f"{path} holds a run with another n or suite; pass another --out")
    every = old["rows"] + old.get("stale_rows", [])
    return ([r for r in every if not _stale(r, queries, l1, suite, search_dtype)],
            [r for r in every if _stale(r, queries, l1, suite, search_dtype)])


def _stale(row: dict, queries=None, l1: L1Side | None = None, suite: str = "original",
           search_dtype: str = "float32") -> bool:
    """Whether ``row``'s advlab side was measured with other attacks than today's stack (or,
    with ``l1``, its l_1 AutoAttack side with other attacks)."""
    if row.get("advlab_attacks") != advlab_stack(row["threat"], queries, search_dtype):
        return True
    return (l1 is not None and row["threat"] == "l1"
            and row.get("independent_l1") != l1_label(suite, l1))


def _searched_in(row: dict) -> str:
    """The precision a row's advlab side searched in, as ``advlab_stack`` quotes it."""
    said = row.get("advlab_attacks") or ""
    return said.rsplit("; searching in ", 1)[1] if "; searching in " in said else "float32"


def _older(row: dict) -> bool:
    """Whether the row's advlab side is another stack than today's in its own precision."""
    return _stale(row, search_dtype=_searched_in(row))


def markdown(rows: list[dict], unions: list[dict]) -> str:
    """The rows and union rows as a markdown table (accuracies in %, CPU seconds), with the
    images AutoAttack breaks that the zoo's stored row (``against_stored``) leaves standing."""
    out = ["| model | threat | advlab | AutoAttack | both | only AutoAttack breaks | only advlab "
           "breaks | AutoAttack breaks, stored zoo row leaves | advlab CPU s | AutoAttack CPU s "
           "| ratio |", "|---" * 11 + "|"]
    older = {(r["model"], r["threat"]) for r in rows if _older(r)}
    for r in rows:
        t, t_aa = r["cpu_seconds_advlab"], r["cpu_seconds_autoattack"]
        mark = "*" if (r["model"], r["threat"]) in older else ""
        out.append(f"| {r['model']} | {r['threat']}{mark} | {100 * r['advlab']:.1f} | "
                   f"{100 * r['autoattack']:.1f} | {100 * r['both']:.1f} | "
                   f"{len(r['only_autoattack_breaks'])} of {r['n']} | "
                   f"{len(r['only_advlab_breaks'])} of {r['n']} | "
                   f"{against_stored(r['model'], r['threat'], r['n'], rows)} | {t:.0f} | "
                   f"{t_aa:.0f} | {t / t_aa:.2f} |")
    for u in unions:
        mark = "*" if any(m == u["model"] for m, _ in older) else ""
        out.append(f"| {u['model']} | union{mark} | {100 * u['advlab']:.1f} | "
                   f"{100 * u['autoattack']:.1f} | {100 * u['both']:.1f} | "
                   f"{len(u['only_autoattack_breaks'])} of {u['n']} | | "
                   f"{against_stored(u['model'], 'union_lp', u['n'], rows)} | | | |")
    shares = time_shares(rows)
    if shares:
        out += ["", "Where advlab's time goes (share of its wall seconds, over the rows above "
                "measured with per-attack times): " + "; ".join(
                    f"{t}: " + ", ".join(f"{a} {100 * f:.0f}%" for a, f in parts.items())
                    for t, parts in shares.items()) + "."]
    if older:
        out += ["", "\\* advlab's side measured with an older stack than today's (its columns "
                "and the time ratio are that stack's; the column against the stored zoo row is "
                "today's); the command, with `--resume`, measures it again."]
    return "\n".join(out) + "\n"


def time_shares(rows: list[dict]) -> dict[str, dict[str, float]]:
    """threat -> {attack: its share of advlab's wall seconds}, summed over the rows of that
    threat measured with today's stack and per-attack times, in stack order."""
    out = {}
    for t in dict.fromkeys(r["threat"] for r in rows):
        got = [r["seconds_per_attack_advlab"] for r in rows if r["threat"] == t
               and "seconds_per_attack_advlab" in r and not _older(r)]
        if not got:
            continue
        total = {a: sum(g.get(a, 0.0) for g in got) for a in got[0]}
        whole = sum(total.values()) or 1.0
        out[t] = {a: v / whole for a, v in total.items()}
    return out


def against_stored(model: str, threat: str, n: int, rows: list[dict]) -> str:
    """How many of the first n images AutoAttack breaks (under ``threat``, or "union_lp")
    that the zoo's stored result of ``model`` (advlab/zoo/results) leaves standing: what the
    published number may overclaim. "–" where the stored result keeps no per-image outcomes."""
    from advlab.zoo import outcomes
    from advlab.zoo.measure import RESULTS

    path = RESULTS / f"{model}.json"
    res = json.loads(path.read_text()) if path.is_file() else {}
    if "outcomes" not in res or res.get("n", 0) < n:
        return "–"
    stored = outcomes.unpack(res["outcomes"])
    stored = {**stored, **outcomes.unions(stored)}
    theirs = {r["threat"]: unpack_bits(r["autoattack_survive"], n) for r in rows
              if r["model"] == model}
    if threat == "union_lp":
        if set(theirs) != set(NORMS):
            return "–"
        aa = torch.stack(list(theirs.values())).all(dim=0)
    else:
        aa = theirs[threat]
    return f"{int((stored[threat][:n] & ~aa).sum())} of {n}"


def table_command(args, rows: list[dict]) -> str:
    """The one command that measures every row in ``rows`` (the kept ones too): with ``--resume``
    it measures only what is missing."""
    models = list(dict.fromkeys(r["model"] for r in rows))
    names = [t for t in NORMS if any(r["threat"] == t for r in rows)]
    parts = ["python benchmarks/vs_autoattack.py",
             "--models " + ",".join(m for m in models if m in zoo.available())]
    parts += [f"--checkpoint {m}" for m in models if m not in zoo.available()]
    parts += [f"--n {args.n}", "--threats " + ",".join(names)]
    if args.suite != "original":
        parts.append(f"--suite {args.suite}")
    if args.queries is not None:
        parts.append(f"--queries {args.queries}")
    if getattr(args, "search_dtype", "float32") != "float32":
        parts.append(f"--search-dtype {args.search_dtype}")
    for flag, default in (("ead_steps", 200), ("fmn_steps", 100), ("bb_steps", 200)):
        if getattr(args, flag, default) != default:
            parts.append(f"--{flag.replace('_', '-')} {getattr(args, flag)}")
    if args.threads:
        parts.append(f"--threads {args.threads}")
    parts += [f"--out {_shown(args.out)}", "--resume"]
    parts += [f"--table {_shown(args.table)}"] if args.table else []
    return " ".join(parts + [f"--splice {_shown(d)}" for d in args.splice])


def _shown(path: Path) -> str:
    """``path`` relative to the repository when it lies inside it (commands quoted in docs)."""
    root = Path(__file__).resolve().parent.parent
    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return str(path)


def load_model(spec: str):
    """A zoo name, or ``FILE.safetensors[:ARCH]`` (default compact-cnn)."""
    if spec in zoo.available():
        return zoo.load(spec)
    from safetensors.torch import load_file

    from advlab.models import build_model
    path, arch = checkpoint_spec(spec)
    model = build_model(arch)
    model.load_state_dict(load_file(path))
    return model.eval()


def checkpoint_spec(spec: str) -> tuple[Path, str]:
    """``FILE.safetensors[:ARCH]`` -> (the file, the architecture; default compact-cnn)."""
    stem, sep, arch = spec.partition(".safetensors")
    return Path(stem + sep), arch.lstrip(":") or "compact-cnn"


def earlier_autoattack(path: Path, n: int, suite: str, l1: L1Side = L1Side()) -> dict:
    """(model, threat) -> AutoAttack's side of every row of an earlier run with the same n,
    suite and independent l_1 attacks, whatever advlab's attacks were then: AutoAttack's side
    does not change when advlab's stack does, so a stale row needs only advlab's side measured
    again."""
    if not path.is_file():
        return {}
    old = json.loads(path.read_text())
    if old.get("suite") != suite or old.get("n") != n:
        return {}
    keys = ("autoattack_survive", "autoattack_invalid", "seconds_autoattack",
            "cpu_seconds_autoattack", "independent_l1")
    return {(r["model"], r["threat"]): {k: r[k] for k in keys}
            for r in old["rows"] + old.get("stale_rows", []) + old.get("autoattack_kept", [])
            if all(k in r for k in keys)
            and (r["threat"] != "l1"
                 or r.get("independent_l1") == l1_label(suite, l1))}


def compare(model_name, x, y, names, suite, batch, queries, l1: L1Side = L1Side(), done=(),
            keep=None, earlier=None, search_dtype: str = "float32"):
    """One row per threat in ``names`` not in ``done``; ``keep(row)`` is called after each.
    ``earlier``: AutoAttack's sides already measured (``earlier_autoattack``), reused.
    ``search_dtype``: the precision advlab's attacks search in (AutoAttack's stays float32)."""
    model = fast_on_cpu(load_model(model_name))
    rows = []
    for name in names:
        if name in done:
            continue
        reuse = (earlier or {}).get((model_name, name))
        if reuse is not None:  # AutoAttack's side as measured before (it does not depend on ours)
            theirs = unpack_bits(reuse["autoattack_survive"], int(y.numel())).to(y.device)
            invalid = reuse["autoattack_invalid"]
            t_theirs = (reuse["seconds_autoattack"], reuse["cpu_seconds_autoattack"])
        else:
            theirs, invalid, t_theirs = robust_under_autoattack(model, x, y, name, suite, batch,
                                                                l1)
        ours, t_ours, per_attack = robust_under_advlab(model, x, y, name, queries, search_dtype)
        rows.append({
            "model": model_name, "threat": name, "n": int(y.numel()),
            "advlab": ours.float().mean().item(), "autoattack": theirs.float().mean().item(),
            "both": (ours & theirs).float().mean().item(),
            "only_autoattack_breaks": (ours & ~theirs).nonzero().flatten().tolist(),
            "only_advlab_breaks": (~ours & theirs).nonzero().flatten().tolist(),
            "autoattack_invalid": invalid,
            "advlab_attacks": advlab_stack(name, queries, search_dtype),
            "independent_l1": l1_label(suite, l1) if name == "l1" else None,
            "autoattack_reused": reuse is not None,
            "seconds_advlab": t_ours[0], "seconds_autoattack": t_theirs[0],
            "cpu_seconds_advlab": t_ours[1], "cpu_seconds_autoattack": t_theirs[1],
            "seconds_per_attack_advlab": per_attack,
            # which images survive, one bit each (advlab.zoo.outcomes), for the union rows
            "advlab_survive": pack_bits(ours.cpu()), "autoattack_survive": pack_bits(theirs.cpu()),
        })
        print(_line(rows[-1]), flush=True)
        if keep is not None:
            keep(rows[-1])
    return rows


def _line(r) -> str:
    pct = " ".join(f"{100 * r[k]:5.1f}%" for k in ("advlab", "autoattack", "both"))
    only = (f"{len(r['only_autoattack_breaks']):>3} of {r['n']:<10}  "
            f"{len(r['only_advlab_breaks']):>3} of {r['n']:<13}")
    t, t_aa = r["cpu_seconds_advlab"], r["cpu_seconds_autoattack"]
    w, w_aa = r["seconds_advlab"], r["seconds_autoattack"]
    return (f"{r['model']:<12} {r['threat']:<6} {pct}  {only}  {t:8.1f}  {t_aa:7.1f}  "
            f"{t / t_aa:5.2f}  {w / w_aa:5.2f}")


def union_rows(rows: list[dict]) -> list[dict]:
    """Per model measured under every l_p threat: the union accuracy under advlab, under
    AutoAttack, under both (an image counts when it survives every threat for that side)."""
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = {r["threat"]: r for r in rows if r["model"] == model and "advlab_survive" in r}
        if set(mine) != set(NORMS):
            continue
        n = mine["linf"]["n"]
        masks = {side: [unpack_bits(r[f"{side}_survive"], n) for r in mine.values()]
                 for side in ("advlab", "autoattack")}
        union = {side: torch.stack(m).all(dim=0) for side, m in masks.items()}
        both = union["advlab"] & union["autoattack"]
        out.append({"model": model, "n": n, **{s: u.float().mean().item()
                                               for s, u in union.items()},
                    "both": both.float().mean().item(),
                    "only_autoattack_breaks": (union["advlab"] & ~union["autoattack"])
                    .nonzero().flatten().tolist()})
    return out


def _union_line(u: dict) -> str:
    return (f"{u['model']:<12} union  {100 * u['advlab']:5.1f}% {100 * u['autoattack']:5.1f}% "
            f"{100 * u['both']:5.1f}%  {len(u['only_autoattack_breaks']):>3} of {u['n']}")


HEADER = ("model        threat advlab  AA     both    only AA breaks  only advlab breaks  "
          "advlab cpu s  AA cpu s  ratio  (wall)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", default="mnist-msd", help="comma-separated zoo models")
    p.add_argument("--n", type=int, default=100, help="the first N MNIST test images")
    p.add_argument("--threats", default="linf,l2", help="comma-separated: linf, l2, l1")
    p.add_argument("--checkpoint", action="append", default=[], metavar="FILE[:ARCH]",
                   help="also compare these weights (.safetensors; ARCH default compact-cnn)")
    p.add_argument("--ead-steps", type=int, default=200, help="EAD iterations per search step")
    p.add_argument("--fmn-steps", type=int, default=100, help="FMN-L1 steps after EAD (l_1)")
    p.add_argument("--bb-steps", type=int, default=200,
                   help="Brendel-Bethge-L1 steps from Pointwise after FMN-L1 (l_1; 0: none)")
    p.add_argument("--suite", choices=["original", "torchattacks", "croce-hein"],
                   default="original", help="AutoAttack through torchattacks (original: "
                   "AutoAttack's parameters) or Croce & Hein's own package, pyautoattack, whose "
                   "l_1 version replaces the independent l_1 attacks")
    p.add_argument("--queries", type=int, default=None, help="advlab's Square queries")
    p.add_argument("--search-dtype", default="float32", choices=["float32", "bfloat16"],
                   help="the precision advlab's attacks search in (each break is checked in "
                   "float32; AutoAttack runs in float32 as published)")
    p.add_argument("--batch", type=int, default=500, help="AutoAttack's batch size")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", type=Path, default=Path("runs/vs_autoattack.json"))
    p.add_argument("--resume", action="store_true",
                   help="keep the rows already in --out (same n, suite and advlab attacks) and "
                   "add the others")
    p.add_argument("--rewrite", action="store_true",
                   help="measure nothing: rewrite --table and --splice from the --out file's "
                   "rows as they are (after the zoo's stored rows changed: their column)")
    p.add_argument("--table", type=Path, default=None, metavar="FILE.md",
                   help="also write the rows as a markdown table (with the command)")
    p.add_argument("--splice", type=Path, action="append", default=[], metavar="DOC.md",
                   help="also put the table between DOC's <!-- vs-autoattack-table --> markers")
    args = p.parse_args(argv)
    for doc in args.splice:
        if not doc.is_file():
            p.error(f"--splice {doc}: no such file")
        try:
            find(doc.read_text(), "vs-autoattack-table", str(doc))
        except ValueError as e:
            p.error(f"--splice: {e}")
    names = [t.strip() for t in args.threats.split(",") if t.strip()]
    bad = [t for t in names if t not in NORMS]
    if bad:
        p.error(f"unknown threats {bad}: choose from {sorted(NORMS)}")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in zoo.available()]
    if unknown:
        p.error(f"unknown zoo models {unknown}; shipped: {', '.join(zoo.available())}")
    missing = [c for c in args.checkpoint
               if ".safetensors" not in c or not checkpoint_spec(c)[0].is_file()]
    if missing:
        p.error(f"--checkpoint {missing}: expected existing "
                "FILE.safetensors[:ARCH]")
    models += args.checkpoint
    if args.rewrite:
        return rewrite(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    x, y = mnist_tensors(args.n, train=False)
    l1 = L1Side(args.ead_steps, args.fmn_steps, args.bb_steps)
    side = (args.queries, l1, args.search_dtype)  # what makes a kept row today's
    rows = previous_rows(args.out, args.n, args.suite, *side) if args.resume else []
    stale = stale_rows(args.out, args.n, args.suite, *side) if args.resume else []
    for r in stale:
        print(f"{r['model']} {r['threat']}: measured with other advlab attacks than today's; "
              "measuring it again", flush=True)
    earlier = earlier_autoattack(args.out, args.n, args.suite, l1) if args.resume else {}
    print(f"first {args.n} MNIST test images, suite {args.suite}, {torch.get_num_threads()} "
          f"threads\n{HEADER}", flush=True)
    for r in rows:
        print(_line(r) + "  (kept from " + str(args.out) + ")", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def waiting_and_kept():  # stale rows not measured again, AutoAttack's sides not yet used
        done = {(r["model"], r["threat"]) for r in rows}
        waiting = [r for r in stale if (r["model"], r["threat"]) not in done]
        kept = [{"model": m, "threat": t, **v} for (m, t), v in earlier.items()
                if (m, t) not in done
                and (m, t) not in {(r["model"], r["threat"]) for r in waiting}]
        return waiting, kept

    def keep(row):  # written after every row, so a long run loses at most one row
        rows.append(row)
        waiting, kept = waiting_and_kept()
        args.out.write_text(json.dumps({"command": table_command(args, rows + waiting),
                                        "suite": args.suite, "n": args.n, "rows": rows,
                                        "stale_rows": waiting, "autoattack_kept": kept},
                                       indent=1))

    for m in models:
        done = {r["threat"] for r in rows if r["model"] == m}
        compare(m, x, y, names, args.suite, args.batch, args.queries, l1, done, keep, earlier,
                args.search_dtype)
    # rows of models this run was not asked to measure stay, stale ones marked, until a run
    # measures them again
    waiting, kept = waiting_and_kept()
    every = rows + waiting
    unions = union_rows(every)
    if unions:
        print("\nunion of l_inf, l_2 and l_1 (l_1: the independent attacks on AutoAttack's side)\n"
              "model        threat advlab  AA     both    only AA breaks")
        for u in unions:
            print(_union_line(u))
    args.out.write_text(json.dumps({"command": table_command(args, every), "suite": args.suite,
                                    "n": args.n, "rows": rows,
                                    **({"stale_rows": waiting} if waiting else {}),
                                    **({"autoattack_kept": kept} if kept else {}),
                                    **({"unions": unions} if unions else {})}, indent=1))
    print(f"wrote {args.out}")
    write_tables(args, table_command(args, every), args.n, args.suite, every, unions)
    return 0


def rewrite(args) -> int:
    """``--rewrite``: the tables again from the --out file's rows, nothing measured."""
    if not args.out.is_file():
        raise SystemExit(f"--rewrite: {args.out} does not exist; measure first (without "
                         "--rewrite)")
    old = json.loads(args.out.read_text())
    rows = old["rows"] + old.get("stale_rows", [])  # a stopped run's rows not yet measured again
    write_tables(args, old["command"], old["n"], old["suite"], rows, union_rows(rows))
    return 0


def write_tables(args, command: str, n: int, suite: str, rows, unions) -> None:
    """The markdown table with its command, to --table and between --splice's markers."""
    body = (f"Produced by `{command}`; first {n} MNIST test images, "
            f"AutoAttack suite {suite!r}.\n\n" + markdown(rows, unions))
    if args.table is not None:
        args.table.write_text(body)
        print(f"wrote {args.table}")
    for doc in args.splice:
        splice(doc, "vs-autoattack-table", body)
        print(f"spliced into {doc}")


if __name__ == "__main__":
    raise SystemExit(main())
