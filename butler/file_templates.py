"""File-name templates: where the file datastore puts each dataset's file, from its run, type and data ID.

A template is a relative POSIX path with ``{field}`` placeholders, e.g.
``{run}/{datasetType}/{band:?}/{datasetType}_{instrument}_{visit:08d}_{detector}``.

Fields
    ``run``, ``datasetType`` (the parent dataset type name), ``component`` (the component name;
    absent for a non-component dataset), ``id`` (the dataset UUID), ``storageClass``, any
    dimension name (``visit``), or ``element.field`` for a field of a dimension record
    (``exposure.obs_id``; needs a data ID with records).

Format spec and optional marker
    ``{name:spec?}``: an optional Python format spec (``08d``), then ``?`` marking the field
    optional; ``{visit:?}``, ``{visit:08d}`` and ``{visit:08d?}`` are all valid. The spec is
    applied to the raw value (the UUID's string for ``id``).

Missing values
    A missing required field is an error. A missing optional field is dropped together with the
    literal text before it that belongs to it: from the last separator (``_``, ``-`` or ``.``) of
    that text, within its path segment (``x_{band:?}`` and ``x_b{band:?}`` both give ``x``,
    ``x/{band:?}`` gives ``x/``). When nothing is left before it in its segment, the one
    separator after it goes instead (``/{day_obs:?}_{visit}`` gives ``/903334``). A path segment
    left empty disappears, so paths never contain ``//``. ``{component}`` on a non-component
    dataset is always treated as missing and optional.

Path safety
    In values, characters outside ``[A-Za-z0-9._+-]`` become ``_`` and a leading ``.`` becomes
    ``_``; only ``{run}`` keeps its ``/`` (``DemoCam/raw/all`` becomes directories). In the file
    name (last segment) every ``.`` becomes ``_``, so the datastore's extension is the only
    suffix. A component ref whose template lacks ``{component}`` gets ``_<component>`` appended.
    The result has no extension.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .datasets import DatasetRef, DatasetType
from .dimensions import DimensionElement, DimensionUniverse, FieldType, unknown_name_message
from .errors import ButlerError

__all__ = [
    "DEFAULT_TEMPLATE",
    "SPECIAL_FIELDS",
    "FileTemplate",
    "FileTemplateError",
    "FileTemplates",
    "TemplateField",
]

DEFAULT_TEMPLATE = (
    "{run}/{datasetType}/{band:?}/{day_obs:?}/"
    "{datasetType}_{band:?}_{instrument:?}_{skymap:?}_{tract:?}_{patch:?}"
    "_{physical_filter:?}_{day_obs:?}_{exposure:?}_{visit:?}_{detector:?}"
)
"""Template giving unique names to every dataset type of the packaged universe.

