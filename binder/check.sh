#!/usr/bin/env bash
# Would a student who clicks the Binder badge get a working course? This builds what
# mybinder.org builds, here: a fresh virtual environment, binder/requirements.txt (the same
# pins), binder/postBuild, in a clean copy of the repository's tracked files; then it runs the
# welcome notebook top to bottom in that environment's kernel and checks JupyterLab and its
# widget extension are there.
#
#   bash binder/check.sh            # ADVLAB_DATA defaults to ../shared/data, as in CI
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export ADVLAB_DATA="${ADVLAB_DATA:-$(realpath "$root/../shared/data")}"
unset MPLBACKEND
tmp=$(mktemp -d /tmp/advlab-binder-check.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

echo "binder check: a clean copy of the tracked files"
mkdir "$tmp/repo"
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$tmp/repo"

echo "binder check: a fresh venv with binder/requirements.txt"
python3 -m venv "$tmp/venv"
# shellcheck disable=SC1091
source "$tmp/venv/bin/activate"
python -m pip install -q --upgrade pip
req="$tmp/repo/binder/requirements.txt"
index=$(sed -n 's/^--extra-index-url //p' "$req")
if ! python -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=10)" \
     "$index" >/dev/null 2>&1; then
  # A machine that reaches only PyPI: the +cpu builds of torch and torchvision live only on the
  # PyTorch index, so take the same versions as PyPI builds them (with CUDA libraries, unused
  # on a CPU); every other pin stays exactly as it is.
  echo "binder check: $index is unreachable here; same pins, torch and torchvision from PyPI"
  # ("===": exactly that version, so a local +cpu wheel cannot pair with a CUDA torchvision)
  grep -v '^--extra-index-url' "$req" | sed -E 's/^(torch|torchvision)==([^+]+)\+cpu$/\1===\2/' \
    > "$tmp/requirements.txt"
  req="$tmp/requirements.txt"
  export ADVLAB_BINDER_CPU_BUILDS=0
fi
# (one retry: a large download can break off)
python -m pip install -q -r "$req" 2>"$tmp/pip.log" \
  || python -m pip install -q -r "$req" 2>"$tmp/pip.log" \
  || { grep -v "WARNING: Location" "$tmp/pip.log" | tail -n 30 >&2; echo "pip failed" >&2; exit 1; }

echo "binder check: binder/postBuild"
(cd "$tmp/repo" && bash binder/postBuild)

echo "binder check: versions"
python - "$tmp/repo/binder/requirements.txt" <<'PY'
import os
import sys
from importlib.metadata import version

import torch

pins = dict(line.strip().split("==", 1) for line in open(sys.argv[1])
            if "==" in line and not line.startswith("#"))
cpu_builds = os.environ.get("ADVLAB_BINDER_CPU_BUILDS", "1") == "1"
for name in ("torch", "torchvision", "jupyterlab", "ipywidgets", "numpy"):
    want = pins[name] if cpu_builds else pins[name].split("+")[0]
    assert version(name) == want, (name, version(name), want)
assert "+cpu" in torch.__version__ or not cpu_builds, torch.__version__
print(f"  torch {torch.__version__}, jupyterlab {version('jupyterlab')}, "
      f"ipywidgets {version('ipywidgets')}, advlab {version('advlab')}: as pinned")
PY
jupyter labextension list 2>&1 | grep -q "@jupyter-widgets/jupyterlab-manager.*enabled" \
  || { echo "binder check: the widget extension is not enabled in JupyterLab" >&2; exit 1; }

echo "binder check: the welcome notebook, default mode, in this venv's kernel"
cd "$tmp"  # not the repository: advlab must come from the venv
start=$(date +%s)
ADVLAB_FAST=0 jupyter nbconvert --to notebook --execute \
  --ExecutePreprocessor.timeout=600 --ExecutePreprocessor.kernel_name=python3 \
  --output "$tmp/welcome.out.ipynb" "$tmp/repo/notebooks/00_welcome.ipynb" \
  >/dev/null 2>"$tmp/nbconvert.log" \
  || { tail -n 40 "$tmp/nbconvert.log" >&2; exit 1; }
python - "$tmp/welcome.out.ipynb" <<'PY'
import json
import sys

nb = json.load(open(sys.argv[1]))
code = [c for c in nb["cells"] if c["cell_type"] == "code"]
assert all(c["execution_count"] for c in code), "a cell did not run"
errors = [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
assert not errors, errors
text = "".join("".join(o.get("text", "")) for c in code for o in c["outputs"])
assert "data: mnist found" in text, text[-500:]
print(f"  {len(code)} code cells ran without error")
PY
echo "binder check: ok ($(( $(date +%s) - start )) s for the notebook)"
