"""``python -m recsys``: the command line."""

from recsys.cli import main

main()
