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
    ``circle: [ra, dec, radius]`` (degrees) or ``box: [ra_min, ra_max, dec_min, dec_max]`` (degrees).
    Raises ValueError describing the accepted forms otherwise.
    """
    if value is None or isinstance(value, sphgeom.Region):
        return value
    if isinstance(value, bytes | bytearray):
        return sphgeom.Region.decode(bytes(value))
    if isinstance(value, str):
        try:
            return sphgeom.Region.decode(bytes.fromhex(value))
        except ValueError as err:
            raise ValueError(f"region string is not hex-encoded sphgeom bytes: {err}") from None
    if isinstance(value, Mapping) and len(value) == 1:
        ((kind, spec),) = value.items()
        if kind == "polygon":
            return _polygon(spec)
        if kind == "circle":
            ra, dec, radius = (float(v) for v in spec)
            return sphgeom.Circle(_vector(ra, dec), sphgeom.Angle.fromDegrees(radius))
        if kind == "box":
            ra_min, ra_max, dec_min, dec_max = (float(v) for v in spec)
            return sphgeom.Box(
                sphgeom.LonLat.fromDegrees(ra_min, dec_min), sphgeom.LonLat.fromDegrees(ra_max, dec_max)
            )
    raise ValueError(
        f"cannot read region {value!r}: expected an lsst.sphgeom.Region, hex-encoded region bytes, "
        "or one of {polygon: [[ra, dec], ...]}, {circle: [ra, dec, radius]}, {box: [ra_min, ra_max, dec_min, dec_max]} "
        "in degrees"
    )


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


def find_overlaps(
    left: Iterable[tuple[tuple[Any, ...], Any]], right: Iterable[tuple[tuple[Any, ...], Any]]
) -> list[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """Pairs of keys whose regions overlap, from ``(key, region)`` items on each side.

    Candidates come from a shared HTM index; each candidate pair is then tested exactly.
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
                if not (left_region.relate(right_region) & sphgeom.DISJOINT):
                    pairs.append((left_key, right_key))
    return pairs
