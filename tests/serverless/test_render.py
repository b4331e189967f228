"""Rendering: every template renders, parses and lints; missing values and bad bundles fail loudly."""

from __future__ import annotations

import ast
import copy
from pathlib import Path

import pytest
from jinja2 import UndefinedError

from modelkb.errors import PackageError
from modelkb.serverless import sam
from modelkb.serverless.render import RENDERED, render_package, runtime_pins, template_environment
from modelkb.serverless.spec import build_spec

REPO = Path(__file__).resolve().parents[2]


def test_every_rendered_python_file_parses(packages: dict) -> None:
    for folder in packages.values():
        for name in ("handler.py", "predict.py", "preprocess.py", "inference.py"):
            ast.parse((folder / name).read_text(encoding="utf-8"), filename=str(folder / name))


def test_package_is_self_contained(packages: dict, cases: dict) -> None:
    for name, folder in packages.items():
        files = {p.name for p in folder.iterdir()}
        assert {
            "handler.py",
            "predict.py",
            "Dockerfile",
            "template.yaml",
            "README.md",
            "requirements.txt",
            "preprocess.py",
            "inference.py",
            "spec.json",
            "model.onnx",
        } <= files
        requirements = [
            line
            for line in (folder / "requirements.txt").read_text().splitlines()
            if not line.startswith("#")
        ]
        assert "onnxruntime==1.32.0" in requirements and "pydantic==2.13.5" in requirements
        assert not [
            line for line in requirements if line.startswith(("torch", "tensorflow", "keras"))
        ]
        assert any(line.startswith("pillow==") for line in requirements) == name.endswith("image")
        dockerfile = (folder / "Dockerfile").read_text()
        assert (
            "ARG BASE_IMAGE=public.ecr.aws/lambda/python:3.12" in dockerfile
            and "RUN " not in dockerfile
        )
        assert "--platform manylinux_2_28_x86_64" in dockerfile
        handler = (folder / "handler.py").read_text()
        assert "APIGatewayHttpResolver(enable_validation=True)" in handler
        assert (
            "def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:\n"
            "    return app.resolve(event, context)" in handler
        )


def test_strict_undefined_fails_loudly() -> None:
    env = template_environment()
    for template in RENDERED.values():
        with pytest.raises(UndefinedError):
            env.get_template(template).render()


def test_shipped_runtime_is_framework_free() -> None:
    for name in ("preprocess_runtime.py", "inference_runtime.py"):
        tree = ast.parse((REPO / "serverless" / name).read_text())
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        imported |= {
            node.module.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
        }
        assert not imported & {"torch", "tensorflow", "keras", "modelkb", "boto3"}, imported


def test_pins() -> None:
    assert "pillow" not in runtime_pins("tabular") and "pillow" in runtime_pins("image")


@pytest.mark.parametrize("path", ["generated", "top-level"])
def test_sam_templates_lint_as_written_and_translated(path: str, packages: dict) -> None:
    if path == "generated":
        templates = [folder / "template.yaml" for folder in packages.values()][:2]
        parameters = {"ImageUri": sam.PLACEHOLDER_IMAGE}
    else:
        templates = [REPO / "template.yaml"]
        parameters = {
            "InferenceImageUri": sam.PLACEHOLDER_IMAGE,
            "BuilderImageUri": sam.PLACEHOLDER_IMAGE,
            "TeamStoreBucketName": "modelkb-team-test",
        }
    for template in templates:
        text = template.read_text()
        assert sam.lint(text) == [], template
        translated = sam.translate(sam.load_template(template), parameters)
        assert not any(
            r["Type"].startswith("AWS::Serverless::") for r in translated["Resources"].values()
        )
        functions = [
            r for r in translated["Resources"].values() if r["Type"] == "AWS::Lambda::Function"
        ]
        assert functions and functions[0]["Properties"]["PackageType"] == "Image"
        assert "InvokeUrl" in translated["Outputs"]
        assert sam.lint(translated) == [], template


def test_translation_catches_what_lint_misses(packages: dict, tmp_path: Path) -> None:
    folder = next(iter(packages.values()))
    broken = (
        (folder / "template.yaml")
        .read_text()
        .replace("Method: POST", "Method: POST\n            Bogus: 1")
    )
    with pytest.raises(PackageError, match="SAM translator"):
        sam.translate(sam.load_template(broken), {"ImageUri": sam.PLACEHOLDER_IMAGE})


def test_spec_rejects_unknown_steps_and_missing_input(cases: dict) -> None:
    case = next(iter(cases.values()))
    metadata = copy.deepcopy(case.metadata)
    metadata["dataset"]["preprocessing"] = [{"op": "random_crop", "size": 4}]
    with pytest.raises(PackageError, match="random_crop"):
        build_spec(metadata)
    metadata = copy.deepcopy(case.metadata)
    metadata["architecture"] = {}
    with pytest.raises(PackageError, match="input shape"):
        build_spec(metadata)


def test_missing_onnx_is_a_clear_error(cases: dict, tmp_path: Path) -> None:
    case = next(iter(cases.values()))
    empty = tmp_path / "bundle"
    empty.mkdir()
    with pytest.raises(PackageError, match="no ONNX model") as info:
        render_package(empty, case.metadata, tmp_path / "out")
    assert info.value.hint


def test_render_limits_are_checked(cases: dict, tmp_path: Path) -> None:
    case = next(iter(cases.values()))
    with pytest.raises(PackageError, match="timeout"):
        render_package(case.bundle, case.metadata, tmp_path / "out", timeout=901)
