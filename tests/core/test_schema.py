"""Tests of the metadata.json schema and its validator."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from modelkb.errors import BundleSchemaError
from modelkb.schema import is_datetime, json_path, load_schema, validate_metadata

Meta = dict[str, Any]


def minimal() -> Meta:
    return {
        "schema_version": 1,
        "id": "01jdx3k9y2q8m4t6v0w1a2b3c4",
        "project": "Digits",
        "name": "digits-20261129-024512-b3c4",
        "status": "running",
    }


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    from jsonschema import Draft202012Validator

    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert schema["required"] == ["schema_version", "id", "project", "name", "status"]


def test_load_schema_returns_a_copy() -> None:
    load_schema()["properties"].clear()
    assert "id" in load_schema()["properties"]
    validate_metadata(minimal())


def test_sample_metadata_is_valid(sample_metadata: Meta) -> None:
    before = json.dumps(sample_metadata, sort_keys=True)
    validate_metadata(sample_metadata)
    assert json.dumps(sample_metadata, sort_keys=True) == before  # not mutated


def test_minimal_metadata_is_valid() -> None:
    validate_metadata(minimal())


def test_sample_survives_a_json_round_trip(sample_metadata: Meta) -> None:
    validate_metadata(json.loads(json.dumps(sample_metadata)))


def test_unknown_keys_are_accepted_everywhere(sample_metadata: Meta) -> None:
    meta = sample_metadata
    meta["future_field"] = {"anything": [1, "two"]}
    meta["framework"]["jit"] = True
    meta["hyperparameters"]["optimizer"]["clipnorm"] = 1.0
    meta["architecture"]["layers"][0]["trainable"] = True
    meta["dataset"]["license"] = "CC0"
    meta["dataset"]["preprocessing"][0]["clip"] = [0, 1]
    meta["metrics"]["history"][0]["grad_norm"] = 0.3
    meta["context"]["git"]["tag"] = "v1"
    meta["warnings"].append(
        {"message": "m", "source": "s", "time": "2026-11-29T02:45:12Z", "count": 2}
    )
    meta["artifacts"][0]["mtime"] = 1.5
    meta["code"] = {"files": ["train.py"]}
    validate_metadata(meta)


def test_nan_written_as_null_is_accepted(sample_metadata: Meta) -> None:
    sample_metadata["metrics"]["final"]["val_loss"] = None
    sample_metadata["metrics"]["history"][0]["train"]["loss"] = None
    sample_metadata["metrics"]["history"][0]["lr"] = None
    sample_metadata["seed"] = None
    validate_metadata(sample_metadata)


def _set(path: str, value: Any) -> Callable[[Meta], None]:
    """A mutation that sets a dotted path (``[i]`` indexes lists)."""

    def apply(meta: Meta) -> None:
        keys: list[str | int] = []
        for part in path.replace("[", ".[").split("."):
            keys.append(int(part[1:-1]) if part.startswith("[") else part)
        target: Any = meta
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return apply


def _delete(key: str) -> Callable[[Meta], None]:
    return lambda meta: meta.pop(key)


BROKEN = [
    pytest.param(_delete("id"), "(root): 'id' is a required property", id="missing-id"),
    pytest.param(_delete("status"), "(root): 'status' is a required property", id="missing-status"),
    pytest.param(_set("schema_version", 2), "schema_version: 1 was expected", id="schema-version"),
    pytest.param(
        _set("id", "01JDX3K9Y2Q8M4T6V0W1A2B3C4"),
        "id: '01JDX3K9Y2Q8M4T6V0W1A2B3C4' does not match",
        id="id-uppercase",
    ),
    pytest.param(_set("id", "01jdx3k9y2q8m4t6v0w1a2b3cu"), "id: ", id="id-not-crockford"),
    pytest.param(_set("project", ""), "project: '' should be non-empty", id="project-empty"),
    pytest.param(_set("status", "done"), "status: 'done' is not one of", id="status"),
    pytest.param(_set("tags", "cnn"), "tags: 'cnn' is not of type 'array'", id="tags-string"),
    pytest.param(
        _set("created", "yesterday"), "created: 'yesterday' is not a 'date-time'", id="timestamp"
    ),
    pytest.param(_set("seed", 1.5), "seed: 1.5 is not of type 'integer', 'null'", id="seed-float"),
    pytest.param(_set("seed", True), "seed: True is not of type 'integer', 'null'", id="seed-bool"),
    pytest.param(
        _set("metrics.final.accuracy", "high"),
        "metrics.final.accuracy: 'high' is not of type 'number', 'null'",
        id="final-metric",
    ),
    pytest.param(
        _set("metrics.history[1].epoch", "1"),
        "metrics.history[1].epoch: '1' is not of type 'integer'",
        id="epoch",
    ),
    pytest.param(
        _set("metrics.history[0].val.loss", [0.3]),
        "metrics.history[0].val.loss:",
        id="history-value",
    ),
    pytest.param(
        _set("dataset.kind", "video"), "dataset.kind: 'video' is not one of", id="dataset-kind"
    ),
    pytest.param(
        _set("dataset.preprocessing[0]", {"factor": 0.5}),
        "dataset.preprocessing[0]: 'op' is a required property",
        id="preprocessing-op",
    ),
    pytest.param(
        _set("artifacts[3].sha256", "abc123"),
        "artifacts[3].sha256: 'abc123' does not match",
        id="sha256",
    ),
    pytest.param(
        _set("artifacts[0].size", -1),
        "artifacts[0].size: -1 is less than the minimum of 0",
        id="size",
    ),
    pytest.param(
        _set("architecture.layers[2].params", "0"),
        "architecture.layers[2].params:",
        id="layer-params",
    ),
    pytest.param(
        _set("context.git.dirty", "no"),
        "context.git.dirty: 'no' is not of type 'boolean', 'null'",
        id="git-dirty",
    ),
    pytest.param(
        _set("warnings", [{"source": "seed"}]),
        "warnings[0]: 'message' is a required property",
        id="warning",
    ),
]


@pytest.mark.parametrize(("mutate", "expected"), BROKEN)
def test_broken_metadata_names_the_json_path(
    sample_metadata: Meta, mutate: Callable[[Meta], None], expected: str
) -> None:
    mutate(sample_metadata)
    with pytest.raises(BundleSchemaError) as info:
        validate_metadata(sample_metadata)
    message = str(info.value)
    assert message.startswith(expected), message
    assert "\n" not in message
    assert info.value.path is None


def test_error_is_a_value_error_with_the_bundle_path_and_cause(sample_metadata: Meta) -> None:
    sample_metadata["metrics"]["final"]["accuracy"] = "high"
    with pytest.raises(
        ValueError, match=r"^/store/digits/01jd: metrics\.final\.accuracy: 'high'"
    ) as info:
        validate_metadata(sample_metadata, path="/store/digits/01jd")
    assert isinstance(info.value, BundleSchemaError)
    assert info.value.path == "/store/digits/01jd"
    from jsonschema import ValidationError

    assert isinstance(info.value.__cause__, ValidationError)


def test_newer_schema_version_gets_a_hint() -> None:
    meta = minimal() | {"schema_version": 2}
    with pytest.raises(BundleSchemaError) as info:
        validate_metadata(meta)
    assert info.value.hint is not None and "upgrade" in info.value.hint


def test_long_values_are_cut_to_one_line() -> None:
    meta = minimal() | {"notes": {"text": "x\n" * 500}}
    with pytest.raises(BundleSchemaError) as info:
        validate_metadata(meta)
    message = str(info.value)
    assert message.startswith("notes: ")
    assert len(message) <= 310
    assert "\n" not in message


def test_non_object_metadata_is_rejected() -> None:
    with pytest.raises(BundleSchemaError, match=r"^\(root\): \[\] is not of type 'object'"):
        validate_metadata([])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("2026-11-29T02:45:12.123Z", True),
        ("2026-11-29T02:45:12Z", True),
        ("2026-11-29T02:45:12.123456+05:30", True),
        ("2016-12-31T23:59:60Z", True),
        ("2026-02-30T00:00:00Z", False),
        ("2026-11-29T02:45:12", False),
        ("2026-11-29 02:45:12Z", False),
        ("2026-11-29", False),
        ("2026-11-29T25:00:00Z", False),
    ],
)
def test_is_datetime(text: str, valid: bool) -> None:
    assert is_datetime(text) is valid


def test_json_path() -> None:
    assert json_path(["metrics", "history", 0, "epoch"]) == "metrics.history[0].epoch"
    assert json_path([]) == "(root)"
    assert json_path(["artifacts", 2]) == "artifacts[2]"


def test_importing_schema_module_does_not_import_jsonschema() -> None:
    code = "import sys, modelkb.schema; print('jsonschema' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
