"""Loading settings: the YAML file, ``LIANXIN__SECTION__KEY`` overrides, one-line errors."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    TypeAdapter,
    ValidationError,
)

from bot.settings.base import ENV_PREFIX, ConfigError, env_name
from bot.settings.root import Settings


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, raw in environ.items():
        if not _is_override(name):
            continue
        path = _env_path(name)
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{name}: conflicts with another override")
        node[path[-1]] = _env_value(raw)
    return tree


def _env_value(raw: str) -> Any:
    """An environment value as the settings should see it.

    Kept as the string it is, and pydantic converts it where a field wants a number or a
    boolean ("3", "true"). Read as YAML only for what a string cannot say: a list or mapping
    ("[a, b]") and "null" (clears a key). Reading every value as YAML changed secrets behind
    the operator's back: "012345" is the octal number 5349 to YAML, "0777", "on", "12:30" and
    "1_000" are not strings either, and a value starting with "#" is a comment.
    """
    text = raw.strip()
    if not text or text in ("null", "~"):
        return None
    if text[0] in "[{":
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:
            return raw
    return raw


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _with_default_maps(
    data: dict[str, Any], paths: list[list[str]], model: type[BaseModel]
) -> dict[str, Any]:
    """``data`` plus the built-in entries of every map with defaults (``visits.plan_reasons``)
    that an override's path (``paths``: ``LIANXIN__VISITS__PLAN_REASONS__LIVING_ALONE__EVERY_DAYS``
    → visits, plan_reasons, living_alone, every_days) reaches inside of while ``data`` does
    not set the map: the override then changes one field of a default entry instead of
    replacing the whole map with a one-field entry. A map the file sets, or an override that
    gives the whole map (``LIANXIN__VISITS__PLAN_REASONS='{…}'``), replaces the defaults."""
    out = dict(data)
    for key in {path[0] for path in paths if len(path) > 1}:  # overrides inside ``key``
        field = model.model_fields.get(key)
        if field is None or field.annotation is None:
            continue  # a misspelt key: validation names it
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):  # a section: look inside
            inner = out.get(key)
            if inner is None or isinstance(inner, dict):
                rest = [path[1:] for path in paths if path[0] == key]
                filled = _with_default_maps(inner or {}, rest, kind)
                if filled:
                    out[key] = filled
        elif key not in out:
            default = field.get_default(call_default_factory=True)
            if isinstance(default, dict) and default:
                out[key] = TypeAdapter(kind).dump_python(default)
    return out


def _is_override(name: str) -> bool:
    return name.startswith(ENV_PREFIX) and name != ENV_PREFIX


def _env_path(name: str) -> list[str]:
    """The key path a variable names: ``LIANXIN__BRIDGE__SECRET`` → bridge, secret."""
    return [p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p]


def _env_paths(environ: Mapping[str, str]) -> list[list[str]]:
    """The key path each ``LIANXIN__…`` variable names, as :func:`_env_overrides` reads it."""
    return [_env_path(name) for name in environ if _is_override(name)]


_SECRET_KEYS = {
    ("wechat", "token"),
    ("wechat", "encoding_aes_key"),
    ("wechat", "app_secret"),
    ("bridge", "secret"),
    ("wecom", "token"),
    ("wecom", "encoding_aes_key"),
    ("security", "pii_key"),
    ("sms", "access_key_secret"),
}


def _stringify_secrets(tree: dict[str, Any]) -> None:
    # A numeric-looking token must not turn into an int on the way through YAML.
    for section, key in _SECRET_KEYS:
        node = tree.get(section)
        if isinstance(node, dict) and node.get(key) is not None and not isinstance(node[key], str):
            node[key] = str(node[key])


def config_path(explicit: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path | None:
    """``--config``, else ``$LIANXIN_CONFIG``, else ``./config.yaml`` when it exists."""
    if explicit:
        return Path(explicit)
    if environ.get("LIANXIN_CONFIG"):
        return Path(environ["LIANXIN_CONFIG"])
    default = Path("config.yaml")
    return default if default.exists() else None


def _read_config(file: Path) -> str:
    """The config file's text; anything that keeps it from being read is one line naming the
    file (a folder given as --config, or a file saved in another encoding, was a traceback)."""
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {file}") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {file} is a folder: give the file in it") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {file}: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{file}: not UTF-8 text (line {line}): save it as UTF-8, as the example config.yaml is"
        ) from None


def _yaml_of(text: str, file: Path) -> Any:
    """``text`` read as YAML; an error is one line with its place, as every start-up error."""
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = " ".join(str(exc.problem or exc.context or "").split())
        raise ConfigError(f"{file}: not valid YAML: {problem}{where}") from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        problem = " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigError(f"{file}: not valid YAML: {problem}") from None


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
    require_secrets: bool = True,
    read_file: bool = True,
) -> Settings:
    """Read the config file, apply environment and explicit overrides, validate.

    ``read_file=False`` ignores every config file (the demo runs on its own settings).
    """
    environ = os.environ if environ is None else environ
    file = config_path(path, environ) if read_file else None
    data: dict[str, Any] = {}
    if file is not None:
        loaded = _yaml_of(_read_config(file), file)
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{file}: top level must be a mapping")
        data = loaded or {}
        for section, key in sorted({*_SECRET_KEYS, ("security", "pii_previous_keys")}):
            node = data.get(section)
            # Any value but an empty one (null, "", []: no secret in it, as if the key were
            # not there): `token: 0` or `secret: false` is a secret in the file, and would
            # become the token "0" (a truthiness test let them through).
            if isinstance(node, dict) and key in node and node[key] not in (None, "", []):
                # CONTRACT §1: secrets come from the environment only. A config file is copied,
                # mailed and committed; the environment of the service is not.
                raise ConfigError(
                    f"{section}.{key} is set in {file}: secrets come from the environment only; "
                    f"remove it there and set {env_name(f'{section}.{key}')}"
                )
    data = _merge(_with_default_maps(data, _env_paths(environ), Settings), _env_overrides(environ))
    if overrides:
        data = _merge(data, overrides)
    _stringify_secrets(data)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, environ, file)) from None
    if require_secrets:
        settings.check_secrets()
    return settings


def _describe(exc: ValidationError, environ: Mapping[str, str], file: Path | None) -> str:
    """One line naming each bad key and where its value came from: the variable that set it
    (an operator looking for a misspelt ``databse`` in config.yaml would not find it), or the
    file."""
    overrides = [(tuple(_env_path(name)), name) for name in environ if _is_override(name)]
    parts = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        # The variables that set this key, a key inside it (LIANXIN__DATABSE__URL makes an
        # unknown section "databse"), or a section or map above it.
        names = sorted(name for path, name in overrides if path[: len(loc)] == loc[: len(path)])
        where = ", ".join(f"${name}" for name in names) or (str(file) if file else "")
        # pydantic's "Value error, " is no news to an operator; "Extra inputs are not
        # permitted" says less than what it means here.
        if err["type"] == "extra_forbidden":
            message = "unknown setting"
        elif err.get("input", "") is None:
            # An empty variable or key (or "null") clears it; this one cannot be cleared.
            # "Input should be a valid string" said nothing of the empty value behind it.
            undo = "unset the variable" if names else "remove the key"
            message = f"is empty and cannot be: give a value, or {undo} for the default"
        else:
            message = err["msg"].removeprefix("Value error, ")
        parts.append(f"{'.'.join(loc)}{f' (from {where})' if where else ''}: {message}")
    return "invalid configuration: " + "; ".join(parts)
