"""``python -m wisp.cli``: the same as the ``wisp`` command."""

from wisp.cli.main import main

main()
