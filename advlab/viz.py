"""The gradient-masking plots: moved to :mod:`advlab.notebook.viz`.

This old path is that same module (``sys.modules`` holds it under both names).
"""

import sys

from advlab.notebook import viz as _impl

sys.modules[__name__] = _impl
