"""Sky map geometry: the tract/patch tiling (from a `RingsSkyMapConfig`) under warps and coadds (`skymap_registration` stores it)."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from astropy.wcs import WCS
from lsst import sphgeom

from .errors import SkyMapError
from .skymap_config import RingsSkyMapConfig, parse_skymap_config

__all__ = [
    "PixelBox",
    "RingsSkyMap",
]

_MAX_TANGENT_ANGLE = math.radians(80.0)  # TAN projection is refused beyond this from a tract centre
_EDGE_SAMPLES = 33  # points per cell edge when bounding a tract (odd: includes the edge middle)
_OVERLAP_BEARINGS = 16  # directions in which each edge point is pushed out by the tract overlap
_CIRCLE_SAMPLES = 64  # points on a region's bounding circle when choosing candidate patches


@dataclass(frozen=True, slots=True)
class PixelBox:
    """A rectangle of whole pixels in a tract's pixel grid.

    Pixel ``(x, y)`` has its centre at integer coordinates and covers ``[x - 0.5, x + 0.5)``, as in
    astropy's 0-based pixel convention; a numpy image of the box has shape ``(height, width)`` and
    its element ``[j, i]`` is pixel ``(x_min + i, y_min + j)``.
    """

    x_min: int
    """First pixel column (inclusive)."""
    y_min: int
    """First pixel row (inclusive)."""
    width: int
    """Number of columns (pixels along x)."""
    height: int
    """Number of rows (pixels along y)."""

    @property
    def x_end(self) -> int:
        """One past the last column."""
        return self.x_min + self.width

    @property
    def y_end(self) -> int:
        """One past the last row."""
        return self.y_min + self.height

    @property
    def shape(self) -> tuple[int, int]:
        """Numpy shape ``(height, width)`` of an image of this box."""
        return (self.height, self.width)

    def slices_within(self, outer: PixelBox) -> tuple[slice, slice]:
        """Numpy ``(rows, columns)`` slices selecting this box inside an image of ``outer``."""
        return (
            slice(self.y_min - outer.y_min, self.y_end - outer.y_min),
            slice(self.x_min - outer.x_min, self.x_end - outer.x_min),
        )


@dataclass(frozen=True, slots=True)
class _RingLayout:
    """Pixel layout shared by every tract of one ring (they differ only by a rotation in RA)."""

    crpix: tuple[float, float]  # 0-based pixel position of the tract centre (tangent point)
    width: int
    height: int
    nx: int
    ny: int


class RingsSkyMap:
    """Declination rings cut into tracts in RA, two polar-cap tracts, each tract cut into patches.

    Tract ids follow Rubin's ``RingsSkyMap`` (version 1): 0 is the south cap, then each ring from
    south to north, starting at ``ra_start`` and increasing in RA; the north cap is last. A tract's
    *inner region* is its ring/RA cell (a polar cap for the caps); ``find_tract`` returns the tract
    whose cell holds a point. Each tract has a TAN WCS whose tangent point is the tract centre,
    north up and east left (``CD = [[-s, 0], [0, s]]``), and a pixel box starting at (0, 0) that
    covers the cell plus ``tract_overlap`` on every side, grown to a whole number of patches.

    Patch ``cell_x, cell_y`` has inner box ``[cell_x * nx_in, (cell_x + 1) * nx_in)`` (same in y) in
    the tract's pixels, and outer box = inner grown by ``patch_border``, clipped to the tract; patch
    id = ``cell_y * nx + cell_x``. ``patch_wcs`` is the tract WCS with CRPIX shifted by the outer
    box origin, so element ``[j, i]`` of an image of shape ``patch_shape`` is its pixel ``(i, j)``.
    Regions are `lsst.sphgeom` polygons through pixel-box corners (exact: TAN maps great circles
    to straight lines); registry records use the *outer* regions, as Rubin's ``register`` does.

    Geometry is computed lazily: per ring on first use (all tracts of a ring share a layout).
    """

    def __init__(self, config: RingsSkyMapConfig) -> None:
        self.config = config
        self.ring_size = math.pi / (config.num_rings + 1)
        """Height of a ring (and of the cap diameters) in radians."""
        self._ra_start = math.radians(config.ra_start)
        counts = []
        for ring in range(config.num_rings):
            start = self.ring_size * (ring + 0.5) - 0.5 * math.pi
            dec = min(abs(start), abs(start + self.ring_size))  # the edge nearest the equator
            counts.append(int(2 * math.pi * math.cos(dec) / self.ring_size) + 1)
        self._ring_counts = counts
        self._ring_first = [1 + sum(counts[:ring]) for ring in range(config.num_rings)]
        self.num_tracts: int = sum(counts) + 2
        """Number of tracts on the whole sky (ids 0 .. num_tracts - 1)."""
        self._layouts: dict[int, _RingLayout] = {}

    @classmethod
    def from_config(cls, config: RingsSkyMapConfig | Mapping[str, Any]) -> RingsSkyMap:
        """The sky map of a config object or mapping (validated: `SkyMapError` names bad keys)."""
        if not isinstance(config, RingsSkyMapConfig):
            config = parse_skymap_config(config)
        return cls(config)

    def to_config(self) -> RingsSkyMapConfig:
        """The config this sky map was built from (what the ``skyMap`` dataset stores)."""
        return self.config

    @cached_property
    def hash(self) -> str:
        """Hex SHA-256 digest of the config (see `RingsSkyMapConfig.digest`)."""
        return self.config.digest()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RingsSkyMap) and self.hash == other.hash

    def __hash__(self) -> int:
        return hash(self.hash)

    def __repr__(self) -> str:
        return (
            f"RingsSkyMap(num_rings={self.config.num_rings}, tracts={self.num_tracts}, hash={self.hash[:12]})"
        )

    # -- tracts ---------------------------------------------------------------------------------

    def _ring_of(self, tract: int) -> tuple[int, int]:
        """(ring, index in ring) of a tract; ring -1 is the south cap, num_rings the north cap."""
        if not isinstance(tract, int | np.integer) or not 0 <= tract < self.num_tracts:
            raise SkyMapError(f"No tract {tract!r} in this sky map: ids run from 0 to {self.num_tracts - 1}.")
        if tract == 0:
            return -1, 0
        if tract == self.num_tracts - 1:
            return self.config.num_rings, 0
        ring = bisect.bisect_right(self._ring_first, tract) - 1
        return ring, int(tract) - self._ring_first[ring]

    def _center_radians(self, tract: int) -> tuple[float, float]:
        ring, index = self._ring_of(tract)
        if ring == -1 or ring == self.config.num_rings:
            return 0.0, math.copysign(0.5 * math.pi, ring)
        ra = (self._ra_start + 2 * math.pi * index / self._ring_counts[ring]) % (2 * math.pi)
        return ra, self.ring_size * (ring + 1) - 0.5 * math.pi

    def tract_center(self, tract: int) -> tuple[float, float]:
        """(RA, Dec) of the tract centre in degrees; also the tangent point of its WCS."""
        ra, dec = self._center_radians(tract)
        return math.degrees(ra), math.degrees(dec)

    def find_tract(self, ra: float, dec: float) -> int:
        """Id of the tract whose inner region (ring/RA cell or polar cap) holds (RA, Dec) in degrees."""
        lat = math.radians(dec)
        first_ring_start = 0.5 * self.ring_size - 0.5 * math.pi
        if lat < first_ring_start:
            return 0
        if lat > -first_ring_start:
            return self.num_tracts - 1
        ring = min(int((lat - first_ring_start) / self.ring_size), self.config.num_rings - 1)
        count = self._ring_counts[ring]
        delta = (math.radians(ra) - self._ra_start) % (2 * math.pi)
        index = int(delta / (2 * math.pi / count) + 0.5) % count
        return self._ring_first[ring] + index

    def tract_inner_region(self, tract: int) -> sphgeom.Box:
        """The tract's cell as an exact lon/lat box (dec edges are small circles, so not a polygon)."""
        ring, _ = self._ring_of(tract)
        ra, dec = self._center_radians(tract)
        half = 0.5 * self.ring_size
        if ring == -1:
            return sphgeom.Box(
                sphgeom.NormalizedAngleInterval.full(),
                sphgeom.AngleInterval.fromRadians(-0.5 * math.pi, dec + half),
            )
        if ring == self.config.num_rings:
            return sphgeom.Box(
                sphgeom.NormalizedAngleInterval.full(),
                sphgeom.AngleInterval.fromRadians(dec - half, 0.5 * math.pi),
            )
        half_width = math.pi / self._ring_counts[ring]
        lon = sphgeom.NormalizedAngleInterval.fromRadians(ra - half_width, ra + half_width)
        return sphgeom.Box(lon, sphgeom.AngleInterval.fromRadians(dec - half, dec + half))

    def _layout(self, ring: int) -> _RingLayout:
        layout = self._layouts.get(ring)
        if layout is None:
            layout = self._layouts[ring] = self._compute_layout(ring)
        return layout

    def _compute_layout(self, ring: int) -> _RingLayout:
        """Bound the cell plus overlap in the TAN plane of a tract of ``ring`` and fit whole patches."""
        half = 0.5 * self.ring_size
        if ring in (-1, self.config.num_rings):
            sign = -1.0 if ring == -1 else 1.0
            center_dec = sign * 0.5 * math.pi
            lon = np.linspace(0.0, 2 * math.pi, 4 * _EDGE_SAMPLES, endpoint=False)
            lat = np.full_like(lon, center_dec - sign * half)
        else:
            center_dec = self.ring_size * (ring + 1) - 0.5 * math.pi
            half_width = math.pi / self._ring_counts[ring]
            t = np.linspace(-1.0, 1.0, _EDGE_SAMPLES)
            lon = np.concatenate([t * half_width, t * half_width, -half_width + 0 * t, half_width + 0 * t])
            lat = center_dec + np.concatenate([-half + 0 * t, half + 0 * t, t * half, t * half])
        if self.config.tract_overlap > 0:
            lon, lat = _offset(lon, lat, math.radians(self.config.tract_overlap), _OVERLAP_BEARINGS)
        distance = _angular_distance(lon, lat, 0.0, center_dec)
        if np.max(distance) > _MAX_TANGENT_ANGLE:
            raise SkyMapError(
                f"Tracts of ring {ring} reach {math.degrees(np.max(distance)):.1f} deg from their centre, too far "
                f"for a TAN projection; use more rings than num_rings={self.config.num_rings}."
            )
        x, y = _make_wcs(
            0.0, math.degrees(center_dec), (0.0, 0.0), self.config.pixel_scale
        ).world_to_pixel_values(np.degrees(lon), np.degrees(lat))
        mins, dims, counts = [], [], []
        for values, inner in zip((x, y), self.config.patch_inner_dimensions, strict=True):
            low, high = math.floor(float(np.min(values)) + 0.5), math.ceil(float(np.max(values)) - 0.5)
            size = high - low + 1
            count = -(-size // inner)
            low -= (count * inner - size) // 2
            mins.append(low)
            dims.append(count * inner)
            counts.append(count)
        return _RingLayout((-float(mins[0]), -float(mins[1])), dims[0], dims[1], counts[0], counts[1])

    def tract_bbox(self, tract: int) -> PixelBox:
        """The tract's pixel box: starts at (0, 0), covers the cell plus overlap, whole patches."""
        layout = self._layout(self._ring_of(tract)[0])
        return PixelBox(0, 0, layout.width, layout.height)

    def tract_wcs(self, tract: int) -> WCS:
        """A new TAN WCS of the tract (tangent point at its centre, 0-based pixels of `tract_bbox`)."""
        layout = self._layout(self._ring_of(tract)[0])
        return _make_wcs(
            *self.tract_center(tract), layout.crpix, self.config.pixel_scale, (layout.width, layout.height)
        )

    def tract_region(self, tract: int) -> sphgeom.ConvexPolygon:
        """The tract's outer region: the polygon through the corners of its pixel box."""
        box = self.tract_bbox(tract)
        return self._polygons(tract, [(box.x_min, box.x_end, box.y_min, box.y_end)])[0]

    # -- patches --------------------------------------------------------------------------------

    def num_patches(self, tract: int) -> tuple[int, int]:
        """Patches of the tract along x and y."""
        layout = self._layout(self._ring_of(tract)[0])
        return layout.nx, layout.ny

    def patch_id(self, tract: int, cell_x: int, cell_y: int) -> int:
        """Patch id ``cell_y * nx + cell_x`` of patch column ``cell_x``, row ``cell_y``."""
        nx, ny = self.num_patches(tract)
        if not (0 <= cell_x < nx and 0 <= cell_y < ny):
            raise SkyMapError(f"Tract {tract} has {nx}x{ny} patches; no cell ({cell_x}, {cell_y}).")
        return cell_y * nx + cell_x

    def patch_cell(self, tract: int, patch: int) -> tuple[int, int]:
        """(cell_x, cell_y) of a patch id."""
        nx, ny = self.num_patches(tract)
        if not isinstance(patch, int | np.integer) or not 0 <= patch < nx * ny:
            raise SkyMapError(f"Tract {tract} has patches 0 to {nx * ny - 1}; no patch {patch!r}.")
        return int(patch) % nx, int(patch) // nx

    def patch_inner_bbox(self, tract: int, patch: int) -> PixelBox:
        """The patch's inner box in tract pixels; inner boxes tile the tract box exactly."""
        cell_x, cell_y = self.patch_cell(tract, patch)
        inner_x, inner_y = self.config.patch_inner_dimensions
        return PixelBox(cell_x * inner_x, cell_y * inner_y, inner_x, inner_y)

    def patch_bbox(self, tract: int, patch: int) -> PixelBox:
        """The patch's outer box in tract pixels: inner grown by ``patch_border``, clipped to the tract."""
        return self._outer_box(self.tract_bbox(tract), self.patch_inner_bbox(tract, patch))

    def _outer_box(self, tract_box: PixelBox, inner: PixelBox) -> PixelBox:
        border = self.config.patch_border
        x0, y0 = max(inner.x_min - border, 0), max(inner.y_min - border, 0)
        x1, y1 = min(inner.x_end + border, tract_box.x_end), min(inner.y_end + border, tract_box.y_end)
        return PixelBox(x0, y0, x1 - x0, y1 - y0)

    def patch_shape(self, tract: int, patch: int) -> tuple[int, int]:
        """Numpy shape ``(height, width)`` of a patch image (its outer box)."""
        return self.patch_bbox(tract, patch).shape

    def patch_inner_slices(self, tract: int, patch: int) -> tuple[slice, slice]:
        """``(rows, columns)`` slices of the inner region within a patch image of `patch_shape`."""
        return self.patch_inner_bbox(tract, patch).slices_within(self.patch_bbox(tract, patch))

    def patch_wcs(self, tract: int, patch: int) -> WCS:
        """The WCS of a patch image: the tract WCS with CRPIX shifted by the outer box origin.

        Element ``[j, i]`` of an array of shape `patch_shape` is pixel ``(i, j)`` of this WCS, i.e.
        tract pixel ``(x_min + i, y_min + j)`` of `patch_bbox`.
        """
        box = self.patch_bbox(tract, patch)
        layout = self._layout(self._ring_of(tract)[0])
        crpix = (layout.crpix[0] - box.x_min, layout.crpix[1] - box.y_min)
        return _make_wcs(*self.tract_center(tract), crpix, self.config.pixel_scale, (box.width, box.height))

    def patch_inner_region(self, tract: int, patch: int) -> sphgeom.ConvexPolygon:
        """Polygon of the patch's inner box; inner regions of a tract's patches tile its outer region."""
        return self.patch_regions(tract, [patch], outer=False)[0]

    def patch_outer_region(self, tract: int, patch: int) -> sphgeom.ConvexPolygon:
        """Polygon of the patch's outer box (what the registry's patch record holds)."""
        return self.patch_regions(tract, [patch], outer=True)[0]

    def patch_regions(
        self, tract: int, patches: Iterable[int] | None = None, *, outer: bool = True
    ) -> list[sphgeom.ConvexPolygon]:
        """Outer (or inner) polygons of several patches of one tract (all by default), in one WCS call."""
        ids = range(int(np.prod(self.num_patches(tract)))) if patches is None else list(patches)
        tract_box = self.tract_bbox(tract)
        boxes = []
        for patch in ids:
            box = self.patch_inner_bbox(tract, patch)
            box = self._outer_box(tract_box, box) if outer else box
            boxes.append((box.x_min, box.x_end, box.y_min, box.y_end))
        return self._polygons(tract, boxes)

    def _polygons(
        self, tract: int, boxes: Sequence[tuple[int, int, int, int]]
    ) -> list[sphgeom.ConvexPolygon]:
        """Sky polygons through the pixel-edge corners of ``(x_min, x_end, y_min, y_end)`` boxes."""
        if not boxes:
            return []
        edges = np.asarray(boxes, dtype=float) - 0.5
        x = edges[:, [0, 1, 1, 0]].ravel()
        y = edges[:, [2, 2, 3, 3]].ravel()
        ra, dec = self.tract_wcs(tract).pixel_to_world_values(x, y)
        vectors = _unit_vectors(np.radians(ra), np.radians(dec))
        return [
            sphgeom.ConvexPolygon.convexHull([sphgeom.UnitVector3d(*v) for v in vectors[4 * i : 4 * i + 4]])
            for i in range(len(boxes))
        ]

    def find_tract_patch(self, ra: float, dec: float) -> tuple[int, int]:
        """(tract, patch) whose inner regions hold (RA, Dec) in degrees."""
        tract = self.find_tract(ra, dec)
        x, y = self.tract_wcs(tract).world_to_pixel_values(ra, dec)
        nx, ny = self.num_patches(tract)
        inner_x, inner_y = self.config.patch_inner_dimensions
        cell_x, cell_y = math.floor((float(x) + 0.5) / inner_x), math.floor((float(y) + 0.5) / inner_y)
        # A point exactly on the cell edge may round to just outside the tract box.
        return tract, self.patch_id(tract, min(max(cell_x, 0), nx - 1), min(max(cell_y, 0), ny - 1))

    def patches_overlapping(self, region: sphgeom.Region) -> list[tuple[int, int]]:
        """(tract, patch) pairs whose outer regions overlap ``region``, sorted.

        A point near a tract edge lies in the overlap of two tracts and is found in both. Where
        sphgeom cannot decide an overlap exactly (boxes, ellipses) the answer is conservative.
        """
        return [(t, p) for t, found in self._overlapping(region).items() for p in found]

    def _overlapping(self, region: sphgeom.Region) -> dict[int, dict[int, sphgeom.ConvexPolygon]]:
        """Tract -> {patch: outer polygon} of patches overlapping ``region``."""
        circle = region.getBoundingCircle()
        if circle.isEmpty():
            return {}
        center = sphgeom.LonLat(circle.getCenter())
        lon, lat = center.getLon().asRadians(), center.getLat().asRadians()
        radius = circle.getOpeningAngle().asRadians()
        found: dict[int, dict[int, sphgeom.ConvexPolygon]] = {}
        for tract in self._candidate_tracts(lon, lat, radius):
            if not _may_overlap(self.tract_region(tract), region):
                continue
            patches = self._candidate_patches(tract, lon, lat, radius)
            polygons = self.patch_regions(tract, patches)
            hits = {p: poly for p, poly in zip(patches, polygons, strict=True) if _may_overlap(poly, region)}
            if hits:
                found[tract] = hits
        return found

    @cached_property
    def _outer_radius_bound(self) -> float:
        """An upper bound (radians) on the distance from any tract centre to its outer region."""
        cell = 0.5 * self.ring_size
        for ring, count in enumerate(self._ring_counts):
            center = self.ring_size * (ring + 1) - 0.5 * math.pi
            for edge in (center - 0.5 * self.ring_size, center + 0.5 * self.ring_size):
                cell = max(
                    cell, float(_angular_distance(np.array(math.pi / count), np.array(edge), 0.0, center))
                )
        reach = cell + math.radians(self.config.tract_overlap)
        if reach >= _MAX_TANGENT_ANGLE:
            return math.pi
        pixel = math.radians(self.config.pixel_scale / 3600.0)
        padding = (max(self.config.patch_inner_dimensions) + 2) * pixel
        return math.atan(math.sqrt(2.0) * (math.tan(reach) + padding))

    def _candidate_tracts(self, lon: float, lat: float, radius: float) -> list[int]:
        """Tracts whose centres are close enough for their outer regions to reach the circle."""
        reach = radius + self._outer_radius_bound
        if reach >= math.pi:
            return list(range(self.num_tracts))
        tracts = []
        if _angular_distance(np.array(0.0), np.array(-0.5 * math.pi), lon, lat) <= reach:
            tracts.append(0)
        first = max(0, math.floor((lat - reach + 0.5 * math.pi) / self.ring_size) - 1)
        last = min(self.config.num_rings - 1, math.ceil((lat + reach + 0.5 * math.pi) / self.ring_size))
        for ring in range(first, last + 1):
            count = self._ring_counts[ring]
            ras = self._ra_start + 2 * math.pi * np.arange(count) / count
            dec = np.full(count, self.ring_size * (ring + 1) - 0.5 * math.pi)
            near = np.nonzero(_angular_distance(ras, dec, lon, lat) <= reach)[0]
            tracts.extend(self._ring_first[ring] + int(i) for i in near)
        if _angular_distance(np.array(0.0), np.array(0.5 * math.pi), lon, lat) <= reach:
            tracts.append(self.num_tracts - 1)
        return tracts

    def _candidate_patches(self, tract: int, lon: float, lat: float, radius: float) -> list[int]:
        """Patches of ``tract`` whose outer boxes may meet the circle, from its projected outline."""
        nx, ny = self.num_patches(tract)
        ra, dec = self._center_radians(tract)
        if float(_angular_distance(np.array(lon), np.array(lat), ra, dec)) + radius > _MAX_TANGENT_ANGLE:
            return list(range(nx * ny))
        ring_lon, ring_lat = _offset(np.array([lon]), np.array([lat]), radius, _CIRCLE_SAMPLES)
        x, y = self.tract_wcs(tract).world_to_pixel_values(
            np.degrees(np.append(ring_lon, lon)), np.degrees(np.append(ring_lat, lat))
        )
        cells = []
        for values, inner, count in zip((x, y), self.config.patch_inner_dimensions, (nx, ny), strict=True):
            margin = 0.01 * float(np.ptp(values)) + self.config.patch_border + 1
            low = math.floor((float(np.min(values)) - margin + 0.5) / inner)
            high = math.floor((float(np.max(values)) + margin + 0.5) / inner)
            cells.append(range(max(low, 0), min(high, count - 1) + 1))
        return [cy * nx + cx for cy in cells[1] for cx in cells[0]]

    # -- what registration writes (see skymap_registration) -------------------------------------

    @cached_property
    def restriction(self) -> sphgeom.Box | None:
        """The lon/lat box of ``ra_range`` x ``dec_range`` (None when neither is set)."""
        ra_range, dec_range = self.config.ra_range, self.config.dec_range
        if ra_range is None and dec_range is None:
            return None
        lon = (
            sphgeom.NormalizedAngleInterval.full()
            if ra_range is None
            else sphgeom.NormalizedAngleInterval.fromDegrees(*ra_range)
        )
        lat = sphgeom.AngleInterval.fromDegrees(*(dec_range or (-90.0, 90.0)))
        return sphgeom.Box(lon, lat)

    def registered_patches(self) -> dict[int, dict[int, sphgeom.ConvexPolygon]]:
        """Tract -> {patch: outer polygon} that `register_skymap` writes: those overlapping the restriction.

        Without ``ra_range``/``dec_range`` this is every patch of every tract (large for fine maps).
        """
        if self.restriction is not None:
            return self._overlapping(self.restriction)
        return {tract: dict(enumerate(self.patch_regions(tract))) for tract in range(self.num_tracts)}

    def patch_count_max(self) -> tuple[int, int]:
        """Largest (nx, ny) over every tract of the sky (for the skymap record)."""
        layouts = [self._layout(ring) for ring in range(-1, self.config.num_rings + 1)]
        return max(layout.nx for layout in layouts), max(layout.ny for layout in layouts)


def _make_wcs(
    ra: float, dec: float, crpix: tuple[float, float], scale: float, size: tuple[int, int] | None = None
) -> WCS:
    """A TAN WCS at (ra, dec) degrees, ``scale`` arcsec/pixel, tangent point at 0-based pixel ``crpix``."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.radesys = "ICRS"
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [crpix[0] + 1.0, crpix[1] + 1.0]  # FITS pixels are 1-based
    degrees = scale / 3600.0
    wcs.wcs.cd = [[-degrees, 0.0], [0.0, degrees]]
    if size is not None:
        wcs.pixel_shape = size
    wcs.wcs.set()
    return wcs


def _unit_vectors(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """(N, 3) unit vectors of lon/lat arrays in radians."""
    cos_lat = np.cos(lat)
    return np.stack([cos_lat * np.cos(lon), cos_lat * np.sin(lon), np.sin(lat)], axis=-1)


def _angular_distance(lon: np.ndarray, lat: np.ndarray, lon0: float, lat0: float) -> np.ndarray:
    """Great-circle distances (radians) from (lon0, lat0) to each point."""
    cosine = np.sin(lat) * math.sin(lat0) + np.cos(lat) * math.cos(lat0) * np.cos(lon - lon0)
    distance: np.ndarray = np.arccos(np.clip(cosine, -1.0, 1.0))
    return distance


def _offset(
    lon: np.ndarray, lat: np.ndarray, distance: float, bearings: int
) -> tuple[np.ndarray, np.ndarray]:
    """Points ``distance`` radians from each point in ``bearings`` evenly spread directions (flattened)."""
    angles = np.linspace(0.0, 2 * math.pi, bearings, endpoint=False)[None, :, None]
    lon, lat = lon[:, None, None], lat[:, None, None]
    point = np.concatenate([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)
    east = np.concatenate([-np.sin(lon), np.cos(lon), 0 * lon], axis=-1)
    north = np.concatenate([-np.sin(lat) * np.cos(lon), -np.sin(lat) * np.sin(lon), np.cos(lat)], axis=-1)
    moved = math.cos(distance) * point + math.sin(distance) * (np.cos(angles) * north + np.sin(angles) * east)
    moved = moved.reshape(-1, 3)
    return np.arctan2(moved[:, 1], moved[:, 0]), np.arcsin(np.clip(moved[:, 2], -1.0, 1.0))


def _may_overlap(a: sphgeom.Region, b: sphgeom.Region) -> bool:
    """Exact overlap where sphgeom can decide it, otherwise its conservative `relate` answer."""
    decided = a.overlaps(b)
    if decided is not None:
        return bool(decided)
    return not (a.relate(b) & sphgeom.DISJOINT)
