"""The affine evaluation of notebook 6: moved to :mod:`advlab.evaluation.affine`.

This old path is that same module (``sys.modules`` holds it under both names). What measures
the table on the zoo models (``MODELS``, ``affine_table``, ``main``) is
:mod:`advlab.zoo.affine_table`; ``python -m advlab.affine_eval`` still runs it.
"""

import sys

from advlab.evaluation import affine as _impl

if __name__ == "__main__":
    from advlab.zoo.affine_table import main

    raise SystemExit(main())
sys.modules[__name__] = _impl
