"""Notebook 6's stored affine table: moved to :mod:`advlab.evaluation.affine_stored`.

This old path is that same module (``sys.modules`` holds it under both names).
"""

import sys

from advlab.evaluation import affine_stored as _impl

sys.modules[__name__] = _impl
