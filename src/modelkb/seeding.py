"""Seeding every random number generator a run may use, without importing any framework.

Frameworks are seeded only if the user's script has already imported them; a collector callback
calls :func:`seed_frameworks` again at the start of training to catch late imports.
"""

from __future__ import annotations

import logging
import os
import random
import sys

logger = logging.getLogger(__name__)


def seed_frameworks(
    seed: int, *, deterministic: bool = True, done: set[str] | None = None
) -> list[str]:
    """Seed Python, NumPy and whichever of PyTorch/TensorFlow/Keras are imported.

    Args:
        seed: The seed.
        deterministic: Also switch on the frameworks' deterministic kernels.
        done: Generators already seeded (skipped); updated in place.

    Returns:
        The names of the generators seeded by this call.
    """
    done = set() if done is None else done
    seeded: list[str] = []

    def mark(name: str) -> None:
        done.add(name)
        seeded.append(name)

    if "python" not in done:
        random.seed(seed)
        os.environ["PYTHONHASHSEED"] = str(seed)  # for subprocesses (data loader workers)
        mark("python")
    if "numpy" not in done and "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(seed)
        mark("numpy")
    if "torch" not in done and "torch" in sys.modules:
        torch = sys.modules["torch"]
        torch.manual_seed(seed)
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
        mark("torch")
    if "tensorflow" not in done and "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
        tf.random.set_seed(seed)
        if deterministic:
            try:
                tf.config.experimental.enable_op_determinism()
            except Exception as err:
                logger.info("TensorFlow op determinism not enabled: %s", err)
        mark("tensorflow")
    if "keras" not in done and "keras" in sys.modules:
        keras = sys.modules["keras"]
        try:
            keras.utils.set_random_seed(seed)
            mark("keras")
        except AttributeError:
            pass
    return seeded
