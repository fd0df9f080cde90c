"""DemoCam's science algorithms as pure numpy functions, one concept per module; the demo tasks call them.

Modules: `masks` (mask bits), `isr`, `background`, `detection`, `measurement`, `photocal`,
`wcs_cards` (WCS in image metadata), `resampling`, `coaddition`.
"""
