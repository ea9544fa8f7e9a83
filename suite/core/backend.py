"""backend: imports Keras (and TensorFlow) once per process, quietly, before any model.

TensorFlow prints C++ start-up banners straight to file descriptor 2, past Python's
logging and TF_CPP_MIN_LOG_LEVEL; they are silenced here during the import only, and
Python errors from the import still propagate.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# 3: C++ errors too. With op determinism on (suite.core.device), TF 2.21 logs a harmless
# "NodeDef mentions attribute use_unbounded_threadpool" error for every fit on arrays;
# real failures still surface as Python exceptions. Set the variable to see everything.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# TensorFlow turns its oneDNN kernels on by default only on CPUs with neural-network features
# (AVX512_VNNI, AVX512_BF16, AVX_VNNI, AMX), so an AVX2-only CPU ran the convnets on Eigen's: one
# depth-study trial took 4.0x as long per step with oneDNN off (bench/cpu_kernels.py). On everywhere,
# unless the variable is set; the provenance of each record says which.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


@contextmanager
def _silenced_fd2():
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_keras():
    """Keras, imported with TensorFlow's start-up banners suppressed; idempotent."""
    if "keras" not in sys.modules:
        with _silenced_fd2():
            try:  # Keras loads TensorFlow for its data utilities on every backend when it is installed
                import tensorflow  # noqa: F401 (the banner comes from here)
            except ImportError:
                pass
            import keras  # noqa: F401
    # retracing notices: a fresh model per trial is intended, not a bug to warn about
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    import keras

    return keras
