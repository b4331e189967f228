"""The public recording API never writes a bundle its own schema rejects.

Each natural-but-wrong value is either coerced at the call into the schema's form (and the bundle
then reads and reindexes cleanly) or refused at the call with a ValueError naming the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelkb.experiment import Experiment
from modelkb.store import Store


def _run(tmp_path: Path, record) -> tuple[Experiment, dict[str, Any]]:
    """A completed run whose bundle must read (schema-validated) and survive a reindex."""
    store = tmp_path / "store"
    with Experiment("P", "u", store=store, capture_code=False) as exp:
        record(exp)
        exp.log_metrics({"loss": 0.5}, epoch=0)
    meta = Store(store).get(exp.id).metadata  # read_bundle validates against the schema
    assert meta["status"] == "completed"
    count, problems = Store(store).reindex()
    assert (count, problems) == (1, [])
    assert not [
        w for w in meta.get("warnings", []) if w["source"] in ("dataset", "params", "architecture")
    ]
    return exp, meta


def test_shapes_tuple_is_recorded_as_the_x_shape(tmp_path: Path) -> None:
    _, meta = _run(tmp_path, lambda exp: exp.set_dataset(shapes=(8, 8)))
    assert meta["dataset"]["shapes"] == {"x": [8, 8]}


def test_kind_synonym_is_recorded_as_the_schema_value(tmp_path: Path) -> None:
    _, meta = _run(tmp_path, lambda exp: exp.set_dataset(kind="Images"))
    assert meta["dataset"]["kind"] == "image"


def test_classes_count_is_recorded_as_num_classes(tmp_path: Path) -> None:
    _, meta = _run(tmp_path, lambda exp: exp.set_dataset(classes=10))
    assert meta["dataset"]["num_classes"] == 10
    assert "classes" not in meta["dataset"]


def test_optimizer_name_is_recorded_as_an_optimizer_object(tmp_path: Path) -> None:
    _, meta = _run(tmp_path, lambda exp: exp.set_hyperparameters(optimizer="adam"))
    assert meta["hyperparameters"]["optimizer"] == {"name": "adam", "config": {}}


def test_epochs_string_is_recorded_as_an_int(tmp_path: Path) -> None:
    _, meta = _run(tmp_path, lambda exp: exp.set_hyperparameters(epochs="10", learning_rate="1e-3"))
    assert meta["hyperparameters"]["epochs"] == 10
    assert meta["hyperparameters"]["learning_rate"] == pytest.approx(1e-3)


def test_layer_params_string_is_recorded_as_an_int(tmp_path: Path) -> None:
    _, meta = _run(
        tmp_path,
        lambda exp: exp.set_architecture({"layers": [{"params": "64"}], "parameter_count": 64.0}),
    )
    assert meta["architecture"]["layers"] == [{"params": 64}]
    assert meta["architecture"]["parameter_count"] == 64


def test_bare_sample_count_is_refused_at_the_call(tmp_path: Path) -> None:
    # 1797 could be the whole set or the training split: the split must be named.
    with Experiment("P", "u", store=tmp_path / "store", capture_code=False) as exp:
        with pytest.raises(ValueError, match=r"dataset\.samples.*samples=\{'train': 1797\}"):
            exp.set_dataset(samples=1797)
        exp.set_dataset(samples={"train": "1797"})
    meta = Store(tmp_path / "store").get(exp.id).metadata
    assert meta["dataset"]["samples"] == {"train": 1797}


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (
            lambda exp: exp.set_dataset(kind="graphs"),
            r"dataset\.kind.*'image', 'tabular', 'text', 'other'",
        ),
        (lambda exp: exp.set_dataset(classes="cat"), r"dataset\.classes"),
        (lambda exp: exp.set_dataset(samples={"train": -1}), r"dataset\.samples\.train"),
        (lambda exp: exp.set_dataset(name=3), r"dataset\.name"),
        (lambda exp: exp.set_hyperparameters(epochs="ten"), r"hyperparameters\.epochs"),
        (lambda exp: exp.set_hyperparameters(optimizer=3), r"hyperparameters\.optimizer"),
        (
            lambda exp: exp.set_architecture({"layers": [{"params": "many"}]}),
            r"architecture\.layers\[0\]\.params",
        ),
        (lambda exp: exp.set_architecture({"layers": ["dense"]}), r"architecture\.layers\[0\]"),
    ],
)
def test_values_outside_the_schema_are_refused_naming_the_field(
    tmp_path: Path, call, field: str
) -> None:
    store = tmp_path / "store"
    with (
        Experiment("P", "u", store=store, capture_code=False) as exp,
        pytest.raises(ValueError, match=field),
    ):
        call(exp)
    Store(store).get(exp.id)  # nothing half-recorded: the bundle still reads
    assert Store(store).reindex() == (1, [])


def test_a_refused_value_records_nothing_of_the_call(tmp_path: Path) -> None:
    with (
        Experiment("P", "u", store=tmp_path / "store", capture_code=False) as exp,
        pytest.raises(ValueError, match=r"dataset\.kind"),
    ):
        exp.set_dataset(name="digits", kind="graphs")
    assert "dataset" not in Store(tmp_path / "store").get(exp.id).metadata
