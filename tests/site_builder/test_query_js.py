"""``site/js/query.js`` selects exactly what ``modelkb.query`` selects (run in Node, no browser).

Random records and random queries (plus the documented examples and error table) are evaluated by
the Python backend and by the JavaScript port on the catalog's encoded cells; results, error
columns and error messages must agree.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from modelkb.errors import QuerySyntaxError
from modelkb.fields import flatten
from modelkb.query import Query, field_rows
from modelkb.site_builder.catalog import encode_cell

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed")

QUERY_JS = Path(str(resources.files("modelkb.site") / "js" / "query.js"))

RUNNER = r"""
const Q = require(process.argv[1]);
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const ds = Q.columnar(input.keys, input.rows);
const out = input.queries.map((q) => {
  try { return {ids: Q.select(q, ds)}; }
  catch (e) { if (!(e instanceof Q.QuerySyntaxError)) throw e; return {error: e.message, column: e.column}; }
});
process.stdout.write(JSON.stringify(out));
"""

DOC_QUERIES = [
    "epochs > 10 && optimizer = Adam && accuracy > 0.9",
    "(framework = torch || framework = keras) && !(status = failed)",
    "created >= 2026-11-01 and tags ~ baseline",
    "notes ~ \"learning rate 1e-3\" || user = 'ada'",
    "seed = null",
    "seed != null",
    "lr ~ 1e-3",
    "lr = 0.001",
    "created = 2026-11-29",
    "created > 2026-11-29T02:45",
    "created < 2026-11-29T02:45:13",
    "created ~ 2026-11",
    'created > "2026-11"',
    'epochs = "10"',
    "context.git.dirty = false",
    "dirty = true",
    "dataset.shapes.x = '(None, 8, 8, 1)'",
    "tags = null",
    "name ~ DIGITS",
    "optimizer >= adam",
    "optimizer < b",
    "!a = 1 && b = 2",
    "",
    "epochs >",
    "epochs > && a = 1",
    "(epochs > 1",
    "epochs > 1)",
    "name = 'abc",
    "a = 1 & b = 2",
    "epochs 10",
    "a = 1 b = 2",
    "a/b = 1",
    "a > null",
    "created > 2026-02-30",
    "optimiser = adam",
    "params.dropout > 0.1",
    "dropout >= 0.25 or filters = 8",
    "NOT status = completed",
    "user = 'O\\'Neil'",
    "notes ~ É",
    "notes ~ é",
    "val_loss <= 0.5",
    "layers = 4",
    "lr < 1e-4",
    "batch = 32.0",
]


def _record(rng: random.Random, index: int) -> dict[str, Any]:
    from support.sample_run import sample_metadata

    meta = sample_metadata()
    meta["id"] = f"id{index:04d}"
    meta["user"] = rng.choice(["ada", "grace", "O'Neil", "Élodie", "élodie", "ADA"])
    meta["status"] = rng.choice(["completed", "failed", "running"])
    meta["framework"]["name"] = rng.choice(["keras", "torch", "Torch", "jax"])
    meta["hyperparameters"]["epochs"] = rng.choice([1, 5, 10, 11, 30, "10", "010", 10.0])
    meta["hyperparameters"]["optimizer"]["name"] = rng.choice(["Adam", "adam", "SGD", "Adam2", "b"])
    meta["hyperparameters"]["learning_rate"] = rng.choice([0.001, 1e-05, 0.01, 1e-3, 0.1, 3e-4])
    meta["hyperparameters"]["batch_size"] = rng.choice([16, 32, 64])
    meta["hyperparameters"]["params"] = {
        "dropout": rng.choice([0.0, 0.1, 0.25, 0.5, None]),
        "filters": rng.choice([4, 8, 16]),
    }
    meta["metrics"]["final"] = {
        "accuracy": rng.choice([0.5, 0.9, 0.91, 0.95, 1.0, float("nan")]),
        "val_loss": rng.choice([0.2, 0.5, 0.51, float("inf")]),
    }
    meta["seed"] = rng.choice([None, 0, 42])
    meta["tags"] = rng.sample(["cnn", "baseline", "cnn-small", "Baseline"], rng.randint(0, 3))
    meta["notes"] = rng.choice(["", "learning rate 1e-3 works", "É accent", "é accent", "plain"])
    meta["created"] = rng.choice(
        [
            "2026-11-29T02:45:12.123Z",
            "2026-11-01",
            "2026-10-31T23:59:59Z",
            "2026-11-29T02:45:00+01:00",
            "2026-11-29 02:45",
        ]
    )
    meta["context"]["git"]["dirty"] = rng.choice([True, False])
    if rng.random() < 0.2:
        del meta["metrics"]
    return meta


def _random_query(rng: random.Random, depth: int = 0) -> str:
    if depth < 3 and rng.random() < 0.4:
        op = rng.choice(["&&", "||", "and", "or"])
        return f"{_random_query(rng, depth + 1)} {op} {_random_query(rng, depth + 1)}"
    if depth < 3 and rng.random() < 0.15:
        return f"!({_random_query(rng, depth + 1)})"
    field = rng.choice(
        [
            "epochs",
            "optimizer",
            "accuracy",
            "lr",
            "user",
            "status",
            "framework",
            "tags",
            "seed",
            "created",
            "notes",
            "dropout",
            "filters",
            "val_loss",
            "dirty",
            "name",
            "batch",
        ]
    )
    op = rng.choice(["=", "==", "!=", ">", ">=", "<", "<=", "~", "!~"])
    value = rng.choice(
        [
            "10",
            "10.0",
            "'10'",
            "adam",
            "Adam",
            "0.9",
            "1e-3",
            "0.001",
            "true",
            "false",
            "null",
            "2026-11-01",
            "2026-11-29T02:45",
            "cnn",
            "é",
            "É",
            "'O\\'Neil'",
            '"a b"',
            "b",
            ".5",
            "inf",
        ]
    )
    return f"{field} {op} {value}"


def _node(runner: str, payload: dict[str, Any]) -> Any:
    done = subprocess.run(
        [NODE, "-e", runner, str(QUERY_JS)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(done.stdout)


def _run_js(keys: list[str], rows: list[list[Any]], queries: list[str]) -> list[dict[str, Any]]:
    return _node(RUNNER, {"keys": keys, "rows": rows, "queries": queries})


def test_js_port_selects_what_python_selects() -> None:
    rng = random.Random(7)
    flats = [flatten(_record(rng, i)) for i in range(60)]
    keys = sorted({key for flat in flats for key in flat})
    rows = []
    for flat in flats:
        cells = {key: encode_cell(num, txt) for key, num, txt in field_rows(flat)}
        rows.append([cells.get(key) for key in keys])
    queries = DOC_QUERIES + [_random_query(rng) for _ in range(400)]
    results = _run_js(keys, rows, queries)
    for query, js in zip(queries, results, strict=True):
        try:
            predicate = Query(query).predicate(keys)
        except QuerySyntaxError as err:
            assert js.get("error") == err.reason and js.get("column") == err.column, (
                query,
                js,
                str(err),
            )
            continue
        expected = [i for i, flat in enumerate(flats) if predicate(flat)]
        assert js.get("ids") == expected, (query, js)


COLUMN_RUNNER = r"""
const Q = require(process.argv[1]);
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const cols = new Map(Object.entries(input.columns).map(([k, p]) => [k, Q.decodeColumn(p)]));
const ds = {keys: input.keys, size: input.size, column: (k) => cols.get(k)};
process.stdout.write(JSON.stringify(input.queries.map((q) => Q.select(q, ds))));
"""


def test_column_files_select_what_rows_select() -> None:
    """The table's column files (dictionary-encoded or not) decode to the cells of the rows."""
    from modelkb.site_builder.table_data import encode_column

    rng = random.Random(11)
    flats = [flatten(_record(rng, i)) for i in range(80)]
    keys = sorted({key for flat in flats for key in flat})
    cells = [{key: encode_cell(num, txt) for key, num, txt in field_rows(flat)} for flat in flats]
    columns = {key: encode_column([row.get(key) for row in cells])[0] for key in keys}
    assert any("dict" in payload for payload in columns.values())
    assert any("values" in payload for payload in columns.values())
    queries = list(DOC_QUERIES)
    queries += [_random_query(rng) for _ in range(200)]
    valid = []
    for query in queries:
        try:
            valid.append((query, Query(query).predicate(keys)))
        except QuerySyntaxError:
            continue
    found = _node(
        COLUMN_RUNNER,
        {"keys": keys, "size": len(flats), "columns": columns, "queries": [q for q, _ in valid]},
    )
    for (query, predicate), ids in zip(valid, found, strict=True):
        assert ids == [i for i, flat in enumerate(flats) if predicate(flat)], query
