"""The l_inf / l_1 trade-off distribution: moved to :mod:`advlab.notebook.tradeoff`.

This old path is that same module (``sys.modules`` holds it under both names).
"""

import sys

from advlab.notebook import tradeoff as _impl

sys.modules[__name__] = _impl
