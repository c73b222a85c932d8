"""Load a script of ``benchmarks/`` (not a package) as a module, for the tests of its bookkeeping.

    from benchmark_module import load
    bench = load("autoattack_vs_stored")
"""

import importlib.util
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


def load(name: str):
    """``benchmarks/NAME.py`` as the module ``NAME``, registered in ``sys.modules`` (its
    dataclasses look their module up there)."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module.__name__] = module
    spec.loader.exec_module(module)
    return module
