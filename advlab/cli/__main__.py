"""``python -m advlab.cli``: the same as ``advlab`` (and ``python -m advlab``)."""

import sys

from . import main

sys.exit(main())
