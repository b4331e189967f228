"""The Keras collector: one callback turns ``model.fit(...)`` into an experiment bundle.

Works with Keras 3 on the TensorFlow and torch backends (``tf.keras`` is Keras 3 since TF 2.16),
with numpy arrays, ``tf.data`` datasets, Python generators, ``keras.utils.PyDataset`` and torch
``DataLoader`` inputs. The callback is thin: it reads what Keras knows and hands it to the
framework-free :class:`~modelkb.experiment.Experiment`; every capture step runs inside
``Experiment.guard`` so a failure becomes a warning in the bundle, never a lost run.

Example:
    >>> exp = Experiment("Digits", "alice", seed=42)                       # doctest: +SKIP
    >>> model.fit(x, y, epochs=3, callbacks=[KerasCallback(exp)])          # doctest: +SKIP

Keras does not call ``on_train_end`` when ``fit`` raises. The run is not lost then (the experiment
seals it as ``interrupted`` at exit); to record it as ``failed`` with the error, train inside
``with Experiment(...) as exp:`` — the ``with`` block then owns the status (see ``finish=``).
"""

from __future__ import annotations

import copy
import logging
import sys
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelkb.collector.capture_options import SAMPLE_ROWS, CaptureOptions
from modelkb.collector.dataset_info import merge_dataset
from modelkb.collector.keras_capture import (
    DataSource,
    architecture,
    architecture_complete,
    current_learning_rate,
    fill_pipeline_vocabularies,
    fit_arguments,
    head,
    hyperparameters,
    merge_model_steps,
    model_preprocessing,
    tensor_specs,
    text_vectorization_settings,
)
from modelkb.collector.keras_onnx import EXPORT_LOG, ConverterLog
from modelkb.collector.onnx_check import OnnxExportError
from modelkb.extras import require
from modelkb.fsutil import atomic_target
from modelkb.metric_names import split_train_val

if TYPE_CHECKING:
    from modelkb.experiment import Experiment

try:  # the framework edge: the callback must subclass Keras' own class
    import keras as _keras

    _CallbackBase: Any = _keras.callbacks.Callback
except ImportError:  # pragma: no cover - exercised only without the [keras] extra
    _keras = None
    _CallbackBase = object

logger = logging.getLogger(__name__)

__all__ = ["KerasCallback", "KerasCallbacks"]