Every dimension that can be a required dimension of some dataset type has a field (all ten of
them: even ``band``, ``physical_filter`` and ``day_obs``, which are required when nothing in the
group implies them, e.g. coadds or flats). Implied ``band`` and ``day_obs`` values also sort files
into directories when the data ID carries them.
"""

SPECIAL_FIELDS = ("run", "datasetType", "component", "id", "storageClass")
"""Field names that are not dimensions."""

_SEPARATORS = "_-."
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")
_SAMPLES: dict[FieldType, Any] = {
    FieldType.INT: 0,
    FieldType.FLOAT: 0.0,
    FieldType.STRING: "x",
    FieldType.BOOL: False,
}


class FileTemplateError(ButlerError):
    """A file template is malformed, cannot be filled for a dataset, or cannot give it a unique name."""


@dataclass(frozen=True, slots=True)
class TemplateField:
    """One ``{...}`` placeholder of a file template."""

    name: str
    """Field name as written: a special field, a dimension, or ``element.field``."""
    format_spec: str
    """Python format spec applied to the value (without the ``?`` marker); may be empty."""
    optional: bool
    """Whether the field may be missing (written with a trailing ``?``)."""

    @property
    def element(self) -> str | None:
        """The dimension element of an ``element.field`` record field; None otherwise."""
        return self.name.split(".", 1)[0] if "." in self.name else None

    @property
    def record_field(self) -> str | None:
        """The record field name of an ``element.field`` record field; None otherwise."""
        return self.name.split(".", 1)[1] if "." in self.name else None

    def __str__(self) -> str:
        marker = "?" if self.optional else ""
        spec = f":{self.format_spec}{marker}" if self.format_spec or marker else ""
        return "{" + self.name + spec + "}"


class FileTemplate:
    """A parsed file-name template (syntax in the module docstring).

    Parameters
    ----------
    template
        The template text.
    universe
        Dimension universe the field names are checked against; the packaged one by default.

    Raises
    ------
    FileTemplateError
        Unbalanced braces, an unknown field (with a suggestion), a bad format spec, or an
        absolute or ``..`` path.
    """

    __slots__ = ("_parts", "template", "universe")

    def __init__(self, template: str, universe: DimensionUniverse | None = None) -> None:
        self.template = template
        self.universe = universe or DimensionUniverse.default()
        self._parts: tuple[tuple[str, TemplateField | None], ...] = self._parse()

    # -- parsing ------------------------------------------------------------------------

    def _error(self, problem: str) -> FileTemplateError:
        return FileTemplateError(f"Bad file template {self.template!r}: {problem}")

    def _parse(self) -> tuple[tuple[str, TemplateField | None], ...]:
        try:
            raw = list(string.Formatter().parse(self.template))
        except ValueError as err:
            raise self._error(f"{err} (write '{{{{' or '}}}}' for a literal brace).") from None
        parts: list[tuple[str, TemplateField | None]] = []
        for literal, name, spec, conversion in raw:
            if name is None:
                parts.append((literal, None))
                continue
            if conversion:
                raise self._error(
                    f"field {{{name}!{conversion}}} has a conversion; conversions are not supported."
                )
            parts.append((literal, self._parse_field(name, spec or "")))
        skeleton = "".join(literal + ("\0" if field is not None else "") for literal, field in parts)
        if skeleton.startswith("/"):
            raise self._error("it must be a relative path, not start with '/'.")
        if any(segment in (".", "..") for segment in skeleton.split("/")):
            raise self._error("it must not contain '.' or '..' path segments.")
        if not any(field is not None for _, field in parts):
            raise self._error("it has no fields, so every dataset would get the same name.")
        return tuple(parts)

    def _parse_field(self, name: str, spec: str) -> TemplateField:
        if "{" in spec:
            raise self._error(f"field {name!r} has a nested field in its format spec {spec!r}.")
        optional = spec.endswith("?")
        if optional:
            spec = spec[:-1]
        if "?" in spec:
            raise self._error(
                f"field {name!r} has '?' inside its format spec {spec!r}; write it last, as in {{{name}:08d?}}."
            )
        field = TemplateField(name, spec, optional)
        sample = self._sample_value(field)
        try:
            format(sample, spec)
        except (ValueError, TypeError) as err:
            raise self._error(f"invalid format spec {spec!r} for field {name!r}: {err}.") from None
        return field

    def _sample_value(self, field: TemplateField) -> Any:
        """A value of the field's type, used to check its format spec; raises for unknown names."""
        universe = self.universe
        if field.element is None:
            if field.name in SPECIAL_FIELDS:
                return "x"
            if field.name in universe and not universe[field.name].is_dimension:
                raise self._error(
                    f"field {field.name!r} is a join element, not a dimension; use one of its record "
                    f"fields ({{{field.name}.<field>}}) or its dimensions instead."
                )
            if field.name not in universe:
                candidates = [*SPECIAL_FIELDS, *universe.dimension_names]
                raise self._error(unknown_name_message("file template field", field.name, candidates))
            return _key_sample(universe[field.name])
        element_name, _, record_field = field.name.partition(".")
        if element_name not in universe:
            names = [e.name for e in universe.elements]
            raise self._error(
                f"in {field}: " + unknown_name_message("dimension element", element_name, names)
            )
        element = universe[element_name]
        if element.key is not None and record_field == element.key.name:
            return _key_sample(element)
        if record_field in element.required_dimensions or record_field in element.implies:
            return _key_sample(universe[record_field])
        for spec in element.metadata:
            if spec.name == record_field:
                return _SAMPLES[spec.type]
        usable = _usable_record_fields(element)
        raise self._error(
            f"in {field}: " + unknown_name_message(f"{element_name} record field", record_field, usable)
        )

    # -- views ----------------------------------------------------------------------------

    @property
    def fields(self) -> tuple[TemplateField, ...]:
        """The fields in template order."""
        return tuple(field for _, field in self._parts if field is not None)

    def field_names(self, *, optional: bool = True) -> set[str]:
        """Names of the fields used, optionally leaving out optional ones."""
        return {f.name for f in self.fields if optional or not f.optional}

    # -- formatting -----------------------------------------------------------------------

    def format(self, ref: DatasetRef) -> str:
        """The relative POSIX path, without extension, of the file for ``ref``.

        Raises
        ------
        FileTemplateError
            A required field has no value for ``ref`` (a dimension it does not have, an implied
            value or record of a data ID that was not expanded), a value does not fit its format
            spec, or the path comes out empty.
        """
        dataset_type = ref.dataset_type
        mapping = ref.data_id.mapping  # built once: formatting runs per dataset in merges of millions
        output = ""
        strip_leading = False  # the separator after a dropped field that led its segment goes too
        used_component = False
        for literal, field in self._parts:
            if strip_leading and literal and literal[0] in _SEPARATORS:
                literal = literal[1:]
            if field is None:
                output += literal
                strip_leading = strip_leading and not literal
                continue
            if field.name == "component":
                used_component = True
            value = self._value(field, ref, mapping)
            if value is None:
                if not field.optional and field.name != "component":
                    raise FileTemplateError(
                        f"File template {self.template!r} needs {field} but {ref} has no value for it"
                        f"{self._missing_reason(field, ref)}; mark the field optional ({{{field.name}:?}}) "
                        "or use another template."
                    )
                output += _drop_owned_prefix(literal)
                strip_leading = not output.rsplit("/", 1)[-1]
                continue
            try:
                text = format(value, field.format_spec)
            except (ValueError, TypeError) as err:
                raise FileTemplateError(
                    f"File template {self.template!r}: cannot format {field.name}={value!r} with spec "
                    f"{field.format_spec!r} for {ref}: {err}."
                ) from None
            output += literal + _path_safe(text, keep_slash=field.name == "run")
            strip_leading = False
        segments = [segment for segment in output.split("/") if segment]
        if not segments:
            raise FileTemplateError(f"File template {self.template!r} gives an empty path for {ref}.")
        if dataset_type.component is not None and not used_component:
            segments[-1] += "_" + _path_safe(dataset_type.component, keep_slash=False)
        segments[-1] = segments[-1].replace(".", "_")
        return "/".join(segments)

    def _value(self, field: TemplateField, ref: DatasetRef, mapping: Mapping[str, Any]) -> Any:
        """The raw value of ``field`` for ``ref``; None when it has none."""
        name = field.name
        if name == "run":
            return ref.run
        if name == "datasetType":
            return ref.dataset_type.parent_name
        if name == "component":
            return ref.dataset_type.component
        if name == "id":
            return str(ref.id)
        if name == "storageClass":
            return ref.dataset_type.storage_class_name
        data_id = ref.data_id
        element_name, record_field = field.element, field.record_field
        if element_name is None or record_field is None:
            return mapping.get(name)
        if data_id.has_records and element_name in data_id.records:
            record = data_id.records[element_name]
            try:
                return record[record_field]
            except KeyError:
                return None
        # Key and dimension fields of a record are in the data ID itself.
        element = self.universe[element_name]
        if element.key is not None and record_field == element.key.name:
            return mapping.get(element_name)
        is_dimension_field = record_field in element.required_dimensions or record_field in element.implies
        if is_dimension_field and (element_name in mapping or not element.is_dimension):
            return mapping.get(record_field)
        return None

    def _missing_reason(self, field: TemplateField, ref: DatasetRef) -> str:
        data_id = ref.data_id
        name = field.element or field.name
        if name in SPECIAL_FIELDS:
            return ""
        if name not in data_id.dimensions.elements:
            return f" (dimensions {data_id.dimensions})"
        if field.element is not None and not data_id.has_records:
            return " (its data ID has no dimension records; expand it with the registry first)"
        if name in data_id.dimensions.implied and name not in data_id.mapping:
            return f" ({name} is implied and its data ID was not expanded)"
        return ""

    # -- validation -----------------------------------------------------------------------

    def validate(self, dataset_type: DatasetType | None = None) -> None:
        """Check that this template gives unique names (to ``dataset_type`` when given).

        Without ``{id}``, a template needs ``{run}``, ``{datasetType}`` and a field (optional or
        not) for every required dimension; ``{element.field}`` covers its element. Implied
        dimensions need not appear. A non-optional dimension field the dataset type does not
        have is refused too, since formatting would always fail.

        Raises
        ------
        FileTemplateError
            Naming what the template lacks.
        """
        names = self.field_names()
        what = dataset_type.name if dataset_type is not None else "datasets"
        if "id" not in names:
            lacks = [special for special in ("run", "datasetType") if special not in names]
            required: tuple[str, ...] = ()
            if dataset_type is not None:
                required = dataset_type.dimensions.required
                covered = self._covered_dimensions()
                lacks.extend(name for name in required if name not in covered)
            if lacks:
                dims = f" (dimensions {', '.join(required)})" if dataset_type is not None else ""
                raise FileTemplateError(
                    f"File template {self.template!r} cannot give unique names to {what}: it lacks "
                    f"{', '.join(lacks)}{dims}. Add the fields (optional ones suffice) or {{id}}."
                )
        if dataset_type is None:
            return
        group = dataset_type.dimensions
        absent = [
            str(field)
            for field in self.fields
            if not field.optional
            and field.name not in SPECIAL_FIELDS
            and (field.element or field.name) not in group.elements
        ]
        if absent:
            raise FileTemplateError(
                f"File template {self.template!r} cannot name {what}: it requires {', '.join(absent)} but "
                f"{what} has dimensions {group}; mark the fields optional or use another template."
            )

    def _covered_dimensions(self) -> set[str]:
        """Dimensions whose values the fields pin down."""
        covered: set[str] = set()
        for field in self.fields:
            element_name, record_field = field.element, field.record_field
            if element_name is None or record_field is None:
                covered.add(field.name)
                continue
            element = self.universe[element_name]
            if record_field in element.required_dimensions or record_field in element.implies:
                covered.add(record_field)
            elif element.is_dimension:
                covered.add(element_name)  # its key or a metadata field such as exposure.obs_id
        return covered

    # -- object protocol ------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FileTemplate):
            return NotImplemented
        return self.template == other.template and self.universe is other.universe

    def __hash__(self) -> int:
        return hash(self.template)

    def __str__(self) -> str:
        return self.template

    def __repr__(self) -> str:
        return f"FileTemplate({self.template!r})"


