"""One hostile bundle never breaks the store or the catalog: it is reported and skipped.

A property test writes, beside one good bundle, a bundle whose ``metadata.json`` or ``run.json`` is
generated: arbitrary JSON, 100,000-deep nesting, 5,000-digit integers, valid metadata with fields
of the wrong type. ``reindex``, ``ls`` / ``show`` through the store, and a catalog build must all
finish, keep the good run, and either accept the other bundle (it was valid) or list it as a problem.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.sample_run import SAMPLE_ID, sample_metadata

from modelkb.store import Store

BAD_ID = "01jdx3k9y2q8m4t6v0w1zzzzzz"
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)
_PATHS = [
    "status",
    "project",
    "name",
    "created",
    "tags",
    "warnings",
    "notes",
    "metrics",
    "metrics.history",
    "metrics.final",
    "hyperparameters",
    "hyperparameters.optimizer",
    "dataset",
    "dataset.preprocessing",
    "dataset.classes",
    "architecture",
    "architecture.layers",
    "architecture.inputs",
    "framework",
    "artifacts",
    "onnx",
    "serverless",
    "code",
    "context",
    "hub",
    "group",
    "seed",
]


def _set(metadata: dict[str, Any], path: str, value: Any) -> None:
    node = metadata
    *parents, last = path.split(".")
    for part in parents:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[last] = value


@st.composite
def hostile_files(draw: st.DrawFn) -> tuple[str, str]:
    """(file name, text) of a bundle's metadata.json or run.json."""
    kind = draw(st.sampled_from(["field", "field", "field", "json", "deep", "bigint", "run"]))
    if kind == "deep":
        depth = draw(st.sampled_from([1000, 100_000]))
        return "metadata.json", "[" * depth + "]" * depth
    if kind == "bigint":
        return "metadata.json", json.dumps({**_bad_base(), "seed": 0}).replace(
            '"seed": 0', '"seed": ' + "9" * 5000
        )
    if kind == "json":
        return "metadata.json", json.dumps(draw(json_values))
    if kind == "run":
        state = {
            "metadata": draw(json_values | st.just(_bad_base())),
            "pid": draw(json_values),
            "host": draw(json_values),
        }
        return "run.json", json.dumps(state)
    metadata = _bad_base()
    for _ in range(draw(st.integers(1, 3))):
        _set(metadata, draw(st.sampled_from(_PATHS)), draw(json_values))
    return "metadata.json", json.dumps(metadata)


def _bad_base() -> dict[str, Any]:
    metadata = copy.deepcopy(sample_metadata())
    metadata["id"] = BAD_ID
    return metadata


def _store_with_hostile_bundle(root: Path, hostile: tuple[str, str]) -> tuple[Store, Path]:
    """A store holding the good sample run and, beside it, the hostile bundle (returned)."""
    good = root / "digits-cnn" / SAMPLE_ID
    good.mkdir(parents=True)
    (good / "metadata.json").write_text(json.dumps(sample_metadata()), encoding="utf-8")
    name, text = hostile
    bad = root / "digits-cnn" / BAD_ID
    bad.mkdir()
    (bad / name).write_text(text, encoding="utf-8")
    return Store(root), bad


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(hostile=hostile_files())
def test_a_hostile_bundle_is_reported_and_skipped_by_the_store(
    hostile: tuple[str, str], tmp_path_factory
) -> None:
    root = tmp_path_factory.mktemp("store")
    store, bad = _store_with_hostile_bundle(root, hostile)
    count, problems = store.reindex(seal_dead_runs=False)
    if count == 1:  # refused: reported, with a reason, and the good run is still there
        assert [p.path for p in problems] == [str(bad)] and problems[0].reason
    else:  # accepted: it was a valid bundle after all
        assert (count, problems) == (2, [])
    assert SAMPLE_ID in {run.id for run in store.search()}  # ls, query: through the index
    assert store.get(SAMPLE_ID).metadata["id"] == SAMPLE_ID  # show
    store.refresh()
    shutil.rmtree(root)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(hostile=hostile_files())
def test_a_hostile_bundle_never_breaks_the_catalog(
    hostile: tuple[str, str], tmp_path_factory
) -> None:
    from modelkb.site_builder.build import build_site

    root = tmp_path_factory.mktemp("store")
    store, _ = _store_with_hostile_bundle(root, hostile)
    site = root.parent / f"{root.name}-site"
    report = build_site(store, site, zip_bundles=False)
    assert (site / "experiments" / SAMPLE_ID / "index.html").is_file()
    assert (report.experiments, len(report.problems)) in ((1, 1), (2, 0))
    shutil.rmtree(root)
    shutil.rmtree(site)
