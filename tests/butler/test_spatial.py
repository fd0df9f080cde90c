"""Tests of sky-region parsing, encoding and overlap finding (butler.spatial)."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from lsst import sphgeom

from butler.spatial import Region, decode_region, encode_region, find_overlaps, region_from_value

ACCEPTED_FORMS = r"expected an lsst\.sphgeom\.Region, hex-encoded region bytes, or one of \{polygon"

Keyed = list[tuple[tuple[Any, ...], Any]]


def point(ra: float, dec: float) -> Any:
    return sphgeom.UnitVector3d(sphgeom.LonLat.fromDegrees(ra, dec))


def square(ra: float, dec: float, half: float) -> dict[str, list[list[float]]]:
    """A small polygon spec centred on (ra, dec), ``half`` degrees in each direction."""
    return {
        "polygon": [
            [ra - half, dec - half],
            [ra + half, dec - half],
            [ra + half, dec + half],
            [ra - half, dec + half],
        ]
    }


def brute_force(left: Keyed, right: Keyed) -> set[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    return {
        (lk, rk)
        for lk, lr in left
        for rk, rr in right
        if lr is not None and rr is not None and not (lr.relate(rr) & sphgeom.DISJOINT)
    }


# -- region_from_value ------------------------------------------------------------------


def test_polygon() -> None:
    region = region_from_value(square(10.0, 20.0, 0.5))
    assert isinstance(region, sphgeom.ConvexPolygon)
    assert len(region.getVertices()) == 4
    assert region.contains(point(10.0, 20.0))
    assert not region.contains(point(11.0, 20.0))


def test_polygon_orientation_does_not_matter() -> None:
    ccw = square(10.0, 20.0, 0.5)["polygon"]
    cw = list(reversed(ccw))
    assert region_from_value({"polygon": ccw}) == region_from_value({"polygon": cw})


def test_circle() -> None:
    region = region_from_value({"circle": [150.0, 2.0, 0.25]})
    assert isinstance(region, sphgeom.Circle)
    assert region.getOpeningAngle().asDegrees() == pytest.approx(0.25)
    assert region.contains(point(150.0, 2.2))
    assert not region.contains(point(150.0, 2.3))


def test_box() -> None:
    region = region_from_value({"box": [10.0, 12.0, -1.0, 1.0]})
    assert isinstance(region, sphgeom.ConvexPolygon)  # through the corners, so overlap tests are exact
    assert region.contains(point(11.0, 0.0))
    assert not region.contains(point(13.0, 0.0))


def test_box_across_ra_zero() -> None:
    region = region_from_value({"box": [350.0, 10.0, -5.0, 5.0]})
    assert region.contains(point(0.0, 0.0))
    assert region.contains(point(355.0, 0.0))
    assert not region.contains(point(180.0, 0.0))


def test_region_bytes_and_hex() -> None:
    circle = sphgeom.Circle(point(1.0, 2.0), sphgeom.Angle.fromDegrees(0.5))
    data = circle.encode()
    assert region_from_value(data) == circle
    assert region_from_value(bytearray(data)) == circle
    assert region_from_value(bytes(data).hex()) == circle


def test_region_and_none_pass_through() -> None:
    circle = sphgeom.Circle(point(1.0, 2.0), sphgeom.Angle.fromDegrees(0.5))
    assert region_from_value(circle) is circle
    assert region_from_value(None) is None
    assert Region is sphgeom.Region


@pytest.mark.parametrize(
    "value",
    [
        5,
        [1.0, 2.0, 3.0],
        {"hexagon": [[0, 0], [1, 0], [1, 1]]},
        {"circle": [0, 0, 1], "box": [0, 1, 0, 1]},
        {},
        object(),
    ],
    ids=["int", "list", "unknown-kind", "two-kinds", "empty-mapping", "object"],
)
def test_bad_value_names_accepted_forms(value: Any) -> None:
    with pytest.raises(ValueError, match=ACCEPTED_FORMS):
        region_from_value(value)


def test_bad_hex_string() -> None:
    with pytest.raises(ValueError, match="cannot read region"):
        region_from_value("not hex")


@pytest.mark.parametrize(
    ("vertices", "message"),
    [
        ([[0, 0], [1, 0]], "a polygon needs at least 3 vertices, got 2"),
        ([[0, 0], [1, 0], [2, 0]], "invalid polygon"),
        ([[0, 0], [0, 0], [0, 0]], "invalid polygon"),
        ([[0, 0, 0], [1, 0, 0], [1, 1, 0]], "invalid polygon"),
    ],
    ids=["two-vertices", "collinear", "coincident", "three-coordinates"],
)
def test_bad_polygon(vertices: list[list[float]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        region_from_value({"polygon": vertices})


@pytest.mark.parametrize(
    "value",
    [{"circle": [0, 0]}, {"circle": 5}, {"box": [0, 1]}, {"polygon": 5}],
    ids=["circle-two-numbers", "circle-scalar", "box-two-numbers", "polygon-scalar"],
)
def test_malformed_spec_names_accepted_forms(value: Any) -> None:
    with pytest.raises(ValueError, match=r"circle: \[ra, dec, radius\]"):
        region_from_value(value)


@pytest.mark.parametrize("value", [b"\x00\x01", "00ff"], ids=["bytes", "hex"])
def test_undecodable_bytes_raise_value_error(value: Any) -> None:
    with pytest.raises(ValueError, match="region"):
        region_from_value(value)


# -- encoding -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        square(45.0, -30.0, 0.2),
        {"circle": [359.9, 0.0, 0.1]},
        {"box": [350.0, 10.0, 80.0, 90.0]},
        square(0.0, 89.5, 0.3),
    ],
    ids=["polygon", "circle", "box", "polar-polygon"],
)
def test_encode_decode_round_trip(value: dict[str, Any]) -> None:
    region = region_from_value(value)
    data = encode_region(region)
    assert isinstance(data, bytes)
    decoded = decode_region(data)
    assert decoded == region
    assert type(decoded) is type(region)
    assert encode_region(decoded) == data


def test_encode_decode_none() -> None:
    assert encode_region(None) is None
    assert decode_region(None) is None


# -- find_overlaps on a small grid -------------------------------------------------------------


@pytest.fixture
def grid() -> Keyed:
    """One-degree cells across RA 0/360 near the equator, plus four cells around the north pole."""
    cells: Keyed = []
    for ra in (357.5, 358.5, 359.5, 0.5, 1.5, 2.5):
        for dec in (-0.5, 0.5):
            cells.append((("eq", ra, dec), region_from_value(square(ra, dec, 0.5))))
    for ra in (0.0, 90.0, 180.0, 270.0):
        corners = [[ra, 88.0], [ra + 90.0, 88.0], [ra + 90.0, 90.0]]
        cells.append((("pole", ra), region_from_value({"polygon": corners})))
    cells.append((("empty",), None))
    return cells


def test_find_overlaps_across_ra_zero(grid: Keyed) -> None:
    left = [(("wrap",), region_from_value({"circle": [0.0, 0.2, 0.3]}))]
    pairs = find_overlaps(left, grid)
    assert sorted(r for _, r in pairs) == sorted(
        [("eq", 359.5, -0.5), ("eq", 359.5, 0.5), ("eq", 0.5, -0.5), ("eq", 0.5, 0.5)]
    )
    assert set(pairs) == brute_force(left, grid)


def test_find_overlaps_inside_one_cell(grid: Keyed) -> None:
    left = [(("small",), region_from_value(square(1.5, 0.5, 0.1)))]
    assert find_overlaps(left, grid) == [(("small",), ("eq", 1.5, 0.5))]


def test_find_overlaps_disjoint(grid: Keyed) -> None:
    left = [
        (("far",), region_from_value({"circle": [180.0, -45.0, 1.0]})),
        (("near-miss",), region_from_value(square(4.0, 0.0, 0.4))),
        (("no-region",), None),
    ]
    assert find_overlaps(left, grid) == []


def test_find_overlaps_near_pole(grid: Keyed) -> None:
    cap = region_from_value({"circle": [123.0, 90.0, 0.5]})
    pairs = find_overlaps([(("cap",), cap)], grid)
    assert sorted(r for _, r in pairs) == [("pole", 0.0), ("pole", 90.0), ("pole", 180.0), ("pole", 270.0)]
    edge = region_from_value(square(135.0, 88.5, 0.2))
    assert find_overlaps([(("edge",), edge)], grid) == [(("edge",), ("pole", 90.0))]


def test_find_overlaps_empty_inputs(grid: Keyed) -> None:
    assert find_overlaps([], grid) == []
    assert find_overlaps(grid, []) == []


# -- find_overlaps against brute force ------------------------------------------------------------

AREAS = ("seam", "north", "south", "field")


def random_centre(rng: random.Random, area: str) -> tuple[float, float]:
    """A centre on the RA=0/360 seam, at a pole, or in an ordinary small field."""
    if area == "seam":
        return rng.uniform(-2.0, 2.0) % 360.0, rng.uniform(-2.0, 2.0)
    if area == "north":
        return rng.uniform(0.0, 360.0), rng.uniform(88.0, 90.0)
    if area == "south":
        return rng.uniform(0.0, 360.0), rng.uniform(-90.0, -88.5)
    return rng.uniform(150.0, 153.0), rng.uniform(1.0, 4.0)


def random_polygon(rng: random.Random, ra: float, dec: float, radius: float) -> Any:
    """A convex polygon of 3-6 vertices on a small circle around (ra, dec), all in degrees."""
    # Built in 3-D so that the poles and RA=0 are no special case.
    centre = point(ra, dec)
    east = sphgeom.UnitVector3d.orthogonalTo(centre)
    north = sphgeom.UnitVector3d(centre.cross(east))
    r = math.radians(radius)
    vertices = []
    for theta in sorted(rng.uniform(0.0, 2.0 * math.pi) for _ in range(rng.randint(3, 6))):
        v = centre * math.cos(r) + (east * math.cos(theta) + north * math.sin(theta)) * math.sin(r)
        lonlat = sphgeom.LonLat(sphgeom.UnitVector3d(v))
        vertices.append([lonlat.getLon().asDegrees(), lonlat.getLat().asDegrees()])
    try:
        return region_from_value({"polygon": vertices})
    except ValueError:  # nearly coincident random vertices
        return region_from_value({"circle": [ra, dec, radius]})


def random_regions(rng: random.Random, side: str, count: int, *, boxes: bool) -> Keyed:
    """``count`` small random regions, cycling through `AREAS`; keys are (side, area, index)."""
    items: Keyed = []
    for i in range(count):
        area = AREAS[i % len(AREAS)]
        ra, dec = random_centre(rng, area)
        size = rng.uniform(0.02, 1.0)
        kind = rng.random()
        if boxes and kind < 0.25:
            half = size / 2
            spec = {
                "box": [
                    (ra - half) % 360.0,
                    (ra + half) % 360.0,
                    max(dec - half, -90.0),
                    min(dec + half, 90.0),
                ]
            }
            region = region_from_value(spec)
        elif kind < 0.6:
            region = random_polygon(rng, ra, dec, size)
        else:
            region = region_from_value({"circle": [ra, dec, size]})
        items.append(((side, area, i), region))
    return items


def test_find_overlaps_matches_brute_force() -> None:
    # Polygons and circles only: for these, relate() decides overlap exactly.
    rng = random.Random(20240101)
    left = random_regions(rng, "L", 300, boxes=False)
    right = random_regions(rng, "R", 200, boxes=False)
    expected = brute_force(left, right)
    pairs = find_overlaps(left, right)
    assert len(pairs) == len(set(pairs)), "a pair was reported twice"
    assert set(pairs) == expected
    # Dense enough to be a real test in every hard area, sparse enough that the index has work to do.
    for area in AREAS:
        assert sum(1 for lk, rk in expected if lk[1] == rk[1] == area) >= 20, area
    assert len(expected) < len(left) * len(right) // 10


def test_find_overlaps_with_boxes_is_exact() -> None:
    # Boxes become polygons through their corners, so every candidate pair is decided exactly.
    rng = random.Random(42)
    left = random_regions(rng, "L", 300, boxes=True)
    right = random_regions(rng, "R", 200, boxes=True)
    regions = dict(left) | dict(right)
    candidates = brute_force(left, right)
    known = {(lk, rk) for lk, rk in candidates if regions[lk].overlaps(regions[rk]) is True}
    assert len(known) > 500
    assert set(find_overlaps(left, right)) == known


def test_find_overlaps_box_polygon_false_positive() -> None:
    diamond = region_from_value({"polygon": [[10.0, -0.5], [10.5, 0.0], [10.0, 0.5], [9.5, 0.0]]})
    box = region_from_value({"box": [10.3, 10.45, 0.3, 0.45]})  # in the diamond's bounding box, not in it
    samples = [point(10.3 + 0.15 * i / 10, 0.3 + 0.15 * j / 10) for i in range(11) for j in range(11)]
    assert not any(diamond.contains(p) for p in samples)
    assert not any(box.contains(v) for v in diamond.getVertices())
    assert find_overlaps([(("diamond",), diamond)], [(("box",), box)]) == []
