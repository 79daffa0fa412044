"""`python -m scf_asgi ...`: the same as the `scf-asgi` command."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
