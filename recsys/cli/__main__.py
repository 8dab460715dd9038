"""``python -m recsys.cli``: the command line."""

from recsys.cli import main

main()
