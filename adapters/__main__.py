"""``python -m adapters``: the ``resilience`` command."""

from .cli import main

raise SystemExit(main())
