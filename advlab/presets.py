"""The paper's threat models and attack stacks: moved to :mod:`advlab.evaluation.presets`.

This old path is that same module (``sys.modules`` holds it under both names).
"""

import sys

from advlab.evaluation import presets as _impl

sys.modules[__name__] = _impl
