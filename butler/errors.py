"""Exceptions of the butler layer; each carries the exit code its CLI returns."""

from __future__ import annotations

__all__ = [
    "ButlerError",
    "CollectionCycleError",
    "CollectionError",
    "CollectionTypeError",
    "ConflictingDefinitionError",
    "DataIdError",
    "DataIdValueError",
    "DatasetTypeError",
    "DimensionNameError",
    "ExpressionError",
    "ExpressionSyntaxError",
    "InvalidQueryError",
    "MissingCollectionError",
    "MissingDatasetTypeError",
    "OrphanedRecordError",
    "RepositoryExistsError",
    "RepositoryNotFoundError",
    "UniverseMismatchError",
    "UnknownIdentifierError",
]


class ButlerError(Exception):
    """Root of every error raised by the butler layer."""

    exit_code: int = 1


class RepositoryExistsError(ButlerError):
    """A repository already exists where one was asked to be created."""


class RepositoryNotFoundError(ButlerError):
    """No repository configuration was found at the given location."""


class UniverseMismatchError(ButlerError):
    """The repository was created with an incompatible dimension universe."""


class DimensionNameError(ButlerError, KeyError):
    """A name is not a dimension or dimension element of the universe."""

    def __str__(self) -> str:  # KeyError would quote the message.
        return str(self.args[0]) if self.args else ""


class DataIdError(ButlerError, ValueError):
    """A data ID is malformed: unknown key, wrong type, or missing required key."""


class DataIdValueError(DataIdError):
    """A data ID value has no dimension record in the registry."""


class ConflictingDefinitionError(ButlerError):
    """A definition (dataset type, dimension record, collection) conflicts with an existing one."""


class DatasetTypeError(ButlerError, ValueError):
    """A dataset type is malformed or used incorrectly."""


class MissingDatasetTypeError(ButlerError, KeyError):
    """A dataset type is not registered."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class MissingCollectionError(ButlerError, KeyError):
    """A collection does not exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class CollectionTypeError(ButlerError, TypeError):
    """An operation is not valid for the type of the collection it was given."""


class CollectionError(ButlerError, ValueError):
    """A collection name or chain position is invalid."""


class CollectionCycleError(ButlerError, ValueError):
    """A chained collection would (indirectly) contain itself."""


class OrphanedRecordError(ButlerError):
    """A removal would leave rows that depend on what is being removed."""


class InvalidQueryError(ButlerError, ValueError):
    """A query is well-formed but cannot be answered as asked."""


class ExpressionError(InvalidQueryError):
    """A WHERE expression is invalid."""


class ExpressionSyntaxError(ExpressionError):
    """A WHERE expression could not be parsed.

    Attributes ``line``, ``column`` (1-based) and ``expected`` (token names)
    say where and what the parser wanted.
    """

    def __init__(self, message: str, *, line: int, column: int, expected: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.line = line
        self.column = column
        self.expected = expected


class UnknownIdentifierError(ExpressionError):
    """A WHERE expression names a dimension, field or bind parameter that does not exist."""
