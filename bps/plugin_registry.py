"""Finding engines (``quanta.wms``) and clustering algorithms (``quanta.clustering``) by name."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from bps.errors import EngineNotInstalledError
from bps.wms import WmsService

__all__ = [
    "ENGINE_EXTRAS",
    "engine_names",
    "entry_point_names",
    "load_by_name",
    "load_entry_point",
    "load_service_class",
]

WMS_GROUP = "quanta.wms"

ENGINE_EXTRAS = {"parsl": "parsl", "htcondor": "htcondor", "panda": "panda"}
"""The ``pip install quanta[<extra>]`` that brings each engine's library."""


def entry_point_names(group: str) -> list[str]:
    """The names registered in the entry-point ``group``, sorted."""
    return sorted(point.name for point in entry_points(group=group))


def engine_names() -> list[str]:
    """Short names of the installed engines."""
    return entry_point_names(WMS_GROUP)


def load_entry_point(group: str, name: str) -> Any:
    """The object registered as ``name`` in ``group``, or None when nothing has that name."""
    for point in entry_points(group=group):
        if point.name == name:
            return point.load()
    return None


def load_by_name(group: str, name: str) -> Any:
    """The object a short name registered in ``group`` or a dotted path ``module.attribute`` names.

    None when nothing has that name (or the module lacks the attribute); an `ImportError` of the
    module or of the entry point's target propagates.
    """
    if "." not in name:
        return load_entry_point(group, name)
    module_name, _, attribute = name.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute, None)


def load_service_class(name: str) -> type[WmsService]:
    """The `WmsService` class for a short name (``parsl``) or a dotted class path.

    Raises `EngineNotInstalledError` naming the extra to install when the engine's library is
    missing, and listing the known engines when the name is unknown.
    """
    try:
        found = load_by_name(WMS_GROUP, name)
    except ModuleNotFoundError as err:
        extra = ENGINE_EXTRAS.get(name.rsplit(".", 1)[-1].lower(), ENGINE_EXTRAS.get(name, ""))
        hint = f"; install it with: pip install 'quanta[{extra}]'" if extra else ""
        raise EngineNotInstalledError(
            f"Engine {name!r} cannot be loaded: module {err.name!r} is not installed{hint}."
        ) from err
    if found is None and name in ENGINE_EXTRAS:
        raise EngineNotInstalledError(
            f"Engine {name!r} is not installed; install it with: pip install 'quanta[{ENGINE_EXTRAS[name]}]'."
        )
    if found is None:
        raise EngineNotInstalledError(
            f"Unknown engine {name!r} (wmsServiceClass): known engines are "
            f"{', '.join(engine_names()) or 'none'}, or give a dotted class path."
        )
    if not (isinstance(found, type) and issubclass(found, WmsService)):
        raise EngineNotInstalledError(f"wmsServiceClass {name!r} is not a WmsService subclass.")
    return found
