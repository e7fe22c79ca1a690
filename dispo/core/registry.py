"""Name -> object registries, so config strings (`judge=lexical`) resolve to classes.

Modules register themselves on import; `Registry.get` imports the module that provides a
name lazily (see `lazy`) so that looking up one judge does not import every backend.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Generic, TypeVar

from dispo.core.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._lazy: dict[str, str] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            self._items[name] = obj
            return obj

        return deco

    def lazy(self, name: str, module: str) -> None:
        """Declare that importing `module` registers `name`."""
        self._lazy[name] = module

    def names(self) -> list[str]:
        return sorted(set(self._items) | set(self._lazy))

    def get(self, name: str) -> T:
        if name not in self._items and name in self._lazy:
            importlib.import_module(self._lazy[name])
        if name not in self._items:
            raise ConfigError(f"unknown {self.kind} '{name}'; valid choices: {', '.join(self.names())}")
        return self._items[name]

    def __contains__(self, name: str) -> bool:
        return name in self._items or name in self._lazy


def build(registry: Registry[Any], name: str, **kwargs: Any) -> Any:
    return registry.get(name)(**kwargs)