class KerasCallback(_CallbackBase):  # type: ignore[misc]
    """Record a Keras ``fit`` as a ModelKB experiment bundle.

    Args:
        experiment: The :class:`~modelkb.experiment.Experiment` to record into.
        export_onnx, save_weights, sample_inputs, dataset: What to capture, as
            :class:`~modelkb.collector.capture_options.CaptureOptions` describes: ``model.onnx``
            (dynamic batch axis) checked against the model with onnxruntime, ``model.keras``, the
            check's inputs (default: the first rows of the training data or, with no data to read,
            a seeded synthetic batch), and dataset fields laid over what is inferred from the
            data, the model's preprocessing layers and the training source.
        finish: Seal the bundle at the end of training. ``None`` (default): yes, unless the
            experiment was started before ``fit`` (``with Experiment(...)``), in which case the
            ``with`` block seals it — so metrics logged after ``fit`` still land in the bundle and
            an exception after ``fit`` marks it ``failed``.

    Raises:
        MissingExtraError: Keras is not installed (``pip install 'modelkb[keras]'``).
        TypeError: ``dataset`` is not a mapping.
    """

    def __init__(
        self,
        experiment: Experiment,
        *,
        export_onnx: bool = True,
        save_weights: bool = True,
        sample_inputs: Any = None,
        dataset: Mapping[str, Any] | None = None,
        finish: bool | None = None,
    ) -> None:
        require("keras", "keras")
        super().__init__()
        self.options = CaptureOptions(
            export_onnx=export_onnx,
            save_weights=save_weights,
            sample_inputs=sample_inputs,
            dataset=dataset or {},
        )
        self.experiment = experiment
        self.finish = finish
        self.finalize_seconds: float | None = None
        """Wall time of the end-of-training work (saving, ONNX export and check, sealing)."""
        self._owns_finish = True
        self._active = False
        self._epoch_t0: float | None = None
        self._source: DataSource | None = None
        self._hyper: dict[str, Any] = {}
        self._architecture_done = False
        from modelkb.collector.source_analysis import analyze_experiment_code

        self._source_found = analyze_experiment_code(experiment)

    # -- hooks ------------------------------------------------------------------------------------
    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        exp = self.experiment
        if exp.finished:
            warnings.warn(
                f"{exp!r} is already finished; this fit is not recorded. Create one Experiment per "
                "fit, or pass finish=False and seal it yourself.",
                stacklevel=2,
            )
            self._active = False
            return
        self._active = True
        started = exp.started
        self._owns_finish = (not started) if self.finish is None else bool(self.finish)
        with exp.guard("seed", "seeding frameworks imported late"):
            exp.seed_frameworks()  # catches frameworks imported after the Experiment was created
        with exp.guard("keras", "recording the framework"):
            self._record_framework()
        with exp.guard("keras", "reading the training data"):
            self._source = DataSource.from_fit(fit_arguments(self.model))
        with exp.guard("keras", "recording hyperparameters"):
            self._hyper = hyperparameters(self.model, self.params or {}, self._source)
            exp.set_hyperparameters(**self._hyper)
        with exp.guard("keras", "recording the architecture"):
            arch = architecture(self.model, self._source)
            self._architecture_done = architecture_complete(arch)
            exp.set_architecture(arch)
        with exp.guard("dataset", "describing the dataset"):
            self._record_dataset(late=False)
        with exp.guard("store", "starting the run"):
            exp.start()  # last: run.json is written once, with everything above

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._epoch_t0 = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        if not self._active:
            return
        with self.experiment.guard("keras", "recording epoch metrics"):
            train, val = split_train_val(logs or {})
            extra: dict[str, Any] = {}
            lr = current_learning_rate(self.model)
            if lr is not None:
                extra["lr"] = lr
            if self._epoch_t0 is not None:
                extra["time_s"] = round(time.perf_counter() - self._epoch_t0, 4)
            self.experiment.log_epoch(epoch, train, val, **extra)

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        if not self._active:
            return
        self._active = False
        t0 = time.perf_counter()
        exp = self.experiment
        with exp.guard("keras", "completing the run description"):
            self._complete_late_fields()
        if self.options.save_weights:
            with exp.guard("keras", "saving model.keras"):
                self._save_keras(exp.artifact_path("model.keras"))
        handed_over = False
        if self.options.export_onnx:
            with exp.guard("onnx", "exporting model.onnx"):
                sample, origin, labels = self._export_sample()
                if self._owns_finish and (exp.path / "model.keras").is_file():
                    from modelkb.collector.keras_sealer import seal_elsewhere

                    handed_over = seal_elsewhere(exp, self.model, sample, origin, labels)
                if not handed_over:
                    self.export_onnx(exp.artifact_path("model.onnx"), sample, origin, labels)
        self._source = None  # drop references to the user's data
        if self._owns_finish and not handed_over:
            with exp.guard("store", "sealing the bundle"):
                exp.finish("completed")
        self.finalize_seconds = round(time.perf_counter() - t0, 3)
        logger.debug("end of training took %.3f s", self.finalize_seconds)

    # -- capture ----------------------------------------------------------------------------------
    def _record_framework(self) -> None:
        keras = _keras
        versions = {"keras": keras.__version__}
        for module in ("tensorflow", "torch", "jax", "numpy"):
            version = getattr(sys.modules.get(module), "__version__", None)
            if isinstance(version, str):
                versions[module] = version
        self.experiment.set_framework(
            "keras", keras.__version__, backend=keras.backend.backend(), **versions
        )

    def _record_dataset(self, *, late: bool) -> None:
        exp = self.experiment
        inferred = self._source.describe(late=late) if self._source is not None else None
        if late and inferred is None:
            return
        merged: dict[str, Any] = dict(inferred or {})
        if not late:
            found = self._source_analysis()
            steps = merge_model_steps(
                found.pop("preprocessing", []), model_preprocessing(self.model)
            )
            main = sys.modules.get("__main__")
            steps = fill_pipeline_vocabularies(
                steps, vars(main) if main is not None else {}, model=self.model
            )
            merged = merge_dataset(merged, found)
            if steps:
                merged = merge_dataset(merged, {"preprocessing": steps})
        merged = merge_dataset(merged, exp.metadata.get("dataset") or {})  # what the user set first
        merged = merge_dataset(merged, self.options.dataset)  # the callback's dataset= wins
        if merged:
            exp.set_dataset(**merged)

    def _source_analysis(self) -> dict[str, Any]:
        found = self._source_found
        return {
            key: copy.deepcopy(list(found.get(key) or []))
            for key in ("loading", "preprocessing")
            if found.get(key)
        }

    def _complete_late_fields(self) -> None:
        """Fields only knowable after training, or that cost a read of the data (not before training:
        reading a batch early could consume random state and change what the model learns)."""
        updates: dict[str, Any] = {}
        steps = self._hyper.get("steps_per_epoch")
        if steps is None and self._source is not None:
            steps = self._source.steps_seen()
            if steps is not None:
                updates["steps_per_epoch"] = steps
        if self._hyper.get("batch_size") is None and self._source is not None:
            batch_size = self._source.batch_size(late=True)
            if batch_size is not None:
                updates["batch_size"] = batch_size
        if updates:
            self._hyper.update(updates)
            self.experiment.set_hyperparameters(**updates)
        if not self._architecture_done:  # a subclassed model is built by its first batch
            self.experiment.set_architecture(architecture(self.model, self._source, late=True))
        self._record_dataset(late=True)

    # -- artifacts --------------------------------------------------------------------------------
    def _save_keras(self, target: Path) -> None:
        # Keras insists on the .keras suffix, so the temporary file keeps it (hidden, same folder).
        with atomic_target(target, keep_suffix=True) as tmp, warnings.catch_warnings():
            # Keras' own numpy-2 deprecation chatter; under `-W error` it would cost the file
            warnings.simplefilter("ignore", DeprecationWarning)
            self.model.save(tmp)

    def _export_sample(self) -> tuple[Any, str, Any]:
        """The rows the export is checked on, where they came from (user, data, synthetic) and
        their labels (only rows of the training data have them)."""
        sample = self.options.sample_inputs
        if sample is not None:
            return sample, "user", None
        if self._source is not None:
            sample, labels = self._source.sample()
            if sample is not None:
                return sample, "data", labels
        return _synthetic_sample(self.model), "synthetic", None

    def export_onnx(self, target: Path, sample: Any, origin: str, labels: Any = None) -> None:
        """Export ``model.onnx`` and check it against the model on ``sample``; record the check.
        Checked rows of real data (not a synthetic batch) and their ``labels`` become the
        bundle's example inputs."""
        keras = _keras
        if keras.backend.backend() == "tensorflow":
            require("tf2onnx", "keras")
        converter = ConverterLog()
        try:
            with atomic_target(target, keep_suffix=True) as tmp:
                record = self._export_checked(tmp, target, sample, origin, converter, labels)
        except Exception as err:
            raise _explained(err, converter, self.experiment) from err
        self.experiment.record_onnx(record)
        if record.get("starts_after"):
            self._replay_before_onnx(record["starts_after"])

    def _replay_before_onnx(self, layer_name: str) -> None:
        """The layer ``model.onnx`` starts after is replayed by the handler: its step is no longer
        ``in_model`` but ``before_onnx``, with the vocabulary it was adapted to."""
        steps = list((self.experiment.metadata.get("dataset") or {}).get("preprocessing") or [])
        layer = next((each for each in self.model.layers if each.name == layer_name), None)
        for index, step in enumerate(steps):
            if isinstance(step, Mapping) and step.get("model_layer") == layer_name:
                settings = text_vectorization_settings(layer) if layer is not None else {}
                steps[index] = {**step, **settings, "in_model": False, "before_onnx": True}
        self.experiment.set_dataset(preprocessing=steps)

    def _export_checked(
        self,
        tmp: Path,
        target: Path,
        sample: Any,
        origin: str,
        converter: ConverterLog,
        labels: Any = None,
    ) -> dict[str, Any]:
        """Export to ``tmp`` and check it against Keras on ``sample``; returns the ``onnx`` record."""
        keras = _keras
        from modelkb.collector.keras_lookups import lookup_split, prepend_lookups, with_unseen_row
        from modelkb.collector.keras_onnx import fold_captured_constants, text_vectorization_head

        on_tensorflow = keras.backend.backend() == "tensorflow"
        split = text_vectorization_head(self.model) if on_tensorflow else None
        lookups = lookup_split(self.model) if on_tensorflow and not split else None
        exported = split[1] if split else lookups.rest if lookups else self.model
        with warnings.catch_warnings(), converter:
            warnings.simplefilter("ignore")  # exporter chatter (tracer, deprecations)
            exported.export(str(tmp), format="onnx", verbose=False)
        if not (split or lookups):
            _refuse_dropped_inputs(tmp, exported)
            _name_inputs_by_key(tmp, exported)
        record: dict[str, Any] = {"path": target.name, "sample": origin}
        if on_tensorflow:
            folded = fold_captured_constants(tmp, exported)
            if folded:
                record["folded_constants"] = folded
        if split:
            record["starts_after"] = split[0].name  # its input: the layer's token ids
        if lookups:
            prepend_lookups(tmp, lookups)  # the graph takes the raw named inputs again
            record["lookups_in_graph"] = lookups.layer_names
        if sample is None:
            self.experiment.warn(
                "model.onnx was not checked: no sample input (pass sample_inputs=)",
                source="onnx",
            )
            record.update(opset=None, max_abs_diff=None, checked_on=None)
        else:
            from modelkb.collector.onnx_check import check_fields, record_examples, verify_onnx

            sample, rows = head(sample, SAMPLE_ROWS), None
            if lookups and isinstance(sample, dict) and sample:
                rows = len(next(iter(sample.values())))  # the unseen row added next is not data
                sample = with_unseen_row(sample, lookups)
            expected = _predict(self.model, sample)  # the whole model, on raw inputs
            feed = keras.ops.convert_to_numpy(split[0](sample)) if split else _onnx_feed(sample)
            result = verify_onnx(tmp, feed, expected)
            record.update(check_fields(result))
            if origin != "synthetic":
                record_examples(self.experiment, result, head(labels, SAMPLE_ROWS), rows=rows)
            if not result["batch_dynamic"]:
                self.experiment.warn("model.onnx has a fixed batch size", source="onnx")
        return record


