"""Click option groups: several options applied as one decorator."""

from typing import Callable


def option_group(*decorators: Callable) -> Callable:
    """One decorator applying ``decorators`` (``click.option`` / ``click.argument``) in order.

    The options appear in ``--help`` in the order given.
    """
    def apply(f):
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return apply
