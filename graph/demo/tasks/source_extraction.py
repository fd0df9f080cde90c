"""Sub-tasks shared by single-frame calibration and coadd detection: background, detection, measurement."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from astropy.wcs import WCS

from butler.image import Image

from ...config import Config, field
from ...task import Task
from ..processing import background, detection, measurement
from ..processing.masks import UNUSABLE, MaskBit

__all__ = [
    "SOURCE_COLUMNS",
    "BackgroundResult",
    "DetectionResult",
    "SourceDetectionConfig",
    "SourceDetectionTask",
    "SourceMeasurementConfig",
    "SourceMeasurementTask",
    "Sources",
    "SubtractBackgroundConfig",
    "SubtractBackgroundTask",
]


class SubtractBackgroundConfig(Config):
    """How the sky background is estimated."""

    bin_size: int = field(64, doc="Background mesh cell size, pixels.", gt=0)
    clip_sigma: float = field(3.0, doc="Sigma-clipping threshold of each mesh cell's statistics.", gt=0)
    clip_iterations: int = field(5, doc="Maximum sigma-clipping iterations per mesh cell.", ge=1)
    min_good_fraction: float = field(
        0.2, doc="Cells with a smaller fraction of usable pixels take the median of the other cells."
    )


@dataclass(frozen=True, slots=True)
class BackgroundResult:
    """What `SubtractBackgroundTask.run` returns."""

    image: Image
    """A new Image with the background subtracted (mask, variance and metadata shared with the input)."""
    background: background.Background
    """The background model and its RMS."""


class SubtractBackgroundTask(Task):
    """Estimate the background on a mesh (ignoring masked and detected pixels) and subtract it."""

    ConfigClass = SubtractBackgroundConfig
    _DefaultName = "background"

    config: SubtractBackgroundConfig

    def run(self, image: Image) -> BackgroundResult:
        """Estimate the background of ``image`` (ignoring masked and DETECTED pixels) and subtract it."""
        config = self.config
        model = background.estimate_background(
            image.image,
            image.mask,
            bin_size=config.bin_size,
            clip_sigma=config.clip_sigma,
            clip_iterations=config.clip_iterations,
            min_good_fraction=config.min_good_fraction,
        )
        subtracted = (np.asarray(image.image, dtype=np.float64) - model.model).astype(np.float32)
        self.metadata["bg_mean"] = model.mean
        self.metadata["bg_rms"] = model.mean_rms
        self.log.debug("Background %.2f +- %.2f on a %s mesh.", model.mean, model.mean_rms, model.mesh.shape)
        return BackgroundResult(Image(subtracted, image.mask, image.variance, dict(image.metadata)), model)


class SourceDetectionConfig(Config):
    """How sources are detected."""

    nsigma: float = field(5.0, doc="Detection threshold in units of the (smoothed) background noise.", gt=0)
    do_smooth: bool = field(
        True, doc="Smooth with a Gaussian of smoothing_sigma (a PSF-matched filter) first."
    )
    smoothing_sigma: float = field(
        1.6, doc="Sigma of the smoothing Gaussian, pixels (about the PSF's).", gt=0
    )
    min_pixels: int = field(5, doc="Footprints with fewer pixels above threshold are dropped.", ge=1)
    grow_radius: int = field(
        4, doc="Pixels by which footprints grow in the DETECTED mask (kept off the background)."
    )


@dataclass(frozen=True, slots=True)
class DetectionResult:
    """What `SourceDetectionTask.run` returns."""

    detections: detection.Detections
    """Footprints and peaks."""
    mask: np.ndarray
    """A copy of the image's mask with DETECTED set on the (grown) footprints."""


