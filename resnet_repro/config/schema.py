"""The config's JSON schema (workflow/schemas/config.schema.yaml), applied as the Snakefile
applies it, with each property's default filled in; a violation becomes one ConfigError line
that names the key and what is allowed."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .errors import ConfigError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def load_schema() -> dict[str, Any]:
    if not SCHEMA_PATH.is_file():
        raise ConfigError(
            f"config schema not found at {SCHEMA_PATH}; install the project from its checkout "
            f"with pip install -e ."
        )
    with open(SCHEMA_PATH) as f:
        return yaml.safe_load(f)


def _with_defaults(validator_class):
    """A validator that fills in each property's default before checking it."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _strict_integer(checker, instance) -> bool:
    # JSON Schema counts 8.0 as an integer; a depth of 8.0 would become the model name
    # "resnet8.0" downstream, so only real Python ints (never bools) pass.
    return isinstance(instance, int) and not isinstance(instance, bool)


def _strict_types(validator_class):
    checker = validator_class.TYPE_CHECKER.redefine("integer", _strict_integer)
    return jsonschema.validators.extend(validator_class, type_checker=checker)


_DefaultFillingValidator = _with_defaults(_strict_types(jsonschema.Draft202012Validator))


def _key(path: Iterable[Any]) -> str:
    parts = [str(p) for p in path]
    return ".".join(parts) if parts else "(top level)"


def _describe(error: jsonschema.ValidationError) -> str:
    key = _key(error.absolute_path)
    schema = error.schema
    if error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        prefix = f"{key}." if error.absolute_path else ""
        return (
            f"unknown config key {', '.join(prefix + e for e in extra)}; allowed keys"
            f"{' in ' + key if error.absolute_path else ''}: {', '.join(allowed)}"
        )
    if error.validator == "enum":
        return f"{key}: {error.instance!r} is not allowed; allowed values: {schema['enum']}"
    if error.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bounds = []
        for word, sym in (
            ("minimum", ">="),
            ("exclusiveMinimum", ">"),
            ("maximum", "<="),
            ("exclusiveMaximum", "<"),
        ):
            if word in schema:
                bounds.append(f"{sym} {schema[word]}")
        return f"{key}: {error.instance!r} is out of range; allowed: {' and '.join(bounds)}"
    if error.validator == "type":
        return f"{key}: {error.instance!r} has the wrong type; expected {schema['type']}"
    if error.validator == "minItems":
        if not error.instance:
            return f"{key}: the list is empty; give at least {schema['minItems']} value(s)"
        return (
            f"{key}: {error.instance!r} has {len(error.instance)} value(s); give at least "
            f"{schema['minItems']}"
        )
    if error.validator == "maxItems":
        return (
            f"{key}: {error.instance!r} has {len(error.instance)} values; give at most "
            f"{schema['maxItems']}"
        )
    if error.validator == "uniqueItems":
        return f"{key}: {error.instance!r} lists a value twice; values must be unique"
    if error.validator == "pattern":
        return f"{key}: {error.instance!r} does not match {schema['pattern']}"
    return f"{key}: {error.message}"


def validate_dict(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate a config dict against the schema and return a copy with defaults filled."""
    cfg = copy.deepcopy(dict(raw or {}))
    validator = _DefaultFillingValidator(load_schema())
    errors = sorted(validator.iter_errors(cfg), key=lambda e: (len(e.absolute_path), e.path))
    if errors:
        # The deepest-first ordering above puts the most specific error first.
        raise ConfigError(_describe(errors[0]))
    return cfg
