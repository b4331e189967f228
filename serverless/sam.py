"""SAM templates offline: read them (short-form intrinsics), translate with ``samtranslator``, lint.

cfn-lint >= 1.54 no longer runs the SAM transform, so a bad SAM property slips through it; translating
first (``samtranslator``, no AWS calls, needs ``AWS_DEFAULT_REGION``) and linting the result catches
it. ``deploy`` uses the same translation before ``CreateStack``/``UpdateStack``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from modelkb.errors import PackageError

PLACEHOLDER_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/modelkb:placeholder"
_MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
}


class _CfnLoader(yaml.SafeLoader):
    """A SafeLoader that reads ``!Ref``/``!Sub``/``!GetAtt``... as their long JSON form."""


def _intrinsic(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template(source: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a SAM/CloudFormation YAML (or JSON) template from a path or its text."""
    text = (
        Path(source).read_text(encoding="utf-8")
        if isinstance(source, Path)
        or (isinstance(source, str) and "\n" not in source and Path(source).is_file())
        else str(source)
    )
    try:
        data = yaml.load(text, Loader=_CfnLoader)
    except yaml.YAMLError as err:
        raise PackageError(f"template is not valid YAML: {err}") from err
    if not isinstance(data, dict) or "Resources" not in data:
        raise PackageError("template has no Resources section")
    return data


def translate(
    template: dict[str, Any], parameters: dict[str, Any] | None = None, *, region: str | None = None
) -> dict[str, Any]:
    """The CloudFormation template SAM would deploy (``Transform`` expanded locally).

    An image function needs an ``ImageUri``: pass it in ``parameters`` or it stays the template's.

    Raises:
        PackageError: The SAM translator rejects the template (its messages are included).
    """
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    try:
        from samtranslator.model.exceptions import InvalidDocumentException
    except ImportError:  # pragma: no cover - older translators
        from samtranslator.public.exceptions import InvalidDocumentException

    if region:
        os.environ.setdefault("AWS_DEFAULT_REGION", region)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    document = json.loads(json.dumps(template))
    values = {
        name: spec.get("Default")
        for name, spec in (document.get("Parameters") or {}).items()
        if "Default" in spec
    }
    values.update(parameters or {})
    try:
        translated = Translator(
            managed_policy_map=dict(_MANAGED_POLICIES), sam_parser=Parser()
        ).translate(document, parameter_values=values)
    except InvalidDocumentException as err:
        causes = "; ".join(str(cause) for cause in getattr(err, "causes", [])) or str(err)
        raise PackageError(f"the SAM translator rejected the template: {causes}") from err
    return json.loads(json.dumps(translated, default=str))


def lint(template: str | dict[str, Any], *, regions: tuple[str, ...] = ("us-east-1",)) -> list[str]:
    """cfn-lint findings (errors and warnings) for a template's text or a translated dict."""
    from cfnlint.api import ManualArgs
    from cfnlint.api import lint as cfn_lint

    text = template if isinstance(template, str) else json.dumps(template, indent=1)
    return [str(match) for match in cfn_lint(text, config=ManualArgs(regions=list(regions)))]
