"""Sky regions (lsst.sphgeom): parsing from config, encoding for the database, and overlap tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lsst import sphgeom

__all__ = ["Region", "decode_region", "encode_region", "find_overlaps", "region_from_value"]

Region = sphgeom.Region
"""The region type records hold."""

# HTM level used to pre-select overlap candidates: trixels about 0.6 degrees across,
# comparable to a patch or a detector footprint.
_INDEX_LEVEL = 7
_INDEX = sphgeom.HtmPixelization(_INDEX_LEVEL)
_MAX_RANGES = 64


def _vector(lon_deg: float, lat_deg: float) -> Any:
    return sphgeom.UnitVector3d(sphgeom.LonLat.fromDegrees(float(lon_deg), float(lat_deg)))


def region_from_value(value: Any) -> Any:
    """Turn a region given in a record into an `lsst.sphgeom.Region`.

    Accepts a Region, its encoded bytes or their hex string, or a mapping with one of
    ``polygon: [[ra, dec], ...]`` (degrees, convex, counter-clockwise or clockwise),
    ``circle: [ra, dec, radius]`` (degrees) or ``box: [ra_min, ra_max, dec_min, dec_max]`` (degrees; the polygon through its corners).
    Raises ValueError describing the accepted forms otherwise.
    """
    if value is None or isinstance(value, sphgeom.Region):
        return value
    try:
        region = _parse_region(value)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"cannot read region {value!r} ({err}): {_ACCEPTED_FORMS}") from None
    if region is None:
        raise ValueError(f"cannot read region {value!r}: {_ACCEPTED_FORMS}")
    return region


_ACCEPTED_FORMS = (
    "expected an lsst.sphgeom.Region, hex-encoded region bytes, or one of {polygon: [[ra, dec], ...]}, "
    "{circle: [ra, dec, radius]}, {box: [ra_min, ra_max, dec_min, dec_max]} in degrees"
)


def _parse_region(value: Any) -> Any:
    """The region ``value`` describes, None if it is of no accepted form; parse errors propagate."""
    if isinstance(value, bytes | bytearray):
        return sphgeom.Region.decode(bytes(value))
    if isinstance(value, str):
        return sphgeom.Region.decode(bytes.fromhex(value))
    if isinstance(value, Mapping) and len(value) == 1:
        ((kind, spec),) = value.items()
        if kind == "polygon":
            return _polygon(spec)
        if kind == "circle":
            ra, dec, radius = (float(v) for v in spec)
            return sphgeom.Circle(_vector(ra, dec), sphgeom.Angle.fromDegrees(radius))
        if kind == "box":
            # The convex polygon through the four corners (great-circle edges), so that overlap
            # tests with other polygons are exact; sphgeom's Box-polygon test is only conservative.
            ra_min, ra_max, dec_min, dec_max = (float(v) for v in spec)
            return _polygon([[ra_min, dec_min], [ra_max, dec_min], [ra_max, dec_max], [ra_min, dec_max]])
    return None


def _polygon(vertices: Sequence[Sequence[float]]) -> Any:
    if len(vertices) < 3:
        raise ValueError(f"a polygon needs at least 3 vertices, got {len(vertices)}")
    try:
        return sphgeom.ConvexPolygon.convexHull([_vector(ra, dec) for ra, dec in vertices])
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"invalid polygon {vertices!r}: {err}") from None


def encode_region(region: Any) -> bytes | None:
    """Bytes stored in the registry's ``region`` column."""
    return None if region is None else bytes(region.encode())


def decode_region(data: bytes | None) -> Any:
    """Inverse of `encode_region`."""
    return None if data is None else sphgeom.Region.decode(bytes(data))


def _index_pixels(region: Any) -> list[int]:
    pixels: list[int] = []
    for begin, end in _INDEX.envelope(region, _MAX_RANGES):
        pixels.extend(range(begin, end))
    return pixels


def _may_overlap(a: Any, b: Any) -> bool:
    """Exact overlap test where sphgeom can decide it; otherwise the conservative `relate` answer."""
    decided = a.overlaps(b)
    if decided is not None:
        return bool(decided)
    return not (a.relate(b) & sphgeom.DISJOINT)


def find_overlaps(
    left: Iterable[tuple[tuple[Any, ...], Any]], right: Iterable[tuple[tuple[Any, ...], Any]]
) -> list[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """Pairs of keys whose regions overlap, from ``(key, region)`` items on each side.

    Candidates come from a shared HTM index; each candidate pair is then tested exactly where sphgeom can decide it (conservatively otherwise).
    """
    by_pixel: dict[int, list[tuple[tuple[Any, ...], Any]]] = {}
    for key, region in right:
        if region is None:
            continue
        for pixel in _index_pixels(region):
            by_pixel.setdefault(pixel, []).append((key, region))
    pairs: list[tuple[tuple[Any, ...], tuple[Any, ...]]] = []
    for left_key, left_region in left:
        if left_region is None:
            continue
        seen: set[tuple[Any, ...]] = set()
        for pixel in _index_pixels(left_region):
            for right_key, right_region in by_pixel.get(pixel, ()):
                if right_key in seen:
                    continue
                seen.add(right_key)
                if _may_overlap(left_region, right_region):
                    pairs.append((left_key, right_key))
    return pairs
