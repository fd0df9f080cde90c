"""Finding task classes by import path ("package.module.ClassName"), with errors that show what went wrong."""

from __future__ import annotations

import importlib
import traceback

from .errors import TaskImportError
from .task import PipelineTask

__all__ = ["load_task_class", "task_class_path"]


def load_task_class(path: str) -> type[PipelineTask]:
    """The PipelineTask subclass at ``path``; `TaskImportError` names the path and shows the original error."""
    module_name, _, class_name = path.rpartition(".")
    if not module_name or not class_name:
        raise TaskImportError(
            f"Task class {path!r} is not an import path of the form 'package.module.ClassName'."
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name is not None and module_name.startswith(err.name):
            raise TaskImportError(
                f"Cannot import task class {path!r}: no module named {err.name!r}."
            ) from err
        raise TaskImportError(_inner_error(path, module_name, err)) from err
    except Exception as err:  # an error raised inside the task's module: show it, it is the user's bug
        raise TaskImportError(_inner_error(path, module_name, err)) from err
    try:
        task_class = getattr(module, class_name)
    except AttributeError:
        raise TaskImportError(
            f"Cannot import task class {path!r}: module {module_name!r} has no {class_name!r}."
        ) from None
    if not (isinstance(task_class, type) and issubclass(task_class, PipelineTask)):
        raise TaskImportError(f"{path!r} is not a PipelineTask subclass (it is {task_class!r}).")
    return task_class


def task_class_path(task_class: type) -> str:
    """The import path `load_task_class` accepts for ``task_class``."""
    return f"{task_class.__module__}.{task_class.__qualname__}"


def _inner_error(path: str, module_name: str, err: BaseException) -> str:
    frames = traceback.extract_tb(err.__traceback__)
    where = next((f"{frame.filename}:{frame.lineno}" for frame in reversed(frames)), "")
    return (
        f"Cannot import task class {path!r}: importing module {module_name!r} raised "
        f"{type(err).__name__}: {err}" + (f" (at {where})" if where else "")
    )
