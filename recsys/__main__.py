"""``python -m recsys``: the command line."""

from recsys.cli import run

if __name__ == "__main__":  # not on import (the docs build imports every module)
    run()
