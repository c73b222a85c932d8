"""The Binder set-up: pinned CPU-only requirements, postBuild, and (slow, opt-in) a real build.

The full check (``bash binder/check.sh``: a fresh venv with the same pins, postBuild, the welcome
notebook run in that venv's kernel) takes minutes; it runs here when ADVLAB_BINDER_CHECK=1.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

REPO = Path(__file__).resolve().parents[1]
BINDER = REPO / "binder"


def _pins() -> dict[str, str]:
    pins = {}
    for line in (BINDER / "requirements.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or line.startswith("--"):
            continue
        assert "==" in line, f"binder/requirements.txt: unpinned line {line!r}"
        name, ver = line.split("==", 1)
        pins[re.sub(r"[-_.]+", "-", name).lower()] = ver
    return pins


def test_every_requirement_is_pinned_and_torch_is_cpu_only():
    pins = _pins()
    text = (BINDER / "requirements.txt").read_text()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in text
    assert pins["torch"].endswith("+cpu") and pins["torchvision"].endswith("+cpu")
    # torchvision 0.(m + 15) is built for torch 2.m: a mismatched pair fails at import
    torch_minor = int(pins["torch"].split(".")[1])
    assert pins["torchvision"].startswith(f"0.{torch_minor + 15}."), (pins["torch"],
                                                                       pins["torchvision"])
    assert not any(name.startswith("nvidia-") for name in pins), "CUDA wheels would not fit"
    for name in ("torchvision", "jupyterlab", "ipywidgets", "jupyterlab-widgets", "ipykernel"):
        assert name in pins, name


def test_pins_cover_advlab_dependencies():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    pins = _pins()
    for dep in meta["project"]["dependencies"]:
        name = re.split(r"[<>=!~\[ ;]", dep, maxsplit=1)[0]
        assert re.sub(r"[-_.]+", "-", name).lower() in pins, f"{name} is not pinned for Binder"


def test_postbuild_and_runtime():
    post = BINDER / "postBuild"
    assert os.access(post, os.X_OK), "repo2docker runs postBuild only when it is executable"
    body = post.read_text()
    assert "pip install" in body and "--no-deps ." in body and "pip check" in body
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert re.fullmatch(r"python-3\.\d+", runtime)
    minor = int(runtime.split(".")[1])
    needs = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert needs == ">=3.10" and minor >= 10


def test_binder_badge_opens_the_welcome_notebook():
    out = subprocess.run([sys.executable, str(REPO / "notebooks" / "_badges.py"), "--readme"],
                         capture_output=True, text=True, check=True).stdout.strip()
    badge = "[![Binder](https://mybinder.org/badge_logo.svg)]"
    assert out.startswith(badge + "(https://mybinder.org/v2/gh/")
    assert out.endswith("?urlpath=lab/tree/notebooks/00_welcome.ipynb)")
    assert (REPO / "notebooks" / "00_welcome.ipynb").exists()


def _badges_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("_badges", REPO / "notebooks" / "_badges.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_badge_points_at_the_one_setting_in_pyproject():
    """pyproject.toml [tool.advlab] sets the repository and ref; every notebook's Colab and
    Binder badge, its Colab install cell and the README badge follow it."""
    import json

    table = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["advlab"]
    slug, ref = table["badge-repository"], table["badge-ref"]
    badges = _badges_module()
    assert (badges.SLUG, badges.REF) == (slug, ref)
    notebooks = badges.notebooks()
    assert len(notebooks) >= 8
    for path in notebooks:
        cells = json.loads(path.read_text())["cells"]
        tagged = {t: "".join(c["source"]) for c in cells for t in c["metadata"].get("tags", [])}
        rel = f"notebooks/{path.name}"
        urls = re.findall(r"\)\]\((https://[^)]+)\)", tagged["badges"])  # links, not images
        assert urls == [f"https://colab.research.google.com/github/{slug}/blob/{ref}/{rel}",
                        f"https://mybinder.org/v2/gh/{slug}/{ref}?urlpath=lab/tree/{rel}"], path
        assert f'ADVLAB_REF = "{ref}"' in tagged["colab-install"]
        assert f"git+https://github.com/{slug}@" in tagged["colab-install"]
    readme = (REPO / "README.md").read_text()
    assert badges.binder_badge() in readme.splitlines()


def test_a_fork_sets_its_badges_in_pyproject(tmp_path):
    """What the README tells a course that forks advlab: change the two keys, rebuild."""
    fork = tmp_path / "pyproject.toml"
    text = (REPO / "pyproject.toml").read_text()
    fork.write_text(text.replace('badge-repository = "advlab/advlab"',
                                 'badge-repository = "my-course/advlab-fork"')
                    .replace('badge-ref = "main"', 'badge-ref = "v2026.1"'))
    badges = _badges_module()
    assert badges.badge_setting(fork) == ("my-course/advlab-fork", "v2026.1")
    fork.write_text(text.replace('badge-repository = "advlab/advlab"', 'badge-repository = "x"'))
    with pytest.raises(ValueError, match="owner/name"):
        badges.badge_setting(fork)


@pytest.mark.skipif(os.environ.get("ADVLAB_BINDER_CHECK") != "1",
                    reason="the full Binder build takes minutes: set ADVLAB_BINDER_CHECK=1")
def test_binder_builds_in_a_fresh_venv_and_runs_the_welcome_notebook():
    res = subprocess.run(["bash", str(BINDER / "check.sh")], capture_output=True, text=True,
                         timeout=1800)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "binder check: ok" in res.stdout