class FileTemplates:
    """The file templates of a datastore, looked up by dataset type, storage class or ``default``.

    Parameters
    ----------
    config
        Template text by key: a dataset type name (``calexp``, or ``calexp.wcs`` for one
        component), a storage class name (``ExposureF``), or ``default``.
    universe
        Dimension universe for the templates; the packaged one by default.

    Raises
    ------
    FileTemplateError
        A template is malformed or lacks ``{run}``/``{datasetType}`` (and ``{id}``); all such
        problems are reported together.
    """

    __slots__ = ("_templates", "universe")

    def __init__(self, config: Mapping[str, str], universe: DimensionUniverse | None = None) -> None:
        self.universe = universe or DimensionUniverse.default()
        self._templates: dict[str, FileTemplate] = {}
        problems: list[str] = []
        entries: Mapping[str, object] = config  # YAML may give other types whatever the annotation says
        for key, text in entries.items():
            if not isinstance(text, str):
                problems.append(f"{key}: template must be a string, got {type(text).__name__} {text!r}")
                continue
            try:
                template = FileTemplate(text, self.universe)
                template.validate()
            except FileTemplateError as err:
                problems.append(f"{key}: {err}")
                continue
            self._templates[key] = template
        if problems:
            raise FileTemplateError("Invalid file template configuration:\n  " + "\n  ".join(problems))

    @property
    def templates(self) -> Mapping[str, FileTemplate]:
        """The parsed templates by configuration key."""
        return dict(self._templates)

    def template_for(self, dataset_type: DatasetType) -> FileTemplate:
        """The template for ``dataset_type``.

        Looks up the full name (``calexp.wcs``), the parent name (``calexp``), the storage class
        name, then ``default``.

        Raises
        ------
        FileTemplateError
            Nothing matches and there is no ``default``.
        """
        keys = (dataset_type.name, dataset_type.parent_name, dataset_type.storage_class_name, "default")
        for key in keys:
            template = self._templates.get(key)
            if template is not None:
                return template
        raise FileTemplateError(
            f"No file template for dataset type {dataset_type.name!r} (storage class "
            f"{dataset_type.storage_class_name!r}) and no 'default' template; configured keys: "
            f"{', '.join(self._templates) or '(none)'}."
        )

    def format(self, ref: DatasetRef) -> str:
        """The path for ``ref`` from its dataset type's template (see `FileTemplate.format`)."""
        return self.template_for(ref.dataset_type).format(ref)

    def validate_all(self, dataset_types: Iterable[DatasetType]) -> None:
        """Check every dataset type against its template; one error lists every failure."""
        problems: list[str] = []
        for dataset_type in dataset_types:
            try:
                self.template_for(dataset_type).validate(dataset_type)
            except FileTemplateError as err:
                problems.append(str(err))
        if problems:
            raise FileTemplateError(
                f"{len(problems)} dataset type(s) fail file template validation:\n  " + "\n  ".join(problems)
            )

    def __repr__(self) -> str:
        templates = {key: template.template for key, template in self._templates.items()}
        return f"FileTemplates({templates!r})"


