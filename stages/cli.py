"""The one way a stage starts and fails: a clear one-line error and a non-zero exit."""

import sys
from collections.abc import Callable


class StageError(Exception):
    """An expected failure (bad params, no data source, diverged training): no traceback."""


def run(main: Callable[..., None], *args: str) -> int:
    try:
        main(*args)
    except StageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