def _explained(err: Exception, converter: ConverterLog, experiment: Experiment) -> Exception:
    """The export failure in one line naming what could not be converted; the converter's own
    output goes to the bundle's ``onnx_export.log``, never to the user's console."""
    if converter.lines:
        with experiment.guard("onnx", "writing onnx_export.log"):
            experiment.artifact_path(EXPORT_LOG).write_text(
                "\n".join(converter.lines) + "\n", encoding="utf-8"
            )
    ops = converter.unconvertible_ops
    if "LookupTableFindV2" in ops:
        return OnnxExportError(
            "the model holds a lookup table tf2onnx cannot convert (op LookupTableFindV2): "
            "ModelKB writes StringLookup/IntegerLookup layers of the model itself in ONNX, not "
            f"ones inside a nested model or a custom layer; details in {EXPORT_LOG}",
            path=EXPORT_LOG,
        )
    if ops:
        return OnnxExportError(
            f"tf2onnx cannot convert the op(s) {', '.join(ops[:5])}; details in {EXPORT_LOG}",
            path=EXPORT_LOG,
        )
    return err


KerasCallbacks = KerasCallback
"""The name used in the ModelKB paper."""


def _predict(model: Any, sample: Any) -> Any:
    try:
        output = model(sample, training=False)
    except Exception:
        output = model.predict(sample, verbose=0)
    flat = _keras.tree.flatten(output)
    arrays = [_keras.ops.convert_to_numpy(o) for o in flat]
    return arrays[0] if len(arrays) == 1 else arrays


