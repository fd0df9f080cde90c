"""Sky map definitions: the validated `RingsSkyMapConfig` read from YAML, from which `skymap.RingsSkyMap` builds its geometry."""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import yaml

from .errors import SkyMapError

__all__ = [
    "RingsSkyMapConfig",
    "parse_skymap_config",
    "read_skymap_config",
]

_HASH_VERSION = 1  # bump when the geometry `RingsSkyMap` computes from an unchanged config changes

PositiveInt = Annotated[int, pydantic.Field(gt=0)]


class RingsSkyMapConfig(pydantic.BaseModel):
    """The definition of a rings sky map (after Rubin's ``RingsSkyMap``); frozen, unknown keys refused.

    Everything except ``ra_range``/``dec_range`` defines the tiling (tract ids, centres, WCSs,
    patches); those two only restrict which tracts and patches `register_skymap` writes into a
    registry, so tract and patch ids do not depend on them.
    """

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    num_rings: int = pydantic.Field(
        default=120,
        gt=0,
        description="Declination rings between the polar caps (each cap is one tract). Rings and caps are "
        "180/(num_rings+1) degrees tall, and ring tracts about as wide; 120 gives ~1.49 degree tracts.",
    )
    ra_start: float = pydantic.Field(
        default=0.0,
        ge=0.0,
        lt=360.0,
        description="Right ascension (degrees) of the centre of the first tract of every ring.",
    )
    tract_overlap: float = pydantic.Field(
        default=1.0 / 60.0,
        ge=0.0,
        description="Minimum distance (degrees) by which a tract's pixel grid extends beyond its ring/RA "
        "cell on every side, so that adjacent tracts overlap by at least this much.",
    )
    pixel_scale: float = pydantic.Field(
        default=0.2, gt=0.0, description="Pixel size at each tract's centre (tangent point), arcsec/pixel."
    )
    projection: Literal["TAN"] = pydantic.Field(
        default="TAN", description="Projection of the tract WCSs; only gnomonic 'TAN' is supported."
    )
    tract_builder: Literal["legacy"] = pydantic.Field(
        default="legacy",
        description="How tracts are cut into patches: 'legacy' (Rubin's): the tract bounding box is grown "
        "to a whole number of equal inner patches; outer patch boxes add patch_border, clipped to the tract.",
    )
    patch_inner_dimensions: tuple[PositiveInt, PositiveInt] = pydantic.Field(
        default=(4000, 4000),
        description="Size [x, y] of a patch's inner region in pixels; inner regions tile the tract exactly.",
    )
    patch_border: int = pydantic.Field(
        default=100,
        ge=0,
        description="Pixels a patch's outer box extends beyond its inner box on each side (not past the "
        "tract's edge); neighbouring patches overlap by twice this.",
    )
    ra_range: tuple[float, float] | None = pydantic.Field(
        default=None,
        description="Register only tracts and patches overlapping RA [min, max] (degrees, 0..360; "
        "min > max wraps through 0). None: no RA restriction. Does not change ids.",
    )
    dec_range: tuple[float, float] | None = pydantic.Field(
        default=None,
        description="Register only tracts and patches overlapping Dec [min, max] (degrees, -90..90). "
        "None: no Dec restriction. Does not change ids.",
    )

    @pydantic.field_validator("ra_range")
    @classmethod
    def _check_ra_range(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None:
            if not all(0.0 <= v <= 360.0 for v in value):
                raise ValueError(f"RA bounds must lie in [0, 360] degrees, got {list(value)}")
            if value[0] == value[1]:
                raise ValueError(f"RA range {list(value)} is empty; give [min, max] with min != max")
        return value

    @pydantic.field_validator("dec_range")
    @classmethod
    def _check_dec_range(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not -90.0 <= value[0] < value[1] <= 90.0:
            raise ValueError(f"Dec range must be [min, max] with -90 <= min < max <= 90, got {list(value)}")
        return value

    @pydantic.model_validator(mode="after")
    def _check_overlap(self) -> RingsSkyMapConfig:
        ring_size = 180.0 / (self.num_rings + 1)
        if self.tract_overlap >= ring_size:
            raise ValueError(
                f"tract_overlap {self.tract_overlap} deg must be smaller than the ring size {ring_size:.4g} deg "
                f"(180/(num_rings+1) with num_rings={self.num_rings})"
            )
        return self

    def digest(self) -> str:
        """Hex SHA-256 of the definition (every field, including the restriction); stable across runs."""
        payload = {"class": "RingsSkyMap", "version": _HASH_VERSION, "config": self.model_dump(mode="json")}
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_skymap_config(data: Mapping[str, Any], source: str = "sky map config") -> RingsSkyMapConfig:
    """Validate a mapping of config keys; `SkyMapError` naming ``source``, each bad key and what it expects."""
    try:
        return RingsSkyMapConfig.model_validate(dict(data))
    except pydantic.ValidationError as err:
        raise SkyMapError(f"Invalid sky map config {source}: {_validation_problems(err)}") from None


def read_skymap_config(path: str | Path) -> RingsSkyMapConfig:
    """Read a YAML mapping of `RingsSkyMapConfig` keys; `SkyMapError` names the file and the bad key."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise SkyMapError(f"Cannot read sky map config {path}: {err.strerror or err}.") from err
    except yaml.YAMLError as err:
        raise SkyMapError(f"Sky map config {path} is not valid YAML: {err}") from err
    if not isinstance(data, Mapping):
        raise SkyMapError(
            f"Sky map config {path} must be a mapping of keys ({', '.join(RingsSkyMapConfig.model_fields)}), "
            f"got {type(data).__name__}."
        )
    return parse_skymap_config(data, str(path))


def _validation_problems(err: pydantic.ValidationError) -> str:
    fields = list(RingsSkyMapConfig.model_fields)
    problems = []
    for error in err.errors(include_url=False):
        key = ".".join(str(part) for part in error["loc"])
        top = str(error["loc"][0]) if error["loc"] else ""
        if error["type"] == "extra_forbidden":
            close = difflib.get_close_matches(top, fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"unknown key {key!r}{hint}; valid keys: {', '.join(fields)}")
        elif not key:
            problems.append(str(error["msg"]).removeprefix("Value error, "))
        else:
            doc = RingsSkyMapConfig.model_fields[top].description if top in fields else None
            expected = f" [{top}: {doc}]" if doc else ""
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"key {key!r}: {message}, got {error['input']!r}{expected}")
    return "; ".join(problems)
