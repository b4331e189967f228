"""Tests of the model card: Hub front matter and a Markdown body that user text cannot break."""

from __future__ import annotations

import copy
import math
import subprocess
import sys
from typing import Any

import pytest
import yaml
from jinja2 import UndefinedError

from modelkb.card import (
    MAX_EPOCH_ROWS,
    MAX_LAYERS,
    TEMPLATE,
    _jinja,
    front_matter,
    library_name,
    md_cell,
    md_fence,
    render_model_card,
)
from modelkb.schema import validate_metadata

Meta = dict[str, Any]

HOSTILE = "Evil | co: #1 'x' \"y\"\n---\n<script>alert(1)</script> & more"


def minimal() -> Meta:
    return {
        "schema_version": 1,
        "id": "01jdx3k9y2q8m4t6v0w1a2b3c4",
        "project": "Digits",
        "name": "digits-20261129-024512-b3c4",
        "status": "running",
    }


def split_card(text: str) -> tuple[dict[str, Any], str]:
    """The parsed front matter and the body, cut where the Hub cuts (the second ``---`` line)."""
    assert text.startswith("---\n")
    end = text.index("\n---\n", 4)
    data = yaml.safe_load(text[4:end])
    assert isinstance(data, dict)
    return data, text[end + len("\n---\n") :]


def table_cells(line: str) -> list[str]:
    """Cells of a Markdown table row, honouring backslash escapes (``\\|`` is not a separator)."""
    cells, current, escaped = [], "", False
    for char in line.strip()[1:]:
        if escaped:
            current, escaped = current + char, False
        elif char == "\\":
            current, escaped = current + char, True
        elif char == "|":
            cells.append(current)
            current = ""
        else:
            current += char
    assert current.strip() == "", f"row does not end with a pipe: {line!r}"
    return cells