def _key_sample(element: DimensionElement) -> Any:
    key = element.key
    return _SAMPLES[key.type] if key is not None else "x"


def _usable_record_fields(element: DimensionElement) -> list[str]:
    """Record fields a template may use: keys, dimensions and metadata (not timespan or region)."""
    own_key = [element.key.name] if element.key is not None else []
    return [*element.required_dimensions, *own_key, *element.implies, *(m.name for m in element.metadata)]


@functools.lru_cache(maxsize=1024)
def _drop_owned_prefix(literal: str) -> str:
    """``literal`` without the tail that belongs to the optional field after it.

    The tail starts at the last separator of the literal's final path segment.
    """
    head, slash, segment = literal.rpartition("/")
    cut = max(segment.rfind(sep) for sep in _SEPARATORS)
    if cut < 0:
        return literal
    return head + slash + segment[:cut]


@functools.lru_cache(maxsize=65536)  # values repeat across millions of datasets (runs, bands, ...)
def _path_safe(text: str, *, keep_slash: bool) -> str:
    """``text`` with unsafe characters replaced by ``_``; with ``keep_slash`` each ``/`` part separately."""
    if keep_slash:
        return "/".join(_path_safe(part, keep_slash=False) for part in text.split("/") if part)
    text = _UNSAFE.sub("_", text)
    return "_" + text[1:] if text.startswith(".") else text
