"""The paper's three arcs, one operator (Recipe) each, selected by `dispo train ARC`."""

from dispo.core.registry import Registry

ARCS: Registry = Registry("arc")
ARCS.lazy("arc1", "dispo.arcs.arc1.recipe")
ARCS.lazy("arc2", "dispo.arcs.arc2.recipe")
ARCS.lazy("arc3", "dispo.arcs.arc3.recipe")