class SourceDetectionTask(Task):
    """Threshold the background-noise significance map and label footprints; sets DETECTED in the mask."""

    ConfigClass = SourceDetectionConfig
    _DefaultName = "detection"

    config: SourceDetectionConfig

    def run(self, image: Image, noise_variance: np.ndarray | float) -> DetectionResult:
        """Detect sources on the background-subtracted ``image`` given the background noise variance."""
        config = self.config
        found = detection.detect_sources(
            image.image,
            noise_variance,
            image.mask,
            nsigma=config.nsigma,
            smoothing_sigma=config.smoothing_sigma if config.do_smooth else None,
            min_pixels=config.min_pixels,
        )
        mask = np.asarray(image.mask).copy() & ~np.int32(MaskBit.DETECTED)
        mask[detection.grow_mask(found.footprint_mask, config.grow_radius)] |= MaskBit.DETECTED
        self.metadata["n_detected"] = found.count
        self.log.info("Detected %d sources above %.1f sigma.", found.count, config.nsigma)
        return DetectionResult(found, mask)


@dataclass(frozen=True, slots=True)
class Sources:
    """Measured sources, one array element per source."""

    x: np.ndarray
    """Column of the centroid, pixels (0-based)."""
    y: np.ndarray
    """Row of the centroid, pixels (0-based)."""
    flux: np.ndarray
    """Aperture-corrected aperture flux minus local background, image units x pixels."""
    flux_err: np.ndarray
    """1-sigma error of ``flux``."""
    fwhm: np.ndarray
    """FWHM from adaptive second moments, pixels (NaN where it failed)."""
    npix: np.ndarray
    """Footprint size, pixels."""
    significance: np.ndarray
    """Peak significance of the detection."""
    flags: np.ndarray
    """`SourceFlag` bits (int32)."""
    aperture_correction: float = 1.0
    """Factor applied to the aperture fluxes (total / aperture flux)."""
    aperture_correction_stars: int = 0
    """Stars that measured the correction (0: Gaussian model of the FWHM, or none)."""

    def __len__(self) -> int:
        return int(self.x.size)

    @property
    def snr(self) -> np.ndarray:
        """Aperture-flux signal-to-noise ratio."""
        result: np.ndarray = np.divide(
            self.flux, self.flux_err, out=np.zeros_like(self.flux), where=self.flux_err > 0
        )
        return result

    def to_table(self, ids: np.ndarray, wcs: WCS, zero_point: float | None) -> pa.Table:
        """An Arrow table with `SOURCE_COLUMNS` (sky positions through ``wcs``; mags NaN without a zero point)."""
        ra, dec = wcs.all_pix2world(self.x, self.y, 0) if len(self) else (np.zeros(0), np.zeros(0))
        positive = self.flux > 0
        log_flux = np.log10(np.where(positive, self.flux, 1.0))
        mag = np.where(positive, (zero_point if zero_point is not None else np.nan) - 2.5 * log_flux, np.nan)
        mag_err = np.where(
            positive, 2.5 / np.log(10.0) * self.flux_err / np.where(positive, self.flux, 1.0), np.nan
        )
        columns = {
            "id": np.asarray(ids, dtype=np.int64),
            "x": self.x,
            "y": self.y,
            "ra": np.asarray(ra, dtype=float),
            "dec": np.asarray(dec, dtype=float),
            "flux": self.flux,
            "flux_err": self.flux_err,
            "mag": mag,
            "mag_err": mag_err,
            "snr": self.snr,
            "fwhm_px": self.fwhm,
            "npix": self.npix.astype(np.int32),
            "flags": self.flags.astype(np.int32),
        }
        return pa.table(columns)


SOURCE_COLUMNS: tuple[str, ...] = (
    "id",
    "x",
    "y",
    "ra",
    "dec",
    "flux",
    "flux_err",
    "mag",
    "mag_err",
    "snr",
    "fwhm_px",
    "npix",
    "flags",
)
"""Columns of ``src`` and ``deepCoadd_det`` tables (ra/dec in degrees, flux in image units, fwhm in pixels)."""


