"""The notebooks' figures and interactive explorers: moved to :mod:`advlab.notebook.widgets`.

This old path is that same module (``sys.modules`` holds it under both names).
"""

import sys

from advlab.notebook import widgets as _impl

sys.modules[__name__] = _impl
