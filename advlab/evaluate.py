"""The union evaluator: moved to :mod:`advlab.evaluation.union`.

This old path is that same module (``sys.modules`` holds it under both names).
"""

import sys

from advlab.evaluation import union as _impl

sys.modules[__name__] = _impl
