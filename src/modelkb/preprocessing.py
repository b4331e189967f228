"""The vocabulary of ``dataset.preprocessing``: the step format, which ops are replayed, the replay rule.

The one owner of this contract. Writers (:mod:`modelkb.collector.preprocessing_steps` recognises
library calls in training source; the framework callbacks add in-model steps) and readers
(:mod:`modelkb.serverless.spec`, which writes the package's ``spec.json`` in canonical form for
the shipped runtime) both import it. Every step is a JSON
object ``{"op": ..., <fields>, "line", "file", "source"}``; the arrays are ``x``:

* ``scale`` ``{factor}``: ``x * factor`` (``x / 255.0`` gives ``factor = 1/255``). ``factor`` is
  ``null`` with ``expr`` and ``fitted: true`` when the divisor is computed from data.
* ``normalize`` ``{mean, std}``: ``(x - mean) / std``; numbers or per-channel lists. Values that
  cannot be resolved are ``null`` with ``mean_expr`` / ``std_expr`` (or ``params: null``) and
  ``fitted: true``.
* ``cast`` ``{dtype}`` (numpy name); ``reshape`` ``{shape}`` (batch axis included, ``-1`` inferred,
  ``null`` unknown); ``expand_dims`` ``{axis}``.
* ``rescale`` ``{scale, offset}``: ``x * scale + offset`` (Keras ``Rescaling``,
  ``ImageDataGenerator(rescale=...)``).
* ``resize`` ``{height, width}`` or ``{size}`` (torchvision int: the shorter side); optional
  ``interpolation``. Also emitted for Keras ``image_dataset_from_directory`` / ``flow_from_*``
  (``image_size`` / ``target_size``, default 256x256), ``tf.image.resize`` and ``cv2.resize``.
* ``center_crop`` ``{height, width}``; ``grayscale`` ``{channels}``.
* ``to_tensor`` ``{scale, layout}``: torchvision ``ToTensor`` (HWC uint8 -> CHW float32,
  ``scale`` 1/255) or ``PILToTensor`` / ``ToImage`` (``scale`` 1.0, dtype kept).
* ``augment`` ``{layer, args, kwargs}``: a random augmentation; always ``train_only: true``.
* ``tokenize`` ``{tokenizer, <its literal kwargs>}`` (``TextVectorization``, Keras ``Tokenizer``:
  ``fitted: true, params: null``; Hugging Face: ``pretrained``) and ``pad`` ``{maxlen, padding?,
  truncating?, value?}`` (Keras ``pad_sequences``: defaults ``"pre"``).
* ``standard_scaler``, ``min_max_scaler``, ``robust_scaler``, ... (snake case of any
  ``sklearn.preprocessing`` / ``sklearn.impute`` / ``sklearn.decomposition`` class)
  ``{kwargs, fitted: true, params: null, note}``: fitted at run time, not recoverable from source.
* ``lookup`` ``{layer, input, vocabulary, vocabulary_size, output_mode, mask_token, oov_token,
  num_oov_indices}``: a Keras ``StringLookup`` / ``IntegerLookup`` of the model (``in_model``) reading
  the named model input ``input``; ``vocabulary`` in index order, special tokens first, at most
  1,000 tokens (``vocabulary_truncated``). ``model.onnx`` holds the whole table (``LabelEncoder``).
* ``transform`` ``{name, args, kwargs}``: any other torchvision transform or Keras preprocessing
  layer, recorded for people, not for replay.

Optional fields on any step: ``train_only`` (inactive at inference), ``in_model`` (a Keras layer
built into the model and so into its ONNX export: never apply it again), ``before_onnx`` (a layer
of the model that ``model.onnx`` starts after, such as a leading ``TextVectorization``: replayed), ``pipeline`` (the
``Compose`` / ``Sequential`` it belongs to: the variable it is assigned to, else
``<keyword>@<line>``), ``applies_to`` (the variables an array operation
was applied to: one step stands for the same operation on ``x_train`` and ``x_test``).
:func:`inference_steps` implements the replay rule; :func:`canonical_step` names each field one way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REPLAYED_OPS = frozenset(
    {
        "scale",
        "rescale",
        "normalize",
        "standardize",
        "minmax",
        "clip",
        "cast",
        "reshape",
        "flatten",
        "expand_dims",
        "transpose",
        "resize",
        "tokenize",
        "pad",
    }
)
"""Ops a generated handler replays; the shipped runtime's dispatch table has exactly these keys
(``modelkb.serverless.preprocess_runtime.STEPS``, checked by ``tests/serverless/test_vocabulary.py``).
``standardize``, ``minmax``, ``clip``, ``flatten`` and ``transpose`` are never inferred from source;
they come from steps a user records with ``exp.set_dataset(preprocessing=[...])``."""

RECORD_ONLY_OPS = frozenset(
    {"augment", "transform", "center_crop", "grayscale", "to_tensor", "lookup"}
)
"""Ops recorded for people (and reproduction) that a generated handler does not replay: ``augment``
is train-only and dropped by :func:`inference_steps`; ``lookup`` is always in the model (its ONNX
export holds the table; the catalog offers its vocabulary as choices); the others make
``modelkb package`` refuse, naming the step. Every other op the collector emits is in :data:`REPLAYED_OPS`."""

LINEAR_OPS = frozenset(REPLAYED_OPS - {"clip", "tokenize", "pad"})
"""Replayed ops that map a value range linearly (or not at all): an image's raw pixel range can be
recovered by inverting them."""

FIELD_SYNONYMS: dict[str, dict[str, str]] = {
    "scale": {"scale": "factor"},
    "rescale": {"factor": "scale"},
    "transpose": {"perm": "axes"},
    "tokenize": {"vocab_file": "vocab_path", "oov": "oov_index"},
}
"""Per op, field spellings accepted from a recorded step and the one name :func:`canonical_step`
gives them (hand-recorded steps use numpy's and other libraries' words)."""

FITTED_VALUES = {
    "normalize": (("mean",), ("std",)),
    "standardize": (("mean",), ("std",)),
    "scale": (("factor",),),
    "minmax": (("min",), ("max",)),
    "tokenize": (("vocabulary", "vocab", "vocab_path"),),
}
"""Per op, the values replay needs (canonical names); each entry lists the fields that can hold one:
a vocabulary is a token list, a ``{token: id}`` mapping or a JSON file in the bundle."""

PAD_DEFAULTS = {"maxlen": None, "padding": "pre", "truncating": "pre", "value": 0}
"""``pad`` fields a step leaves out mean these (Keras ``pad_sequences``' defaults)."""
PAD_SIDES = ("pre", "post")

_EVAL_NAMES = re.compile(r"test|val|eval|infer|predict|serv", re.IGNORECASE)


def canonical_step(step: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``step`` with every field under its one name (``{"op": "scale", "scale": 2}`` ->
    ``{"op": "scale", "factor": 2}``); a field given under both names keeps the canonical one."""
    renames = FIELD_SYNONYMS.get(step.get("op"), {})
    out = {renames.get(key, key): value for key, value in step.items() if key not in renames}
    for alias, name in renames.items():
        if alias in step and name not in step:
            out[name] = step[alias]
    return out


def missing_values(step: Mapping[str, Any]) -> list[str]:
    """What a step needs for replay and lacks: ``["mean", "std"]`` for ``(x - mean) / std`` whose
    statistics the source did not show, ``["params"]`` for any other step fitted to the data at run
    time (a scikit-learn scaler). Empty when the step can be replayed as recorded. The one rule the
    collector (a later step with the values replaces such a guess) and ``modelkb package`` (which
    refuses it) share."""
    step = canonical_step(step)
    needs = FITTED_VALUES.get(step.get("op"), ())
    missing = [names[0] for names in needs if all(step.get(name) is None for name in names)]
    if not needs and step.get("fitted") and "params" in step and step["params"] is None:
        missing.append("params")
    return missing


def inference_steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The steps to replay, in order, before calling an exported model.

    Drops ``train_only`` and ``in_model`` steps. When the remaining steps name several ``pipeline``
    values (a train and a test ``Compose``), keeps the steps of one: the last whose name looks like
    evaluation (``test``, ``val``, ``eval``, ``infer``, ``predict``, ``serv``), else the last one
    without augmentation, else the last one. Steps without ``pipeline`` are always kept.

    Args:
        steps: A ``dataset.preprocessing`` list.

    Returns:
        The steps to apply, in order.
    """
    kept = [s for s in steps if not s.get("train_only") and not s.get("in_model")]
    pipelines = list(
        dict.fromkeys(s["pipeline"] for s in steps if s.get("pipeline") and not s.get("in_model"))
    )
    if len(pipelines) > 1:
        augmented = {s.get("pipeline") for s in steps if s.get("train_only")}
        named = [p for p in pipelines if _EVAL_NAMES.search(p)]
        plain = [p for p in pipelines if p not in augmented]
        chosen = (named or plain or pipelines)[-1]
        kept = [s for s in kept if s.get("pipeline") in (None, chosen)]
    return kept


def lookup_choices(step: Mapping[str, Any] | None) -> list[Any] | None:
    """The values a ``lookup`` step knows, without its mask and OOV tokens: what a form offers for
    the model input it reads (``None`` when no vocabulary was recorded)."""
    if not isinstance(step, Mapping) or not isinstance(step.get("vocabulary"), list):
        return None
    special = {step.get("mask_token"), step.get("oov_token")}
    return [token for token in step["vocabulary"] if token not in special]


def lookups_by_input(steps: Any) -> dict[str, Mapping[str, Any]]:
    """The recorded ``lookup`` steps of a run by the name of the model input each reads."""
    return {
        str(step["input"]): step
        for step in steps or []
        if isinstance(step, Mapping) and step.get("op") == "lookup" and step.get("input")
    }
