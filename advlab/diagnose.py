"""The gradient-masking diagnosis: moved to :mod:`advlab.evaluation.diagnostics`.

This old path is that same module (``sys.modules`` holds it under both names).
"""

import sys

from advlab.evaluation import diagnostics as _impl

sys.modules[__name__] = _impl
