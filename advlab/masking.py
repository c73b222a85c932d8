"""The gradient-masked model and BPDA: moved to :mod:`advlab.models.masking`.

This old path is that same module (``sys.modules`` holds it under both names).
"""

import sys

from advlab.models import masking as _impl

sys.modules[__name__] = _impl