class SourceMeasurementConfig(Config):
    """How detected sources are measured."""

    do_gaussian_centroid: bool = field(
        True, doc="Refine first-moment centroids with a Gaussian-windowed (XWIN-style) centroid."
    )
    centroid_sigma: float = field(1.6, doc="Sigma of the centroid's Gaussian window, pixels.", gt=0)
    shape_guess_sigma: float = field(1.6, doc="Starting sigma of the adaptive second moments, pixels.", gt=0)
    aperture_radius: float = field(5.0, doc="Radius of the photometry aperture, pixels.", gt=0)
    do_aperture_correction: bool = field(
        True, doc="Scale aperture fluxes to total fluxes with an aperture correction measured on the image."
    )
    aperture_correction_radius: float = field(
        8.0, doc="Radius of the large aperture that stands for the total flux, pixels."
    )
    aperture_correction_min_snr: float = field(
        30.0, doc="Unflagged sources with at least this S/N measure the aperture correction."
    )
    aperture_correction_min_stars: int = field(
        3, doc="With fewer such sources the correction comes from a Gaussian PSF of the image's FWHM."
    )
    annulus_inner: float = field(12.0, doc="Inner radius of the local-background annulus, pixels.")
    annulus_outer: float = field(18.0, doc="Outer radius of the local-background annulus, pixels.")


class SourceMeasurementTask(Task):
    """Centroids, FWHM and aperture-corrected aperture fluxes of detected footprints."""

    ConfigClass = SourceMeasurementConfig
    _DefaultName = "measurement"
    config: SourceMeasurementConfig

    def run(self, image: Image, detections: detection.Detections) -> Sources:
        """Measure every footprint of ``detections`` on the background-subtracted ``image``."""
        config = self.config
        data = np.asarray(image.image, dtype=np.float64)
        usable = np.isfinite(data) & ((np.asarray(image.mask) & UNUSABLE) == 0)
        saturated = (np.asarray(image.mask) & MaskBit.SAT) != 0
        count = detections.count
        x, y = measurement.first_moment_centroids(np.where(usable, data, 0.0), detections.labels, count)
        flags = np.zeros(count, dtype=np.int32)
        if config.do_gaussian_centroid and count:
            x, y, converged = measurement.gaussian_centroids(
                data, x, y, sigma=config.centroid_sigma, usable=usable
            )
            flags[~converged] |= measurement.SourceFlag.CENTROID
        fwhm = (
            measurement.adaptive_fwhm(data, x, y, guess_sigma=config.shape_guess_sigma, usable=usable)
            if count
            else np.zeros(0)
        )
        flags[~np.isfinite(fwhm)] |= measurement.SourceFlag.SHAPE
        variance = np.asarray(image.variance, dtype=np.float64)

        def photometry(radius: float) -> measurement.ApertureFlux:
            return measurement.aperture_photometry(
                data,
                variance,
                x,
                y,
                radius=radius,
                annulus=(config.annulus_inner, config.annulus_outer),
                usable=usable,
                saturated=saturated,
                labels=detections.labels,
                own_labels=np.arange(1, count + 1),
            )

        aperture = photometry(config.aperture_radius)
        flags |= aperture.flags
        correction, n_stars = 1.0, 0
        if config.do_aperture_correction:
            bright = (flags == 0) & np.isfinite(fwhm)
            image_fwhm = float(np.median(fwhm[bright])) if bright.any() else None
            correction, n_stars = measurement.aperture_correction(
                aperture,
                photometry(config.aperture_correction_radius),
                min_snr=config.aperture_correction_min_snr,
                min_stars=config.aperture_correction_min_stars,
                fwhm=image_fwhm,
                radius=config.aperture_radius,
            )
            self.log.debug("Aperture correction %.4f from %d stars.", correction, n_stars)
        self.metadata["n_measured"] = count
        self.metadata["aperture_correction"] = correction
        return Sources(
            x=x,
            y=y,
            flux=aperture.flux * correction,
            flux_err=aperture.flux_err * correction,
            fwhm=fwhm,
            npix=np.asarray(detections.npix),
            significance=np.asarray(detections.peak_significance, dtype=float),
            flags=flags,
            aperture_correction=correction,
            aperture_correction_stars=n_stars,
        )
