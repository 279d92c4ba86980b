"""``python -m goatpose_edge.cli`` is the ``goatpose`` command too (``python -m goatpose_edge`` is shorter)."""

import sys

from goatpose_edge.cli import main

sys.exit(main())
