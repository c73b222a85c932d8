"""Every number the course cites from a paper or a slide, in one place, each with its source.

- ``ROWS``: the published MNIST models the zoo is compared with (Maini et al.'s table), keyed
  by a name of their own; a zoo model names its counterpart in the zoo manifest
  (``advlab/zoo/manifest.json``, field ``published``).
- ``PUBLISHED``: zoo model -> its published counterpart (the rows of ``ROWS`` that a manifest
  entry names, in the order of ``ROWS``).
- ``HEADLINE``: the headline of Tramèr & Boneh's abstract ("merely 50%").
- ``CITATIONS``: every citation the notebooks quote by name (the headline, the CIFAR10 rows).

``advlab.zoo.table`` (the reproduction table, the model cards) and
``advlab.notebook.figures`` (the notebooks' charts) import these; neither keeps a copy. Values
are percentages; None: not reported by the source.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Citation", "Published", "NOT_CHECKED", "MAINI", "MAINI_CAVEAT", "TRAMER",
           "TRAMER_PAPER", "ROWS", "PUBLISHED", "HEADLINE", "CITATIONS", "counterparts"]

NOT_CHECKED = "not checked"


@dataclass(frozen=True)
class Citation:
    """Numbers cited from a paper or a slide (percent; None: not reported there).

    ``source``: where they come from. ``checked``: where they were checked against it (which
    page or file, what was compared), or "" when nobody could check them; then ``caveat`` says
    why, and ``display_label`` and ``note`` say "not checked".
    """

    label: str
    source: str
    values: dict
    checked: str = ""
    caveat: str = ""

    @property
    def verified(self) -> bool:
        return bool(self.checked)

    @property
    def display_label(self) -> str:
        """The label for a chart: marked "(not checked)" unless verified."""
        return self.label if self.verified else f"{self.label} ({NOT_CHECKED})"

    @property
    def note(self) -> str:
        """One line under a chart or a table: the source, and whether it was checked."""
        if self.verified:
            return f"{self.source} (checked: {self.checked})"
        return f"{self.source} ({NOT_CHECKED.upper()}: {self.caveat or 'no source available'})"

    def as_row(self) -> dict:
        """The dict form the notebooks' charts take: label, source, values, checked."""
        return {"label": self.display_label, "source": self.note, "values": dict(self.values),
                "checked": self.checked}


# The name the zoo table has always used for a published row (label, source, values).
Published = Citation

MAINI = ("Maini, Wong & Kolter (2020), Adversarial Robustness Against the Union of Multiple "
         "Perturbation Models, ICML; MNIST table of github.com/locuslab/robust_union (README), "
         "eps l_inf 0.3 / l_2 2.0 / l_1 10")
MAINI_CAVEAT = ("the stated source, the MNIST table of the github.com/locuslab/robust_union "
                "README (read at commits f639a47 and 0d20b7e), shows other numbers at other "
                "budgets (l_2 1.5, l_1 12; e.g. MSD 98.0 / 63.7 / 82.7 / 62.3, union 58.7); the "
                "values here may be the ICML paper's, which we could not read")
TRAMER_PAPER = ("Tramèr & Boneh (2019), Adversarial Training and Robustness for Multiple "
                "Perturbations, NeurIPS, arXiv:1904.13000")
TRAMER = f"{TRAMER_PAPER}, abstract"


def _maini(label: str, **values: float) -> Citation:
    # Not marked checked: the stated source shows a different table (MAINI_CAVEAT).
    return Citation(f"{label} (Maini et al.)", MAINI, values, caveat=MAINI_CAVEAT)


# Maini et al.'s MNIST models, in the order the reproduction table lists them.
ROWS: dict[str, Citation] = {
    "maini-p-inf": _maini("P_inf", clean=99.1, linf=90.3, l2=13.6, l1=4.2, union_lp=3.7),
    "maini-p-1": _maini("P_1", clean=99.3, linf=0.0, l2=38.5, l1=70.0, union_lp=0.0),
    "maini-p-2": _maini("P_2", clean=99.2, linf=0.4, l2=69.2, l1=43.4, union_lp=0.4),
    "maini-worst-case-pgd": _maini("worst-case PGD", clean=98.6, linf=51.0, l2=61.9, l1=52.6,
                                   union_lp=42.1),
    "maini-pgd-augmentation": _maini("PGD augmentation", clean=99.1, linf=65.2, l2=60.1,
                                     l1=39.2, union_lp=34.9),
    "maini-msd": _maini("MSD", clean=98.3, linf=62.7, l2=67.9, l1=65.0, union_lp=58.4),
}

# The headline of Tramèr & Boneh's abstract: multi-perturbation (l_inf + l_1 + l_2) adversarial
# training on MNIST reaches "merely 50%" accuracy against the union.
HEADLINE = Citation("l_inf+l_1+l_2 adversarial training (Tramèr & Boneh)", TRAMER,
                    {"union_lp": 50.0},
                    checked="the abstract on proceedings.neurips.cc (the paper's Metadata.json): "
                            "'adversarial training with first-order l_inf, l_1 and l_2 attacks "
                            "on MNIST achieves merely 50% robust accuracy'")

CITATIONS: dict[str, Citation] = {
    # the headline of the paper's abstract ("merely 50%")
    "tramer_boneh_headline": HEADLINE,
    # the CIFAR10 row an earlier version of the course cited: nobody could find it in the paper
    "tramer_boneh_cifar10": Citation(
        "Adv_inf, CIFAR10 (Tramèr & Boneh 2019)",
        f"{TRAMER_PAPER}, CIFAR10 results table (l_inf 4/255, l_1 2000/255), as an earlier "
        "version of this course quoted it",
        {"clean": 92.0, "linf": 71.0, "l1": 16.4, "l2": None, "rt": None},
        caveat="not found in any text of the paper we could read"),
    # the talk this course is built on: its CIFAR10 slide for l_inf adversarial training
    "seed_slide_cifar10": Citation(
        "l_inf adversarial training, CIFAR10 (the talk's slide)",
        "the CIFAR10 slide of the talk this course is built on (Tramèr & Boneh's results told "
        "as a talk): about 96% with no noise, about 70% under l_inf noise, much less under "
        "l_1 noise and rotations", {"clean": 96.0, "linf": 70.0},
        checked="the slide as this project's issues #15 and #18 quote it"),
}


def counterparts(manifest=None) -> dict[str, Citation]:
    """Zoo model -> its published row, as the manifest's ``published`` fields say, in the order
    of ``ROWS``. A name that is not in ``ROWS`` is an error (a typo in the manifest)."""
    from . import MANIFEST

    entries = (MANIFEST if manifest is None else manifest).values()
    by_row: dict[str, str] = {}
    for e in entries:
        if e.published:
            if e.published in by_row:
                raise ValueError(f"the zoo manifest gives the published row {e.published!r} to "
                                 f"both {by_row[e.published]!r} and {e.name!r}")
            by_row[e.published] = e.name
    unknown = sorted(set(by_row) - set(ROWS))
    if unknown:
        raise KeyError(f"the zoo manifest names unknown published rows {unknown}; "
                       f"known: {list(ROWS)}")
    return {by_row[key]: row for key, row in ROWS.items() if key in by_row}


# zoo model -> the published model it corresponds to.
PUBLISHED: dict[str, Citation] = counterparts()