def tables(body: str) -> list[list[str]]:
    """Every Markdown table of ``body`` as its lines."""
    found: list[list[str]] = []
    current: list[str] = []
    for line in [*body.splitlines(), ""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            found.append(current)
            current = []
    return found


def assert_tables_well_formed(body: str) -> None:
    for table in tables(body):
        width = len(table_cells(table[0]))
        assert len(table) >= 2 and set(table[1].replace("|", "").split()) <= {"---", "---:"}, table[
            :2
        ]
        for row in table:
            assert len(table_cells(row)) == width, f"broken row {row!r} in table {table[0]!r}"


# -- front matter ----------------------------------------------------------------------------------
def test_full_card_front_matter(sample_metadata: Meta) -> None:
    data, _ = split_card(render_model_card(sample_metadata))
    assert data["library_name"] == "keras"
    assert data["tags"] == ["modelkb", "keras", "image", "onnx", "cnn", "baseline"]
    assert data["datasets"] == ["digits"]
    assert data["metrics"] == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert "license" not in data
    [entry] = data["model-index"]
    assert entry["name"] == sample_metadata["name"]
    results = {r["metrics"][0]["name"]: r for r in entry["results"]}
    assert set(results) == set(sample_metadata["metrics"]["final"])
    accuracy = results["val_accuracy"]
    assert accuracy["task"]["type"] == "image-classification"
    assert accuracy["dataset"] == {"name": "digits", "type": "digits", "split": "validation"}
    assert accuracy["metrics"][0] == {"type": "accuracy", "value": 0.9222, "name": "val_accuracy"}
    assert results["loss"]["dataset"]["split"] == "train"
    assert data == front_matter(sample_metadata)


def test_license_only_when_given(sample_metadata: Meta) -> None:
    sample_metadata["license"] = "apache-2.0"
    data, _ = split_card(render_model_card(sample_metadata))
    assert data["license"] == "apache-2.0"


@pytest.mark.parametrize(
    ("kind", "task"),
    [
        ("image", "image-classification"),
        ("tabular", "tabular-classification"),
        ("text", "text-classification"),
        ("other", "other"),
    ],
)
def test_task_type_follows_dataset_kind(sample_metadata: Meta, kind: str, task: str) -> None:
    sample_metadata["dataset"]["kind"] = kind
    data, _ = split_card(render_model_card(sample_metadata))
    assert {r["task"]["type"] for r in data["model-index"][0]["results"]} == {task}


@pytest.mark.parametrize(
    ("framework", "onnx", "expected"),
    [
        ({"name": "keras", "version": "3.6.0"}, False, "keras"),
        ({"name": "keras", "version": "2.15.0"}, False, "tf-keras"),
        ({"name": "torch", "version": "2.4.1"}, False, "pytorch"),
        ({"name": "lightning", "version": "2.4.0"}, True, "pytorch"),
        ({"name": "jax", "version": None}, False, "jax"),
        (None, True, "onnx"),
        (None, False, None),
    ],
)
def test_library_name(framework: dict[str, Any] | None, onnx: bool, expected: str | None) -> None:
    meta = minimal()
    if framework:
        meta["framework"] = framework
    if onnx:
        meta["onnx"] = {"path": "model.onnx", "opset": 17}
    assert library_name(meta) == expected
    data, _ = split_card(render_model_card(meta))
    assert data.get("library_name") == expected


def test_numpy_like_float_metrics_dump_as_plain_floats(sample_metadata: Meta) -> None:
    class Float64(float):  # stands in for numpy.float64, a float subclass yaml cannot represent
        pass

    sample_metadata["metrics"]["final"]["accuracy"] = Float64(0.5)
    data, _ = split_card(render_model_card(sample_metadata))
    values = {
        r["metrics"][0]["name"]: r["metrics"][0]["value"] for r in data["model-index"][0]["results"]
    }
    assert values["accuracy"] == 0.5


def test_non_finite_final_metrics_stay_out_of_the_model_index(sample_metadata: Meta) -> None:
    sample_metadata["metrics"]["final"]["val_loss"] = math.nan
    sample_metadata["metrics"]["final"]["loss"] = None
    data, body = split_card(render_model_card(sample_metadata))
    names = {r["metrics"][0]["name"] for r in data["model-index"][0]["results"]}
    assert names == {"accuracy", "val_accuracy"}
    assert "| loss | — |" in body


# -- Hugging Face Hub ------------------------------------------------------------------------------
def test_hub_model_card_parses_and_round_trips_eval_results(sample_metadata: Meta) -> None:
    hub = pytest.importorskip("huggingface_hub")
    card = hub.ModelCard(render_model_card(sample_metadata))  # offline: never .validate()
    assert card.data.library_name == "keras"
    assert card.data.datasets == ["digits"]
    assert card.data.model_name == sample_metadata["name"]
    got = {r.metric_name: r.metric_value for r in card.data.eval_results}
    assert got == sample_metadata["metrics"]["final"]
    assert {r.task_type for r in card.data.eval_results} == {"image-classification"}
    assert {(r.metric_name, r.dataset_split) for r in card.data.eval_results} >= {
        ("val_loss", "validation"),
        ("loss", "train"),
    }
    assert "# Digits CNN / " in card.text

    again = hub.ModelCard(str(card))

    def key(r: Any) -> tuple[Any, ...]:
        fields = ("task_type", "dataset_name", "dataset_split", "metric_type", "metric_name")
        return (*(getattr(r, f) for f in fields), r.metric_value)

    assert sorted(map(key, again.data.eval_results)) == sorted(map(key, card.data.eval_results))
    rebuilt = hub.ModelCardData(
        model_name=card.data.model_name, eval_results=card.data.eval_results
    )
    assert len(rebuilt.to_dict()["model-index"][0]["results"]) >= 2


def test_hub_parses_minimal_card() -> None:
    hub = pytest.importorskip("huggingface_hub")
    card = hub.ModelCard(render_model_card(minimal()))
    assert card.data.tags == ["modelkb"]
    assert card.data.eval_results is None


# -- body ------------------------------------------------------------------------------------------
def test_full_card_body_sections(sample_metadata: Meta) -> None:
    _, body = split_card(render_model_card(sample_metadata))
    for heading in (
        "Notes",
        "Hyperparameters",
        "Architecture",
        "Dataset",
        "Training results",
        "Environment",
        "How to use",
        "Reproducibility",
    ):
        assert f"\n## {heading}\n" in body
    assert "\n## Warnings\n" not in body  # the sample has none
    assert body.lstrip().startswith("# Digits CNN / digits-cnn-20261129-024512-b3c4\n")
    assert "| ID | 01jdx3k9y2q8m4t6v0w1a2b3c4 |" in body
    assert "| conv2d | Conv2D | (None, 6, 6, 8) | 80 |" in body
    assert "Total parameters: 810 (810 trainable)." in body
    assert "| Preprocessing | scale(factor=0.0625) |" in body
    assert "| 2 | 0.4377 | 0.9026 | 0.3561 | 0.9222 | 0.001 | 0.4 |" in body
    assert "| Git commit | 3f9c2b7e8a1d4c6b9e0f2a3b4c5d6e7f8a9b0c1d |" in body
    assert "| Uncommitted changes | no |" in body
    assert 'ort.InferenceSession("model.onnx"' in body
    assert "| Seed | 42 |" in body
    assert "requirements.lock" in body
    assert "python train_digits.py --epochs 3" in body
    assert "\n\n\n" not in body
    assert all(line == line.rstrip() for line in body.splitlines())
    assert_tables_well_formed(body)


def test_how_to_use_snippet_is_valid_python(sample_metadata: Meta) -> None:
    import ast

    _, body = split_card(render_model_card(sample_metadata))
    snippet = body.split("```python\n", 1)[1].split("```", 1)[0]
    ast.parse(snippet)


def test_minimal_card_omits_every_optional_section() -> None:
    text = render_model_card(minimal())
    data, body = split_card(text)
    assert data == {"tags": ["modelkb"]}
    assert body.count("\n## ") == 0
    assert "| Status | running |" in body
    assert_tables_well_formed(body)


OPTIONAL_KEYS = [
    "user",
    "notes",
    "tags",
    "error",
    "created",
    "finished",
    "duration_s",
    "framework",
    "hyperparameters",
    "seed",
    "determinism",
    "architecture",
    "dataset",
    "metrics",
    "context",
    "warnings",
    "artifacts",
    "onnx",
]


@pytest.mark.parametrize("key", OPTIONAL_KEYS)
def test_each_section_alone_renders(sample_metadata: Meta, key: str) -> None:
    meta = minimal() | {key: sample_metadata.get(key, "Traceback: boom | bang\nValueError")}
    data, body = split_card(render_model_card(meta))
    assert "modelkb" in data["tags"]
    assert_tables_well_formed(body)


@pytest.mark.parametrize(
    "extra",
    [
        {"dataset": {}, "architecture": {}, "metrics": {}, "context": {}, "hyperparameters": {}},
        {
            "architecture": {"layers": [{}], "inputs": [{}]},
            "dataset": {"kind": "text", "samples": {"train": None}},
        },
        {"metrics": {"final": {"acc": None}, "history": [{"epoch": 0}]}, "context": {"git": None}},
        {
            "metrics": {
                "history": [{"epoch": 0, "train": {"loss": 1}}, {"epoch": 1, "val": {"loss": 2}}]
            }
        },
        {"warnings": ["plain string warning"], "seed": None, "tags": [None, 3]},
        {"tags": "cnn", "warnings": "oops", "artifacts": "model.onnx", "context": {"command": "x"}},
        {"metrics": {"history": "bad", "final": []}, "architecture": {"layers": "conv"}},
        {
            "framework": {"name": None},
            "dataset": {"preprocessing": ["resize", {"op": "x"}], "classes": list(range(50))},
        },
    ],
)
def test_odd_but_possible_metadata_does_not_crash(extra: Meta) -> None:
    _, body = split_card(render_model_card(minimal() | extra))
    assert_tables_well_formed(body)


def test_warnings_section(sample_metadata: Meta) -> None:
    sample_metadata["warnings"] = [
        {"message": "the run is not seeded", "source": "seed", "time": "2026-11-29T02:45:12.123Z"}
    ] * 60
    _, body = split_card(render_model_card(sample_metadata))
    assert "- **seed**: the run is not seeded" in body
    assert "... 10 more" in body


def test_layer_and_epoch_tables_are_capped(sample_metadata: Meta) -> None:
    layer = sample_metadata["architecture"]["layers"][0]
    sample_metadata["architecture"]["layers"] = [
        dict(layer, name=f"l{i}") for i in range(MAX_LAYERS + 50)
    ]
    entry = sample_metadata["metrics"]["history"][0]
    sample_metadata["metrics"]["history"] = [
        dict(entry, epoch=i) for i in range(MAX_EPOCH_ROWS + 50)
    ]
    _, body = split_card(render_model_card(sample_metadata))
    assert f"| l{MAX_LAYERS - 1} |" in body and f"| l{MAX_LAYERS} |" not in body
    assert "... 50 more layers" in body
    [epochs] = [t for t in tables(body) if t[0].startswith("| epoch |")]
    assert len(epochs) == 2 + MAX_EPOCH_ROWS + 1
    assert epochs[-1].startswith(f"| {MAX_EPOCH_ROWS + 49} |")
    assert "… 50 more" in body
    assert_tables_well_formed(body)


# -- hostile user text -----------------------------------------------------------------------------
def hostile(meta: Meta) -> Meta:
    meta = copy.deepcopy(meta)
    meta["project"] = HOSTILE
    meta["name"] = "run: #1 | 'a' \"b\"\n---"
    meta["user"] = "mallory | admin"
    meta["notes"] = (
        "| a | b |\n|---|---|\n---\n# Heading\n<script>alert(1)</script>\nkey: value # comment"
    )
    meta["tags"] = [
        "a: b",
        "# c",
        "'q'",
        '"dq"',
        "---",
        "x\n---\ny",
        "<script>",
        "...",
        "- item",
        "{flow}",
    ]
    meta["license"] = "mit\n---\nevil: true"
    meta["error"] = "Traceback | line\n  boom"
    meta["dataset"]["name"] = "digits: v2 # 'x' | y"
    meta["dataset"]["notes"] = "first\nsecond | third"
    meta["dataset"]["classes"] = ["a|b", "c\\", "<i>"]
    meta["architecture"]["layers"][0]["name"] = "conv | \\| evil\nline"
    meta["architecture"]["layers"][1]["type"] = "Pool\\"
    meta["hyperparameters"]["params"]["weird|key\n"] = "v|a\\|l\nue"
    meta["metrics"]["final"]["acc|uracy: #"] = 0.5
    meta["metrics"]["history"][0]["train"]["a|b"] = 1.0
    meta["context"]["git"]["branch"] = "feat/<b>|x"
    meta["context"]["command"] = ["python", "train.py", "--note", "```\n<script>", "it's"]
    meta["warnings"] = [{"message": "bad | thing\n## not a heading", "source": "<src>"}]
    return meta


def test_hostile_text_does_not_break_front_matter(sample_metadata: Meta) -> None:
    meta = hostile(sample_metadata)
    data, _ = split_card(render_model_card(meta))
    assert data == front_matter(meta)
    assert data["license"] == "mit --- evil: true"
    assert "evil" not in data
    assert data["tags"][-10:] == [
        "a: b",
        "# c",
        "'q'",
        '"dq"',
        "---",
        "x --- y",
        "&lt;script&gt;",  # HTML-escaped: a renderer that pastes front matter into a page shows text
        "...",
        "- item",
        "{flow}",
    ]
    assert data["datasets"] == ["digits: v2 # 'x' | y"]
    assert data["model-index"][0]["name"] == "run: #1 | 'a' \"b\" ---"
    assert "acc|uracy: #" in data["metrics"]


def test_hostile_text_parses_with_the_hub(sample_metadata: Meta) -> None:
    hub = pytest.importorskip("huggingface_hub")
    meta = hostile(sample_metadata)
    card = hub.ModelCard(render_model_card(meta))
    assert "a: b" in card.data.tags and "{flow}" in card.data.tags
    assert {r.metric_name: r.metric_value for r in card.data.eval_results} == meta["metrics"][
        "final"
    ]


def test_hostile_text_does_not_break_the_body(sample_metadata: Meta) -> None:
    meta = hostile(sample_metadata)
    _, body = split_card(render_model_card(meta))
    assert "<script>" not in body.split("```bash")[0]  # only inside the command's code block
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    title = body.lstrip().splitlines()[0]
    assert title.startswith("# Evil | co: #1 'x' \"y\" --- &lt;script&gt;")
    assert "\n## not a heading" not in body
    # The notes are the user's own Markdown (their table is theirs); every table we write holds.
    notes_start = body.index("\n## Notes\n")
    notes_end = body.index("\n## ", notes_start + 1)
    assert "| a | b |\n|---|---|" in body[notes_start:notes_end]
    assert_tables_well_formed(body[:notes_start] + body[notes_end:])
    assert "| conv \\| \\\\\\| evil<br>line |" in body
    fence = md_fence("```\n<script>")
    assert fence == "````"
    assert f"\n{fence}bash\n" in body and body.count(f"\n{fence}\n") == 1


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ("a|b", "a\\|b"),
        ("a\\|b", "a\\\\\\|b"),
        ("line1\n\n  line2 ", "line1<br>line2"),
        ("<b>&", "&lt;b&gt;&amp;"),
        ("", " "),
        (None, " "),
    ],
)
def test_md_cell(text: str | None, cell: str) -> None:
    assert md_cell(text) == cell


