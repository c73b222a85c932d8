"""The affine evaluation of notebook 6: moved to :mod:`advlab.evaluation.affine`.

This old path is that same module (``sys.modules`` holds it under both names).
``python -m advlab.affine_eval`` still runs it.
"""

import sys

from advlab.evaluation import affine as _impl

if __name__ == "__main__":
    raise SystemExit(_impl.main())
sys.modules[__name__] = _impl
