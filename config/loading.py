"""Reading the TOML settings file strictly: a key no setting has is refused, named with the closest known one."""

from __future__ import annotations

import difflib
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_settings import BaseSettings, TomlConfigSettingsSource


class UnknownSettingError(ValueError):
    """Keys in the TOML file that no setting has: a typo (`secert`, `[htpp]`) would otherwise be ignored."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class StrictTomlSource(TomlConfigSettingsSource):
    """The TOML file, refused when it has a key no setting has (naming the key and the closest known one)."""

    def __init__(self, settings_cls: type[BaseSettings], toml_file: Path) -> None:
        super().__init__(settings_cls, toml_file=toml_file)
        problems = unknown_keys(settings_cls, self.toml_data)
        if problems:
            raise UnknownSettingError([f"{toml_file}: {problem}" for problem in problems])


def unknown_keys(model: type[BaseModel], data: dict[str, Any], where: str = "") -> list[str]:
    """One sentence per key of `data` that `model` has no field for, nested sections included."""
    problems: list[str] = []
    fields = model.model_fields
    for key, value in data.items():
        path = f"{where}.{key}" if where else key
        if key not in fields:
            near = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
            hint = f"，是不是 {where + '.' if where else ''}{near[0]}？" if near else ""
            kind = "节" if isinstance(value, dict) else "键"
            problems.append(f"未知的{kind} {'[' + path + ']' if isinstance(value, dict) else path}{hint}")
            continue
        inner = _model_of(fields[key].annotation)
        if inner is not None and isinstance(value, dict):
            problems += unknown_keys(inner, value, path)
        elif isinstance(value, dict) and (each := _dict_values_model(fields[key].annotation)) is not None:
            for name, item in value.items():
                if isinstance(item, dict):
                    problems += unknown_keys(each, item, f"{path}.{name}")
    return problems


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        found = [a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        return found[0] if len(found) == 1 else None
    return None


def _dict_values_model(annotation: Any) -> type[BaseModel] | None:
    if typing.get_origin(annotation) is dict:
        args = typing.get_args(annotation)
        return _model_of(args[1]) if len(args) == 2 else None
    return None