@pytest.mark.parametrize(
    ("notes", "closed"),
    [
        ("see:\n```python\nx = 1", True),
        ("~~~~\ncode\n~~~", True),
        ("```\ncode\n```\ntext", False),
        ("````\n```\n````", False),
    ],
)
def test_unclosed_fence_in_notes_is_closed(sample_metadata: Meta, notes: str, closed: bool) -> None:
    sample_metadata["notes"] = notes
    _, body = split_card(render_model_card(sample_metadata))
    section = body.split("\n## Notes\n\n", 1)[1].split("\n\n## Hyperparameters", 1)[0]
    assert section.startswith(notes)
    assert (section != notes) is closed
    assert "\n## Hyperparameters\n" in body


# -- template and imports --------------------------------------------------------------------------
def test_template_fails_loudly_on_a_missing_variable() -> None:
    with pytest.raises(UndefinedError):
        _jinja().get_template(TEMPLATE).render()


def test_rendered_sample_stays_schema_valid(sample_metadata: Meta) -> None:
    render_model_card(sample_metadata)
    validate_metadata(sample_metadata)  # rendering does not mutate the metadata


def test_card_module_does_not_import_huggingface_hub() -> None:
    code = (
        "import sys\n"
        "from modelkb.card import render_model_card\n"
        "render_model_card({'schema_version': 1, 'id': '01jdx3k9y2q8m4t6v0w1a2b3c4',"
        " 'project': 'p', 'name': 'n', 'status': 'completed',"
        " 'metrics': {'final': {'accuracy': 0.5}}})\n"
        "print('huggingface_hub' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_script_links_and_script_tags_are_neutralised(sample_metadata: Meta) -> None:
    meta = sample_metadata
    meta["notes"] = (
        "See [the docs](javascript:alert(document.cookie)) and [x]( JavaScript :alert(1)), "
        "[d](data:text/html;base64,PHNjcmlwdD4=) and [ok](https://example.org).\n\n"
        "[ref]: vbscript:msgbox(1)"
    )
    meta["tags"] = ["</script><script>alert(1)</script>"]
    meta["dataset"]["name"] = "</script><script>alert(2)"
    card = render_model_card(meta)
    data, body = split_card(card)
    assert (
        "javascript:" not in body.lower().replace("#blocked-javascript:", "")
        and "](data:" not in body
    )
    assert (
        "](#blocked-javascript:alert(document.cookie))" in body
        and "[ok](https://example.org)" in body
    )
    assert "]: #blocked-vbscript:msgbox(1)" in body
    assert "<script" not in card  # neither in the body nor in the front matter
    assert data["tags"][-1] == "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
