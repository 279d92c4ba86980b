"""``python -m goatpose_edge`` is the ``goatpose`` command."""

import sys

from goatpose_edge.cli import main

sys.exit(main())
