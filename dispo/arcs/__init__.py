"""The paper's three arcs, one operator (Recipe) each, selected by `dispo train ARC`."""

from dispo.registry import Registry

ARCS: Registry = Registry("arc")
ARCS.lazy("arc1", "dispo.arcs.arc1_distill")
ARCS.lazy("arc2", "dispo.arcs.arc2_tempering")
ARCS.lazy("arc3", "dispo.arcs.arc3_sidecar")