def _onnx_feed(sample: Any) -> Any:
    if isinstance(sample, tuple):
        return list(sample)
    return sample


def _name_inputs_by_key(path: Path, model: Any) -> None:
    """Give the graph inputs the keys of the model's ``inputs`` dict: ``keras.Input((1,))`` under
    the key ``"age"`` is exported as ``keras_tensor``, and a request names it ``age``."""
    import onnx

    structure = getattr(model, "input", None)
    if not isinstance(structure, Mapping):
        return
    names = {getattr(t, "name", key): str(key) for key, t in structure.items()}
    names = {old: new for old, new in names.items() if old != new}
    if not names:
        return
    proto = onnx.load(str(path))
    graph = proto.graph
    taken = {v for node in graph.node for v in (*node.input, *node.output)} | {
        i.name for i in graph.initializer
    }
    if any(new in taken for new in names.values()):
        return  # a key is already a value name in the graph: keep the exporter's names
    for value in graph.input:
        value.name = names.get(value.name, value.name)
    for node in graph.node:
        node.input[:] = [names.get(name, name) for name in node.input]
    onnx.save(proto, str(path))


def _refuse_dropped_inputs(path: Path, model: Any) -> None:
    """Refuse a graph that lost a model input: on a backend that cannot trace a layer (a lookup
    layer on torch runs TensorFlow eagerly), the export bakes what it read into a constant and the
    ONNX model would answer the same for every value of that input."""
    import onnx

    graph_inputs = {i.name for i in onnx.load(str(path), load_external_data=False).graph.input}
    try:
        structure, tensors = model.input, list(model.inputs or [])
    except (AttributeError, ValueError):  # a subclassed model: no symbolic inputs to compare
        return
    named = (
        structure.items()
        if isinstance(structure, Mapping)
        else [(getattr(t, "name", str(i)), t) for i, t in enumerate(tensors)]
    )
    lost = [
        (key, tensor) for key, tensor in named if getattr(tensor, "name", key) not in graph_inputs
    ]
    if not lost:
        return
    readers = sorted(
        {type(layer).__name__ for _, tensor in lost for layer in _layers_reading(model, tensor)}
    )
    by = f" (read by {', '.join(readers)})" if readers else ""
    raise OnnxExportError(
        f"the ONNX export on the {_keras.backend.backend()} backend has no input for "
        f"{', '.join(str(key) for key, _ in lost)}{by}: the exporter could not trace the layer "
        "and froze its result, so the model would answer the same whatever that input is",
        hint="Train with KERAS_BACKEND=tensorflow (ModelKB writes lookup layers in ONNX there), "
        "or do the lookup in the data pipeline.",
    )


