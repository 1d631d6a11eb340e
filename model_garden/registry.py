"""One registry type for every ``name -> entry`` table: recipes, datasets, networks.

As TF-Slim's ``nets_factory.networks_map`` and TF Model Garden's
``official/core/registry.py``: entries are registered once under their
``name``, and looking up an unknown name is one ``KeyError`` that lists the
known ones. Imports nothing heavy.
"""

from typing import Callable, Dict, Optional, TypeVar

T = TypeVar("T")


class Registry(Dict[str, T]):
    """A ``dict`` of entries by their ``name`` attribute, with checked registration.

    Args:
      kind: what the entries are, for messages (``"recipe"``, ``"dataset"``, ...).
      check: optional validation of an entry before it is registered (raises
        ``ValueError``).
    """

    def __init__(self, kind: str, check: Optional[Callable[[T], None]] = None):
        super().__init__()
        self.kind = kind
        self._check = check

    def register(self, entry: T) -> T:
        """Adds ``entry`` under ``entry.name``; returns it.

        Raises:
          ValueError: the name is registered already, or ``check`` refuses it.
        """
        name = entry.name
        if name in self:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        if self._check:
            self._check(entry)
        self[name] = entry
        return entry

    def lookup(self, name: str) -> T:
        """The entry registered as ``name``.

        Raises:
          KeyError: naming the registered entries.
        """
        try:
            return self[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {sorted(self)}") from None
