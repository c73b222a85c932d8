"""Badges and the Colab install cell of every course notebook, from one place.

The GitHub repository and the branch or tag the badges point at are set in one place, the
``[tool.advlab]`` table of ``pyproject.toml`` (``badge-repository``, ``badge-ref``), and read
here as ``SLUG`` and ``REF``. After changing them, rewrite the notebooks and print the README
badge (README.md, "The course", says how a course that forks advlab does it):

    python notebooks/_badges.py            # rewrite the badge and install cells in place
    python notebooks/_badges.py --check    # exit 1 if a notebook is out of date (CI, tests)
    python notebooks/_badges.py --readme   # the Binder badge line for README.md

Each notebook's first cell (tag ``badges``) holds its Colab badge and the Binder badge; its
second (tag ``colab-install``) installs advlab only when it runs in Colab.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PYPROJECT = REPO / "pyproject.toml"
WELCOME = "notebooks/00_welcome.ipynb"


def badge_setting(path: Path = PYPROJECT) -> tuple[str, str]:
    """(repository "owner/name", branch or tag) from ``[tool.advlab]`` in pyproject.toml."""
    text = path.read_text()
    try:
        import tomllib  # Python >= 3.11

        table = tomllib.loads(text)["tool"]["advlab"]
    except ImportError:  # Python 3.10: the two plain string keys of the table
        body = text.split("[tool.advlab]", 1)[1].split("\n[", 1)[0]
        table = dict(re.findall(r'^([\w-]+)\s*=\s*"([^"]*)"', body, flags=re.M))
    slug, ref = table["badge-repository"], table["badge-ref"]
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", slug):
        raise ValueError(f"{path}: [tool.advlab] badge-repository must be owner/name, got {slug!r}")
    return slug, ref


SLUG, REF = badge_setting()  # owner/name on GitHub; the branch or tag (docs/colab.md: pin one)


def colab_url(nb_path: str) -> str:
    """Colab opens ``nb_path`` (relative to the repository root) straight from GitHub."""
    return f"https://colab.research.google.com/github/{SLUG}/blob/{REF}/{nb_path}"


def binder_url(nb_path: str = WELCOME) -> str:
    """mybinder.org builds the repository (binder/) and opens JupyterLab on ``nb_path``."""
    return f"https://mybinder.org/v2/gh/{SLUG}/{REF}?urlpath=lab/tree/{nb_path}"


def binder_badge(nb_path: str = WELCOME) -> str:
    return f"[![Binder](https://mybinder.org/badge_logo.svg)]({binder_url(nb_path)})"


def colab_badge(nb_path: str) -> str:
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"({colab_url(nb_path)})")


def badge_source(nb_path: str) -> str:
    return f"{colab_badge(nb_path)} {binder_badge(nb_path)}"


def install_source() -> str:
    return (
        "# Colab only: install advlab (this cell does nothing anywhere else).\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    import subprocess\n"
        "\n"
        f'    ADVLAB_REF = "{REF}"  # a course pins a release tag here, see docs/colab.md\n'
        f'    url = f"git+https://github.com/{SLUG}@{{ADVLAB_REF}}"\n'
        '    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"advlab @ {url}"],\n'
        "                   check=True)"
    )


def notebooks() -> list[Path]:
    """The course notebooks, in order (``notebooks/NN_*.ipynb``)."""
    return sorted(p for p in HERE.glob("[0-9][0-9]_*.ipynb"))


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _tagged(nb: dict, tag: str):
    for cell in nb["cells"]:
        if tag in cell.get("metadata", {}).get("tags", []):
            return cell
    raise KeyError(tag)


def sync(path: Path, write: bool = True) -> bool:
    """Bring the badge and install cells of ``path`` up to date; True if they were not."""
    nb = json.loads(path.read_text())
    rel = path.resolve().relative_to(REPO).as_posix()
    wanted = {"badges": badge_source(rel), "colab-install": install_source()}
    stale = False
    for tag, src in wanted.items():
        cell = _tagged(nb, tag)
        if _source(cell) != src:
            stale = True
            cell["source"] = src
    if stale and write:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return stale


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if "--readme" in args:
        print(binder_badge())
        return 0
    check = "--check" in args
    stale = [p.name for p in notebooks() if sync(p, write=not check)]
    if stale:
        verb = "out of date" if check else "updated"
        print(f"{verb}: {', '.join(stale)}" + (" (run python notebooks/_badges.py)" if check
                                               else ""))
    return 1 if (check and stale) else 0


if __name__ == "__main__":
    raise SystemExit(main())
