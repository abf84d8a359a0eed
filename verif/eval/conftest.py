"""Shared fixtures of the accuracy-study tests: one real model per test process."""

import pytest
import torch

# The machine has 2 cores shared with simulations; pytest-xdist already runs 2 workers.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def corpus():
    from sqhw.eval.corpus import load_corpus
    return load_corpus()


@pytest.fixture(scope="session")
def minilm():
    """``(tokenizer, model, ctx)``: all-MiniLM-L6-v2 with its linears instrumented."""
    from sqhw.eval import load_instrumented
    return load_instrumented()
