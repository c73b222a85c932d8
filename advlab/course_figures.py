"""The course's figures and cited numbers: moved to :mod:`advlab.notebook.figures`.

This old path is that same module (``sys.modules`` holds it under both names).
"""

import sys

from advlab.notebook import figures as _impl

sys.modules[__name__] = _impl
