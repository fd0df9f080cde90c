"""``butler`` commands about a repository as a whole: create it, show and check its configuration, verify its files."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
import pydantic
import yaml
from lsst.resources import ResourcePath
from sqlalchemy.engine import make_url

from ..butler import Butler
from ..chained_datastore import ChainedDatastore, ChainedDatastoreConfig
from ..datasets import DatasetType
from ..datastore import Datastore
from ..datastore_config import DatastoreConfigError, FileDatastoreConfig
from ..errors import ButlerError
from ..file_datastore import FileDatastore
from ..file_templates import FileTemplateError, FileTemplates
from ..formatter import FormatterError, formatter_class
from ..in_memory_datastore import InMemoryDatastoreConfig
from ..registry import Registry
from ..repository import CONFIG_NAME, ROOT_TOKEN, RepositoryConfig, create_repository
from ..storage_classes import StorageClassError, StorageClassRegistry
from ..timing import log_duration
from ..verify import verify_datastore
from .options import Progress, progress_option, repo_argument

__all__ = ["COMMANDS", "config_problems", "effective_config"]

_LOG = logging.getLogger(__name__)

_Model = TypeVar("_Model", bound=pydantic.BaseModel)


@click.command()
@repo_argument
@click.option(
    "--db", default=None, help="SQLAlchemy URL of the registry database [default: SQLite file in REPO]."
)
@click.option(
    "--namespace", default=None, help="PostgreSQL schema for the registry tables (created if absent)."
)
@click.option(
    "--datastore-root",
    default=None,
    metavar="URI",
    help="Where the datastore keeps dataset files: a directory (which must exist) or s3://bucket/prefix "
    "[default: REPO].",
)
def create(repo: str, db: str | None, namespace: str | None, datastore_root: str | None) -> None:
    """Create an empty data repository.

    REPO is the directory to create it in (it may exist, but must not hold a repository yet).
    A registry that already exists at REPO or in the database is never overwritten.
    """
    config = create_repository(repo, db=db, namespace=namespace, datastore_root=datastore_root)
    where = _hide_password(config.db)
    if config.namespace:
        where += f", namespace {config.namespace}"
    if datastore_root is not None:
        where += f"; datastore root: {datastore_root}"
    click.echo(f"Created data repository {config.root} (registry: {where}).")


# -- configuration ----------------------------------------------------------------------------------


@click.command("config-dump")
@repo_argument
@click.option(
    "--subset",
    default=None,
    metavar="KEY[.KEY...]",
    help="Show only this part, e.g. datastore, registry or datastore.formatters.",
)
def config_dump(repo: str, subset: str | None) -> None:
    """Print a repository's effective configuration.

    Prints REPO's butler.yaml as YAML the way the software reads it: <butlerRoot> replaced by the
    repository's directory, the datastore section validated and completed with every default
    (each member of a chained datastore too), and the registry password hidden.
    """
    value: Any = effective_config(repo)
    if subset:
        path: list[str] = []
        for key in subset.strip(".").split("."):
            if not isinstance(value, Mapping) or key not in value:
                keys = ", ".join(map(str, value)) if isinstance(value, Mapping) else "none (it is a value)"
                where = ".".join(path) or "the configuration"
                raise click.BadParameter(
                    f"{'.'.join([*path, key])!r} is not in the configuration; keys of {where}: {keys}.",
                    param_hint="--subset",
                )
            path.append(key)
            value = value[key]
    if isinstance(value, Mapping | list):
        click.echo(yaml.safe_dump(value, sort_keys=False).rstrip("\n"))
    else:
        click.echo(value)


def effective_config(location: str | Path) -> dict[str, Any]:
    """The butler.yaml of the repository at ``location`` as the software reads it (see ``config-dump``)."""
    config = RepositoryConfig.load(location)
    config_path = _config_path(location)
    raw = yaml.safe_load(config_path.read_text()) or {}
    effective: dict[str, Any] = _replace_root(raw, str(config.root))
    effective["registry"] = {
        **effective.get("registry", {}),
        "db": _hide_password(config.db),
        "namespace": config.namespace,
    }
    if config.datastore is not None:
        effective["datastore"] = _datastore_tree(config.datastore, str(config.root), str(config_path))
    return effective


def _config_path(location: str | Path) -> Path:
    """The configuration file `RepositoryConfig.load` reads for ``location``."""
    path = Path(location)
    return path if path.suffix in (".yaml", ".yml") else path / CONFIG_NAME


def _datastore_tree(values: Mapping[str, Any], root: str, source: str) -> dict[str, Any]:
    """A ``datastore:`` mapping validated into its typed configs and dumped with every default."""
    values = dict(values)
    kind = values.pop("cls", "file")
    if kind == "file":
        return {"cls": kind, **FileDatastoreConfig.from_mapping(values, source, root).model_dump()}
    if kind == "in_memory":
        return {"cls": kind, **_validated(InMemoryDatastoreConfig, values, source).model_dump()}
    if kind == "chained":
        chain = _validated(ChainedDatastoreConfig, values, source)
        children = [
            _datastore_tree(child, root, f"{source} ({chain.name} child {i})")
            for i, child in enumerate(chain.children)
        ]
        return {"cls": kind, "name": chain.name, "children": children}
    raise DatastoreConfigError(
        f"Invalid datastore configuration in {source}: unknown datastore cls {kind!r}; "
        "expected file, in_memory or chained."
    )


def _validated(model: type[_Model], values: Mapping[str, Any], source: str) -> _Model:
    try:
        return model.model_validate(values)
    except pydantic.ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())
        raise DatastoreConfigError(f"Invalid datastore configuration in {source}: {problems}") from None


def _replace_root(value: Any, root: str) -> Any:
    if isinstance(value, str):
        return value.replace(ROOT_TOKEN, root)
    if isinstance(value, Mapping):
        return {key: _replace_root(item, root) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace_root(item, root) for item in value]
    return value


def _hide_password(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@click.command("config-validate")
@repo_argument
@click.pass_context
def config_validate(ctx: click.Context, repo: str) -> None:
    """Check a repository's configuration.

    Loads REPO's butler.yaml, opens the registry, and checks every file datastore: its root
    exists, its formatters import and accept their write options, the storage classes and dataset
    types it names exist, its file templates suit every registered dataset type, and every
    registered dataset type has a storage class and a formatter. Prints each problem and exits
    with status 1, or prints "No problems found.".
    """
    problems = config_problems(repo)
    if not problems:
        click.echo("No problems found.")
        return
    for problem in problems:
        click.echo(f"- {problem}")
    click.echo(f"{len(problems)} problem(s) found in {_config_path(repo)}.")
    ctx.exit(1)


def config_problems(location: str | Path) -> list[str]:
    """Everything ``config-validate`` finds wrong with the repository at ``location``.

    A configuration file that cannot be read at all raises (`RepositoryNotFoundError`,
    `ButlerError`) instead.
    """
    config = RepositoryConfig.load(location)
    if config.datastore is None:
        return [f"{CONFIG_NAME} has no datastore section."]
    try:
        tree = _datastore_tree(config.datastore, str(config.root), str(_config_path(location)))
    except ButlerError as err:
        return [str(err)]
    try:
        with Registry.open(config.db, namespace=config.namespace) as registry:
            dataset_types = registry.query_dataset_types("*")
            universe = registry.universe
    except ButlerError as err:
        return [f"registry: {err}"]
    problems: list[str] = []
    storage_classes = StorageClassRegistry.default()
    for where, values in _file_datastore_configs(tree, "datastore"):
        datastore = FileDatastoreConfig.model_validate({k: v for k, v in values.items() if k != "cls"})
        problems.extend(_datastore_problems(where, datastore, dataset_types, storage_classes))
        try:
            FileTemplates(datastore.templates, universe).validate_all(dataset_types)
        except FileTemplateError as err:
            problems.append(f"{where}.templates: {err}")
    return problems


def _file_datastore_configs(tree: Mapping[str, Any], where: str) -> list[tuple[str, dict[str, Any]]]:
    """(place in the configuration, dumped config) of every file datastore in a `_datastore_tree`."""
    if tree["cls"] == "file":
        return [(where, dict(tree))]
    return [
        found
        for i, child in enumerate(tree.get("children", []))
        for found in _file_datastore_configs(child, f"{where}.children[{i}]")
    ]


def _datastore_problems(
    where: str,
    datastore: FileDatastoreConfig,
    dataset_types: Sequence[DatasetType],
    storage_classes: StorageClassRegistry,
) -> list[str]:
    problems: list[str] = []
    root = ResourcePath(datastore.root, forceDirectory=True)
    if root.isLocal and not Path(root.ospath).is_dir():
        problems.append(f"{where}.root: {root.ospath} does not exist or is not a directory.")
    type_names = {t.name for t in dataset_types}

    def known(name: str) -> bool:
        return name in storage_classes or name.split(".", 1)[0] in type_names

    for key, spec in datastore.formatters.items():
        if not known(key):
            problems.append(
                f"{where}.formatters.{key}: neither a storage class nor a registered dataset type."
            )
        try:
            formatter_class(spec.formatter)(spec.write_options)
        except FormatterError as err:
            problems.append(f"{where}.formatters.{key}: {err}")
    for key in datastore.templates:
        if key != "default" and not known(key):
            problems.append(
                f"{where}.templates.{key}: neither 'default', a storage class nor a registered dataset type."
            )
    for name in datastore.disassemble:
        if name not in storage_classes:
            problems.append(f"{where}.disassemble: unknown storage class {name!r}.")
        elif not storage_classes[name].is_composite:
            problems.append(f"{where}.disassemble: storage class {name} has no components.")
    for kind, names in (("accept", datastore.constraints.accept), ("reject", datastore.constraints.reject)):
        problems.extend(
            f"{where}.constraints.{kind}: {name!r} is neither a storage class nor a registered dataset type."
            for name in names
            if not known(name)
        )
    for dataset_type in dataset_types:
        try:
            storage_class = storage_classes[dataset_type.storage_class_name]
        except StorageClassError as err:
            problems.append(f"dataset type {dataset_type.name}: {err}")
            continue
        if not datastore.constraints.allows(dataset_type.name, storage_class.name):
            continue
        if dataset_type.name not in datastore.formatters and storage_class.name not in datastore.formatters:
            problems.append(
                f"{where}.formatters: no formatter for dataset type {dataset_type.name} or its storage "
                f"class {storage_class.name}."
            )
    return problems


# -- files ------------------------------------------------------------------------------------------


@click.command()
@repo_argument
@progress_option
@click.pass_context
def verify(ctx: click.Context, repo: str, progress: bool | None) -> None:
    """Check that registry and datastore agree.

    Exit status 1 if they do not.
    Lists datasets whose recorded files are missing and files under the datastore root that no
    dataset records, then a summary line.
    """
    with Butler(repo) as butler:
        reports = []
        with Progress(progress).step("Verifying"), log_duration(_LOG, "Verified the datastore"):
            for datastore in _file_datastores(butler.datastore):
                reports.append((datastore, verify_datastore(butler.registry, datastore)))
        for _, report in reports:
            for dataset_id, uri in report.missing_files:
                ref = butler.registry.get_dataset(dataset_id)
                what = f"{ref.dataset_type.name} {ref.data_id} in {ref.run}" if ref is not None else "dataset"
                click.echo(f"Missing file of {what} ({dataset_id}): {_location(ResourcePath(uri))}")
    for _, report in reports:
        for uri in report.unrecorded_files:
            click.echo(f"File without a dataset: {_location(ResourcePath(uri))}")
    checked = sum(report.checked_records for _, report in reports)
    roots = ", ".join(_location(datastore.root) for datastore, _ in reports)
    summary = f"Checked {checked} datastore record(s) against the files in {roots}"
    missing = sum(len(report.missing_files) for _, report in reports)
    unrecorded = sum(len(report.unrecorded_files) for _, report in reports)
    if not missing and not unrecorded:
        click.echo(f"{summary}: registry and datastore agree.")
        return
    click.echo(f"{summary}: {missing} missing file(s), {unrecorded} file(s) without a dataset.")
    ctx.exit(1)


def _location(uri: ResourcePath) -> str:
    """A local path as a path, anything else as its URI."""
    return uri.ospath if uri.isLocal else str(uri)


def _file_datastores(datastore: Datastore) -> list[FileDatastore]:
    """The file datastores of ``datastore``: itself, or the file members of a chain, in order."""
    if isinstance(datastore, FileDatastore):
        return [datastore]
    if isinstance(datastore, ChainedDatastore):
        return [found for child in datastore.children for found in _file_datastores(child)]
    return []


COMMANDS = (create, config_dump, config_validate, verify)
"""The commands of this module, for the ``butler`` group."""
