"""Rings sky maps: tiling geometry, patch WCSs, restriction, config hash, and registration in a repository."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import pytest
import yaml
from astropy.wcs import WCS
from databases import DatabaseLocation
from lsst import sphgeom

from butler import Registry
from butler.butler import Butler
from butler.repository import create_repository
from graph.errors import SkyMapError
from graph.skymap import RingsSkyMap
from graph.skymap_config import RingsSkyMapConfig, parse_skymap_config, read_skymap_config
from graph.skymap_registration import SKYMAP_DATASET_TYPE, load_skymap, register_skymap

DEMO_CONFIG = Path(__file__).parents[2] / "submit_templates" / "examples" / "demo_skymap.yaml"

# A coarse map (20-degree rings, 60"/px) so that whole tracts are cheap to check patch by patch;
# non-square patches catch x/y mix-ups.
COARSE = RingsSkyMapConfig(
    num_rings=8, tract_overlap=0.5, pixel_scale=60.0, patch_inner_dimensions=(200, 150), patch_border=10
)


def vector(ra: float, dec: float) -> sphgeom.UnitVector3d:
    return sphgeom.UnitVector3d(sphgeom.LonLat.fromDegrees(ra, dec))


def random_sky(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Points uniform on the sphere, (RA, Dec) in degrees."""
    ra = rng.uniform(0.0, 360.0, count)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, count)))
    return ra, dec


def box_degrees(box: sphgeom.Box) -> tuple[float, float, float, float]:
    lon, lat = box.getLon(), box.getLat()
    return (
        lon.getA().asDegrees(),
        lon.getB().asDegrees(),
        lat.getA().asDegrees(),
        lat.getB().asDegrees(),
    )


