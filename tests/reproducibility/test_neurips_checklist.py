"""The NeurIPS paper checklist: 16 questions drafted from real runs, in Markdown and in LaTeX."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from support.training_scripts import run_script

from modelkb import Store
from modelkb.cli import main
from modelkb.reproducibility.checklist import checklist
from modelkb.reproducibility.neurips import QUESTIONS, latex_escape, paper_checklist, render_tex
from modelkb.reproducibility.repeat import repeat

HOSTILE_SCRIPT = textwrap.dedent(r"""
    import argparse
    from modelkb import Experiment

    parser = argparse.ArgumentParser()
    parser.add_argument("--store")
    args = parser.parse_args()
    exp = Experiment(
        "Hostile", "tester", seed=1, store=args.store,
        notes="}\\input{/etc/passwd}% \n\\section{Owned} $x^2$ & #1 ~ _",
    )
    with exp:
        exp.set_dataset(location="https://x.test/a_b?c=1&d=%7D}", kind="tabular")
        exp.log_params(epochs=1, learning_rate=0.1)
        exp.log_metrics({"loss": 0.5}, epoch=0)
""")


def _tex_structure_is_sound(tex: str) -> None:
    """Braces balance (escaped ``\\{``/``\\}`` aside), environments close, one answer per item."""
    body = "\n".join(
        line.split("%", 1)[0] if not line.startswith("%") else "" for line in tex.splitlines()
    )
    unescaped = re.sub(r"\\[{}%]", "", body)
    depth = 0
    for char in unescaped:
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0, "a closing brace without its opening one"
    assert depth == 0
    assert tex.count(r"\begin{enumerate}") == tex.count(r"\end{enumerate}") == 1
    items = tex.split(r"\item {\bf ")[1:]
    assert len(items) == len(QUESTIONS) == 16
    for item in items:
        answers = re.findall(r"\\answer(Yes|No|NA|TODO)\{\}", item)
        assert len(answers) == 1, item
        assert r"\item[] Justification: " in item


def test_latex_escape_neutralises_every_special_character() -> None:
    text = latex_escape("}\\input{/etc/passwd}% $x^2$ & #1 ~ _ ± `cmd a_b`\n\\section{x}")
    assert "\\input{" not in text and "\\section{" not in text
    assert text.count("{") - text.count("\\{") == text.count("}") - text.count("\\}")
    assert r"\texttt{cmd a\_b}" in text and r"\ensuremath{\pm}" in text
    assert "\n" not in text


@pytest.mark.slow
def test_a_real_run_drafts_every_question(trained_store: dict) -> None:
    store = Store(trained_store["store"])
    bundle = store.get(trained_store["torch"])
    result = paper_checklist([(bundle, checklist(bundle, store, flops=False))], scope="one run")
    answers = {item["id"]: item for item in result["items"]}
    assert [item["id"] for item in result["items"]] == [q[0] for q in QUESTIONS]
    assert answers["reproducibility"]["answer"] == "yes"
    assert f"modelkb reproduce {bundle.id}" in answers["reproducibility"]["justification"]
    assert answers["compute"]["answer"] == "yes"
    duration = bundle.metadata["duration_s"]
    assert f"Training time {duration:.0f} s" in answers["compute"]["justification"]
    assert answers["significance"]["answer"] == "no"
    assert f"modelkb repeat {bundle.id}" in answers["significance"]["how_to_complete"]
    locked = [
        line
        for line in (bundle.path / "requirements.lock").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    ]
    assert f"The {len(locked)} locked dependencies" in answers["licenses"]["justification"]
    assert answers["new_assets"]["answer"] == "yes"
    for item_id in ("claims", "limitations", "ethics", "broader_impacts", "irb", "llm_usage"):
        assert answers[item_id]["answer"] == "needs_authors" and answers[item_id]["how_to_complete"]
    tex = render_tex(result)
    _tex_structure_is_sound(tex)
    for _, _, question, _ in QUESTIONS:
        assert latex_escape(question) in tex


@pytest.mark.slow
def test_a_project_with_a_repeat_group_reports_mean_and_std(
    toy_script: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_path = tmp_path / "store"
    store_path.mkdir()
    first = run_script(toy_script, store_path, "--seed", "1")
    store = Store(store_path)
    repeat(store, first, 3)
    main(["checklist", "--project", "Toy", "--format", "tex", "--store", str(store_path)])
    tex = capsys.readouterr().out
    _tex_structure_is_sound(tex)
    assert "project Toy (4 runs)" in tex
    significance = tex.split(r"{\bf Experiment statistical significance}")[1].split(r"\item {\bf")[
        0
    ]
    assert r"\answerYes{}" in significance and r"\ensuremath{\pm}" in significance
    main(["checklist", "--project", "Toy", "--list", "neurips", "--store", str(store_path)])
    assert "# NeurIPS paper checklist — project Toy (4 runs)" in capsys.readouterr().out


def test_hostile_notes_and_locations_stay_text_in_latex(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "hostile.py"
    script.write_text(HOSTILE_SCRIPT, encoding="utf-8")
    store_path = tmp_path / "store"
    store_path.mkdir()
    run_id = run_script(script, store_path)
    main(["checklist", run_id, "--format", "tex", "--store", str(store_path)])
    tex = capsys.readouterr().out
    _tex_structure_is_sound(tex)
    assert "\\input{" not in tex and "\\section{Owned}" not in tex
    assert "a\\_b?c=1\\&d=\\%7D\\}" in tex  # the data location, escaped


def test_usage_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["checklist", "--store", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "give either an EXPERIMENT_ID or --project NAME" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(
            [
                "checklist",
                "x",
                "--list",
                "reproducibility",
                "--format",
                "tex",
                "--store",
                str(tmp_path),
            ]
        )
    assert "answer the NeurIPS list" in capsys.readouterr().err