def _layers_reading(model: Any, tensor: Any) -> list[Any]:
    """The model's layers that take ``tensor`` as an input."""
    found = []
    for layer in getattr(model, "layers", []):
        for node in getattr(layer, "_inbound_nodes", []):
            if any(t is tensor for t in getattr(node, "input_tensors", [])):
                found.append(layer)
    return found


def _synthetic_sample(model: Any) -> Any:
    """A seeded random batch of the model's input shape (own generator: global RNGs untouched)."""
    import numpy as np

    specs = tensor_specs(model, "inputs")
    if not specs or any(s["shape"] is None or None in s["shape"][1:] for s in specs):
        return None
    rng = np.random.default_rng(0)
    arrays = []
    for spec in specs:
        shape = (2, *spec["shape"][1:])
        dtype = spec["dtype"] or "float32"
        if dtype.startswith("float"):
            arrays.append(rng.standard_normal(shape).astype(dtype))
        else:
            arrays.append(np.zeros(shape, dtype=dtype))
    return arrays[0] if len(arrays) == 1 else arrays


def log_keras_model(experiment: Experiment, model: Any, example_input: Any = None) -> None:
    """Register a Keras model trained without the callback (a custom loop, ``train_on_batch``).

    Records what :class:`KerasCallback` records at the end of ``fit``: framework, loss and
    optimizer, architecture, ``model.keras`` and ``model.onnx`` checked against Keras on
    ``example_input`` (a batch of inputs; without it, a seeded random batch of the input shape).
    """
    callback = KerasCallback(experiment, sample_inputs=example_input, finish=False)
    callback.set_model(model)
    with experiment.guard("keras", "recording the framework"):
        callback._record_framework()
    with experiment.guard("keras", "recording hyperparameters"):
        experiment.set_hyperparameters(**hyperparameters(model, {}, None))
    with experiment.guard("keras", "recording the architecture"):
        experiment.set_architecture(architecture(model, None, late=True))
    with experiment.guard("keras", "recording the model's preprocessing layers"):
        in_model = model_preprocessing(model)
        if in_model:
            recorded = (experiment.metadata.get("dataset") or {}).get("preprocessing") or []
            experiment.set_dataset(preprocessing=merge_model_steps(list(recorded), in_model))
    with experiment.guard("keras", "saving model.keras"):
        callback._save_keras(experiment.artifact_path("model.keras"))
    with experiment.guard("onnx", "exporting model.onnx"):
        callback.export_onnx(experiment.artifact_path("model.onnx"), *callback._export_sample())