def points_in_box(rng: np.random.Generator, box: sphgeom.Box, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Random (RA, Dec) degrees inside a lon/lat box (uniform in RA and sin(Dec))."""
    ra_min, ra_max, dec_min, dec_max = box_degrees(box)
    if box.getLon().isFull():
        ra_min, ra_max = 0.0, 360.0
    elif ra_max < ra_min:
        ra_max += 360.0
    ra = rng.uniform(ra_min, ra_max, count) % 360.0
    sin_dec = rng.uniform(math.sin(math.radians(dec_min)), math.sin(math.radians(dec_max)), count)
    return ra, np.degrees(np.arcsin(sin_dec))


# -- tiling --------------------------------------------------------------------------------------------


def test_tract_numbering_matches_rubin_rings() -> None:
    # Rubin's 120-ring LSST sky maps (e.g. lsst_cells_v1) have 18938 tracts.
    assert RingsSkyMap(RingsSkyMapConfig(num_rings=120)).num_tracts == 18938
    skymap = RingsSkyMap(COARSE)
    assert skymap.tract_center(0) == (0.0, -90.0)
    assert skymap.tract_center(skymap.num_tracts - 1) == (0.0, 90.0)
    assert skymap.tract_center(1) == (0.0, pytest.approx(-70.0))  # first ring starts at ra_start
    for tract in range(skymap.num_tracts):
        ra, dec = skymap.tract_center(tract)
        assert skymap.find_tract(ra, dec) == tract
        assert skymap.tract_inner_region(tract).contains(vector(ra, dec))
    first_ring = skymap.tract_inner_region(1)  # centred on RA 0: its cell wraps through 0
    assert skymap.find_tract(359.9, -70.0) == skymap.find_tract(0.1, -70.0) == 1
    assert first_ring.contains(vector(359.9, -70.0)) and not first_ring.contains(vector(180.0, -70.0))
    with pytest.raises(SkyMapError, match="No tract 17 in this sky map: ids run from 0 to 15"):
        RingsSkyMap(RingsSkyMapConfig(num_rings=2, tract_overlap=0)).tract_center(17)


def test_random_points_lie_in_the_tract_and_patch_found_for_them() -> None:
    skymap = RingsSkyMap(COARSE)
    rng = np.random.default_rng(1)
    for ra, dec in zip(*random_sky(rng, 400), strict=True):
        point = vector(ra, dec)
        tract, patch = skymap.find_tract_patch(ra, dec)
        assert tract == skymap.find_tract(ra, dec)
        assert skymap.tract_inner_region(tract).contains(point)
        assert skymap.tract_region(tract).contains(point)
        assert skymap.patch_inner_region(tract, patch).contains(point)
        assert skymap.patch_outer_region(tract, patch).contains(point)


@pytest.mark.parametrize("which", ["south cap", "low ring", "equatorial ring", "high ring"])
def test_patch_inner_regions_tile_the_tract(which: str) -> None:
    skymap = RingsSkyMap(COARSE)
    tract = {
        "south cap": 0,
        "low ring": skymap.find_tract(33.0, -65.0),
        "equatorial ring": skymap.find_tract(181.0, 1.0),
        "high ring": skymap.find_tract(300.0, 72.0),
    }[which]
    rng = np.random.default_rng(2)
    ra, dec = points_in_box(rng, skymap.tract_inner_region(tract), 300)
    # Also points anywhere in the tract's pixel box, out to its edges (the overlap with neighbours).
    box = skymap.tract_bbox(tract)
    x = rng.uniform(-0.5, box.width - 0.5, 300)
    y = rng.uniform(-0.5, box.height - 0.5, 300)
    ra_px, dec_px = skymap.tract_wcs(tract).pixel_to_world_values(x, y)
    ra, dec = np.concatenate([ra, ra_px]), np.concatenate([dec, dec_px])
    lon, lat = np.radians(ra), np.radians(dec)
    assert np.all(skymap.tract_region(tract).contains(lon, lat))
    polygons = skymap.patch_regions(tract, outer=False)
    nx, ny = skymap.num_patches(tract)
    assert len(polygons) == nx * ny
    hits = np.array([polygon.contains(lon, lat) for polygon in polygons])
    assert np.all(hits.sum(axis=0) == 1)
    for i in np.linspace(0, len(ra) - 1, 25).astype(int):  # find_tract_patch agrees with the regions
        if skymap.find_tract(ra[i], dec[i]) == tract:
            assert skymap.find_tract_patch(ra[i], dec[i]) == (tract, int(np.argmax(hits[:, i])))


def test_tracts_extend_beyond_their_cell_by_the_overlap() -> None:
    skymap = RingsSkyMap(COARSE)
    for tract in (0, 5, skymap.find_tract(181.0, 1.0), skymap.num_tracts - 2):
        ra_min, ra_max, dec_min, dec_max = box_degrees(skymap.tract_inner_region(tract))
        reach = 0.95 * COARSE.tract_overlap
        ra_mid = skymap.tract_center(tract)[0]
        outside = [(ra_mid, dec_max + reach)] if dec_max < 90 else []
        outside += [(ra_mid, dec_min - reach)] if dec_min > -90 else []
        if not skymap.tract_inner_region(tract).getLon().isFull():
            dec_mid = 0.5 * (dec_min + dec_max)
            stretch = reach / math.cos(math.radians(dec_mid))
            outside += [(ra_min - stretch, dec_mid), (ra_max + stretch, dec_mid)]
        region = skymap.tract_region(tract)
        assert outside and all(region.contains(vector(ra, dec)) for ra, dec in outside)


def test_patch_layout_ids_and_wcs() -> None:
    skymap = RingsSkyMap(COARSE)
    tract = skymap.find_tract(181.0, 1.0)
    nx, ny = skymap.num_patches(tract)
    box = skymap.tract_bbox(tract)
    assert (box.x_min, box.y_min, box.width, box.height) == (0, 0, nx * 200, ny * 150)
    corner, middle = skymap.patch_id(tract, 0, 0), skymap.patch_id(tract, 2, 3)
    assert (corner, middle) == (0, 3 * nx + 2)
    assert skymap.patch_cell(tract, middle) == (2, 3)
    assert skymap.patch_shape(tract, corner) == (150 + 10, 200 + 10)  # clipped at the tract edge
    assert skymap.patch_shape(tract, middle) == (150 + 20, 200 + 20)
    outer, inner = skymap.patch_bbox(tract, middle), skymap.patch_inner_bbox(tract, middle)
    assert (outer.x_min, outer.y_min, inner.x_min, inner.y_min) == (390, 440, 400, 450)
    rows, columns = skymap.patch_inner_slices(tract, middle)
    assert np.zeros(outer.shape)[rows, columns].shape == (150, 200)
    tract_wcs, patch_wcs = skymap.tract_wcs(tract), skymap.patch_wcs(tract, middle)
    assert patch_wcs.pixel_shape == (220, 170)
    i, j = np.array([0.0, 13.0, 219.0]), np.array([0.0, 101.0, 169.0])
    ra, dec = patch_wcs.pixel_to_world_values(i, j)
    np.testing.assert_allclose(np.array(tract_wcs.pixel_to_world_values(i + 390, j + 440)), [ra, dec])
    np.testing.assert_allclose(np.array(patch_wcs.world_to_pixel_values(ra, dec)), [i, j], atol=1e-6)
    # The tract centre is the tangent point; north up, east left, pixel_scale at the centre.
    np.testing.assert_allclose(tract_wcs.wcs.crval, skymap.tract_center(tract))
    np.testing.assert_allclose(tract_wcs.wcs.cd, [[-60 / 3600, 0], [0, 60 / 3600]])
    with warnings.catch_warnings():  # the cards tasks keep in Image.metadata read back cleanly
        warnings.simplefilter("error")
        copy = WCS(patch_wcs.to_header())
    np.testing.assert_allclose(np.array(copy.pixel_to_world_values(i, j)), [ra, dec])
    for bad in [lambda: skymap.patch_cell(tract, nx * ny), lambda: skymap.patch_id(tract, nx, 0)]:
        with pytest.raises(SkyMapError, match=f"Tract {tract} has"):
            bad()


def test_patches_overlapping_matches_brute_force() -> None:
    skymap = RingsSkyMap(COARSE)
    regions = [
        sphgeom.Circle(vector(181.0, 1.0), sphgeom.Angle.fromDegrees(3.0)),
        sphgeom.Circle(vector(359.5, 30.0), sphgeom.Angle.fromDegrees(12.0)),  # across RA 0, several tracts
        sphgeom.Circle(vector(10.0, 89.0), sphgeom.Angle.fromDegrees(4.0)),  # around the pole
        sphgeom.ConvexPolygon.convexHull([vector(40, -30), vector(41, -30), vector(41, -29)]),
    ]
    for region in regions:
        expected = [
            (tract, patch)
            for tract in range(skymap.num_tracts)
            for patch, polygon in enumerate(skymap.patch_regions(tract))
            if polygon.overlaps(region)
        ]
        assert skymap.patches_overlapping(region) == expected
        assert expected


def test_fine_map_is_lazy_and_fast() -> None:
    skymap = read_and_build(DEMO_CONFIG)
    assert skymap._layouts == {}  # nothing computed at construction
    tract, patch = skymap.find_tract_patch(150.0, 2.2)
    assert tract == 9813 and set(skymap._layouts) == {61}
    assert skymap.patch_inner_region(tract, patch).contains(vector(150.0, 2.2))


def read_and_build(path: Path) -> RingsSkyMap:
    return RingsSkyMap.from_config(read_skymap_config(path))


# -- restriction, demo config, hash ----------------------------------------------------------------------


def test_restriction_limits_registered_patches_not_ids() -> None:
    restricted = RingsSkyMap(COARSE.model_copy(update={"ra_range": (350.0, 15.0), "dec_range": (-5.0, 25.0)}))
    full = RingsSkyMap(COARSE)
    assert restricted.num_tracts == full.num_tracts
    assert [restricted.tract_center(t) for t in range(full.num_tracts)] == [
        full.tract_center(t) for t in range(full.num_tracts)
    ]
    assert restricted.hash != full.hash
    found = restricted.registered_patches()
    box = sphgeom.Box.fromDegrees(350.0, -5.0, 15.0, 25.0)
    expected = {
        (tract, patch)
        for tract in range(full.num_tracts)
        for patch, polygon in enumerate(full.patch_regions(tract))
        if not polygon.relate(box) & sphgeom.DISJOINT
    }
    assert {(t, p) for t, patches in found.items() for p in patches} == expected
    assert {full.find_tract(0.0, 10.0), full.find_tract(355.0, 10.0), full.find_tract(10.0, 0.0)} <= set(
        found
    )
    assert full.find_tract(180.0, 10.0) not in found
    tract = next(iter(found))
    patch, polygon = next(iter(found[tract].items()))
    assert polygon == full.patch_outer_region(tract, patch)


def test_demo_config_registers_a_few_hundred_patches_around_the_demo_field() -> None:
    skymap = read_and_build(DEMO_CONFIG)
    found = skymap.registered_patches()
    assert list(found) == [9813]
    assert 100 <= len(found[9813]) <= 300
    half = (2 * 256 + 10) * 0.4 / 3600 / 2  # the 2x2 DemoCam focal plane
    corners = [
        (150 + sx * (0.1 + half), 2.2 + sy * (0.1 + half)) for sx, sy in [(-1, -1), (1, -1), (1, 1), (-1, 1)]
    ]
    field = sphgeom.ConvexPolygon.convexHull([vector(*c) for c in corners])
    overlapping = skymap.patches_overlapping(field)
    assert len(overlapping) > 10
    assert {p for _, p in overlapping} <= set(found[9813])
    assert skymap.patch_shape(9813, overlapping[0][1]) == (340, 340)


def test_hash_is_stable_and_covers_every_key() -> None:
    config = RingsSkyMapConfig(num_rings=120, pixel_scale=0.4, patch_inner_dimensions=(300, 300))
    # Changing this value breaks re-registration of existing repositories: only on purpose.
    assert config.digest() == "133483f0a447e2a4bf80d0f4b07521ffa5e15c03a0dd25f4a3429001d9a3a1a5"
    assert RingsSkyMap(config).hash == config.digest()
    for key, value in [
        ("num_rings", 121),
        ("ra_start", 1.0),
        ("tract_overlap", 0.02),
        ("pixel_scale", 0.41),
        ("patch_inner_dimensions", (300, 301)),
        ("patch_border", 21),
        ("ra_range", (1.0, 2.0)),
        ("dec_range", (1.0, 2.0)),
    ]:
        assert config.model_copy(update={key: value}).digest() != config.digest(), key
    skymap = RingsSkyMap(config)
    assert RingsSkyMap.from_config(skymap.to_config()) == skymap
    assert RingsSkyMap.from_config(yaml.safe_load(yaml.safe_dump(config.model_dump(mode="json")))) == skymap
    assert load_skymap(config) == skymap and load_skymap(skymap) is skymap


# -- config validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"num_ring": 3},
            "unknown key 'num_ring' \\(did you mean 'num_rings'\\?\\); valid keys: num_rings, ",
        ),
        (
            {"pixel_scale": "fast"},
            "key 'pixel_scale': Input should be a valid number.*got 'fast'.*arcsec/pixel",
        ),
        ({"patch_inner_dimensions": [300]}, "key 'patch_inner_dimensions.1': Field required, got \\[300\\]"),
        (
            {"patch_inner_dimensions": [300, 0]},
            "key 'patch_inner_dimensions.1': Input should be greater than 0",
        ),
        ({"projection": "SIN"}, "key 'projection': Input should be 'TAN'"),
        ({"ra_range": [10, 10]}, "RA range \\[10.0, 10.0\\] is empty"),
        ({"dec_range": [5, -5]}, "Dec range must be \\[min, max\\]"),
        (
            {"num_rings": 10, "tract_overlap": 20},
            "tract_overlap 20.0 deg must be smaller than the ring size 16.36",
        ),
        ({"pixel_scale": float("inf")}, "key 'pixel_scale'"),
    ],
)
def test_invalid_configs_are_named(data: dict[str, Any], message: str) -> None:
    with pytest.raises(SkyMapError, match="Invalid sky map config here.yaml: " + ".*" + message):
        parse_skymap_config(data, "here.yaml")


def test_config_is_frozen_and_files_are_checked(tmp_path: Path) -> None:
    config = RingsSkyMapConfig()
    with pytest.raises(pydantic.ValidationError):
        config.num_rings = 3  # type: ignore[misc]
    with pytest.raises(SkyMapError, match="Cannot read sky map config .*missing.yaml: No such file"):
        read_skymap_config(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("num_rings: [1\n")
    with pytest.raises(SkyMapError, match="bad.yaml is not valid YAML"):
        read_skymap_config(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(SkyMapError, match="list.yaml must be a mapping of keys \\(num_rings, .*got list"):
        read_skymap_config(tmp_path / "list.yaml")
    with pytest.raises(SkyMapError, match="too far for a TAN projection"):
        RingsSkyMap(RingsSkyMapConfig(num_rings=1, tract_overlap=30)).tract_bbox(1)


# -- registration -------------------------------------------------------------------------------------------

SMALL = COARSE.model_copy(update={"ra_range": (170.0, 190.0), "dec_range": (-8.0, 8.0)})


def make_repo(database: DatabaseLocation, tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    create_repository(repo, db=database.url, namespace=database.namespace)
    return repo


def counts(registry: Registry, name: str) -> tuple[int, int, int]:
    return (
        len(registry.query_dimension_records("skymap", data_id={"skymap": name})),
        len(registry.query_dimension_records("tract", data_id={"skymap": name})),
        len(registry.query_dimension_records("patch", data_id={"skymap": name})),
    )


def test_register_skymap_is_complete_and_idempotent(database: DatabaseLocation, tmp_path: Path) -> None:
    repo = make_repo(database, tmp_path)
    skymap = RingsSkyMap(SMALL)
    expected = skymap.registered_patches()
    with Butler(repo) as butler:
        summary = register_skymap(butler, "coarse", SMALL)
        assert summary.inserted and summary.collection == "skymaps" and summary.hash == skymap.hash
        assert summary.tract_ids == tuple(expected)
        assert summary.patches == sum(len(p) for p in expected.values())
        registry = butler.registry
        assert counts(registry, "coarse") == (1, len(expected), summary.patches)
        (record,) = registry.query_dimension_records("skymap", data_id={"skymap": "coarse"})
        assert (record.hash, record.tract_max) == (skymap.hash, skymap.num_tracts)
        assert (record.patch_nx_max, record.patch_ny_max) == skymap.patch_count_max()
        tract = summary.tract_ids[0]
        patches = registry.query_dimension_records("patch", data_id={"skymap": "coarse", "tract": tract})
        patch = patches[0]
        assert (patch.cell_x, patch.cell_y) == skymap.patch_cell(tract, patch.id)
        assert patch.region.encode() == skymap.patch_outer_region(tract, patch.id).encode()
        (tract_record,) = registry.query_dimension_records(
            "tract", data_id={"skymap": "coarse", "tract": tract}
        )
        assert tract_record.region.encode() == skymap.tract_region(tract).encode()
        assert butler.get(SKYMAP_DATASET_TYPE, {"skymap": "coarse"}, collections="skymaps") == SMALL
        assert load_skymap(butler, "coarse") == skymap
        assert registry.get_dataset_type(SKYMAP_DATASET_TYPE).storage_class_name == "Config"

        again = register_skymap(butler, "coarse", skymap)
        assert not again.inserted and again.tract_ids == () and again.patches == 0
        assert counts(registry, "coarse") == (1, len(expected), summary.patches)
        assert len(registry.query_datasets(SKYMAP_DATASET_TYPE, "skymaps")) == 1

        other = SMALL.model_copy(update={"pixel_scale": 30.0, "patch_border": 0})
        with pytest.raises(
            SkyMapError,
            match="'coarse' is already registered with a different definition "
            "\\(pixel_scale: 60.0 registered, 30.0 given, patch_border: 10 registered, 0 given\\)",
        ):
            register_skymap(butler, "coarse", other)
        register_skymap(butler, "coarse-fine", other)  # the same tiling under another name is fine
        assert counts(registry, "coarse")[2] == summary.patches
        with pytest.raises(SkyMapError, match="No skyMap dataset for sky map 'nope'"):
            load_skymap(butler, "nope")


def test_failed_registration_leaves_nothing(
    database: DatabaseLocation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(database, tmp_path)
    with Butler(repo) as butler:

        def broken_put(*args: Any, **kwargs: Any) -> None:
            raise OSError("disk full")

        monkeypatch.setattr(butler, "put", broken_put)
        with pytest.raises(OSError, match="disk full"):
            register_skymap(butler, "coarse", SMALL)
        assert counts(butler.registry, "coarse") == (0, 0, 0)
        assert not butler.registry.has_collection("skymaps")
        monkeypatch.undo()
        assert register_skymap(butler, "coarse", SMALL).inserted


def test_visits_join_the_patches_they_overlap(database: DatabaseLocation, tmp_path: Path) -> None:
    repo = make_repo(database, tmp_path)
    skymap = read_and_build(DEMO_CONFIG)
    inst = {"instrument": "DemoCam"}
    corners = [(149.98, 2.18), (150.03, 2.18), (150.03, 2.22), (149.98, 2.22)]
    with Butler(repo) as butler:
        registry = butler.registry
        register_skymap(butler, "demo-rings", skymap)
        registry.insert_dimension_records("instrument", [{"name": "DemoCam"}])
        registry.insert_dimension_records("band", [{"name": "g"}])
        registry.insert_dimension_records("physical_filter", [inst | {"name": "g_demo", "band": "g"}])
        registry.insert_dimension_records("day_obs", [inst | {"id": 20240301}])
        registry.insert_dimension_records("detector", [inst | {"id": 0, "full_name": "S00"}])
        registry.insert_dimension_records(
            "visit", [inst | {"id": 1, "physical_filter": "g_demo", "day_obs": 20240301, "name": "v1"}]
        )
        registry.insert_dimension_records(
            "visit_detector_region", [inst | {"visit": 1, "detector": 0, "region": {"polygon": corners}}]
        )
        found = registry.query_data_ids(["visit", "patch"], data_id=inst | {"skymap": "demo-rings"})
    region = sphgeom.ConvexPolygon.convexHull([vector(*c) for c in corners])
    expected = skymap.patches_overlapping(region)
    assert sorted((d["tract"], d["patch"]) for d in found) == expected
    assert len(expected) >= 4 and all(d["visit"] == 1 for d in found)
