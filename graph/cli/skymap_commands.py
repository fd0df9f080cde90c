"""``butler register-skymap``: write a sky map's tracts, patches and config into a repository."""

from __future__ import annotations

from pathlib import Path

import click

from butler.butler import Butler
from butler.cli.options import repo_argument

from .. import skymap_config, skymap_registration
from ..errors import GraphError
from .errors import GraphCommandError

__all__ = ["register_skymap"]


@click.command(name="register-skymap")
@repo_argument
@click.option(
    "--name", required=True, help="Name of the sky map (the skymap dimension value), e.g. demo-rings."
)
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="YAML file of RingsSkyMapConfig keys (num_rings, pixel_scale, patch_inner_dimensions, ...).",
)
@click.option(
    "--collection",
    default=skymap_registration.SKYMAP_RUN,
    show_default=True,
    help="RUN collection to store the skyMap dataset (the sky map config) in.",
)
def register_skymap(repo: str, name: str, config_path: Path, collection: str) -> None:
    """Register a rings sky map: skymap, tract and patch records plus the skyMap dataset.

    Only tracts and patches overlapping the config's ra_range/dec_range are registered. Running
    it again with the same config changes nothing; another config under the same name is refused.
    """
    try:
        config = skymap_config.read_skymap_config(config_path)
        with Butler(repo) as butler:
            summary = skymap_registration.register_skymap(butler, name, config, collection=collection)
    except GraphError as err:
        raise GraphCommandError(err) from err
    if not summary.inserted:
        click.echo(f"Sky map {name!r} is already registered with this configuration; nothing to do.")
        return
    tracts = ", ".join(str(t) for t in summary.tract_ids)
    click.echo(
        f"Registered sky map {name!r} (hash {summary.hash[:16]}): {len(summary.tract_ids)} tract(s) [{tracts}], "
        f"{summary.patches} patch(es); config stored as {skymap_registration.SKYMAP_DATASET_TYPE} in RUN {collection!r}."
    )
