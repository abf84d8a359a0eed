"""The evaluation corpus: real English news sentences shipped inside a PyPI wheel.

Source: ``gensim/test/test_data/lee_background.cor`` from the ``gensim`` wheel (the "Lee
background corpus": 300 short news articles of the Australian Broadcasting Corporation,
collected by Lee, Pincombe and Welsh, 2005, and distributed with gensim, LGPL-2.1). The file
is located through the installed distribution's metadata, so gensim (and its SciPy
dependency) is never imported and nothing is downloaded. See ``docs/accuracy.md``.
"""

import hashlib
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

__all__ = ["CORPUS_FILE", "Corpus", "corpus_path", "load_corpus", "split_sentences"]

CORPUS_FILE = "gensim/test/test_data/lee_background.cor"

# A sentence ends at . ! or ? (optionally followed by a closing quote or bracket), then
# whitespace, then something that can start a sentence; unless the word before the full stop
# is an abbreviation normally followed by a capitalised word, or a single capital initial.
_ABBREV = frozenset((
    "Mr", "Mrs", "Ms", "Dr", "Prof", "St", "Sen", "Gen", "Lt", "Col", "Capt", "Sgt", "Rev",
    "Jr", "Sr", "Inc", "Co", "Corp", "Ltd", "No", "Mt", "vs", "Gov", "Rep", "Jan", "Feb",
    "Mar", "Apr", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec"))
_CANDIDATE = re.compile(r"(\S*?)([.!?])[\"')\]]?(\s+)(?=[\"'(\[]?[A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    """Split a paragraph into sentences with a fixed rule (deterministic, no model).

    Parameters
    ----------
    text : str
        One article.

    Returns
    -------
    list of str
        The sentences, stripped, in order.
    """
    text = text.strip()
    out, start = [], 0
    for m in _CANDIDATE.finditer(text):
        word = m.group(1).lstrip("\"'([")
        if m.group(2) == "." and (word in _ABBREV or (len(word) == 1 and word.isupper())):
            continue
        out.append(text[start:m.start(3)].strip())
        start = m.end(3)
    out.append(text[start:].strip())
    return [s for s in out if s]


def corpus_path() -> Path:
    """Path of the corpus file inside the installed gensim distribution.

    Raises
    ------
    FileNotFoundError
        If gensim is not installed (``pip install -e '.[eval]'``).
    """
    try:
        dist = metadata.distribution("gensim")
    except metadata.PackageNotFoundError as e:
        raise FileNotFoundError("the corpus ships in the gensim wheel: install the eval "
                                "extra (pip install -e '.[eval]')") from e
    path = Path(dist.locate_file(CORPUS_FILE))
    if not path.is_file():
        raise FileNotFoundError(f"{CORPUS_FILE} not found in the gensim distribution")
    return path


@dataclass(frozen=True)
class Corpus:
    """Calibration and evaluation sentences (disjoint: split by article).

    Attributes
    ----------
    calibration, evaluation : tuple of str
    source : str
        Where the text came from.
    sha256 : str
        Digest of the raw corpus file (detects a changed upstream file).
    """

    calibration: tuple[str, ...]
    evaluation: tuple[str, ...]
    source: str
    sha256: str


def load_corpus(calib_every: int = 10, min_words: int = 4, max_words: int = 80) -> Corpus:
    """Load, split into sentences and split into calibration / evaluation sets.

    The split is by article, so no article contributes to both sets: article ``i``
    (0-based line number) goes to calibration when ``i % calib_every == 0``, otherwise to
    evaluation. Sentences outside ``min_words..max_words`` words are dropped, and exact
    duplicates are kept once (first occurrence). Everything is deterministic.

    Parameters
    ----------
    calib_every : int
        One article in ``calib_every`` is calibration data.
    min_words, max_words : int
        Sentence length filter, in whitespace-separated words.

    Returns
    -------
    Corpus
    """
    if calib_every < 2:
        raise ValueError(f"calib_every must be >= 2, not {calib_every}")
    path = corpus_path()
    raw = path.read_bytes()
    lines = raw.decode("utf-8").splitlines()
    seen: set[str] = set()
    calib: list[str] = []
    evals: list[str] = []
    for i, line in enumerate(lines):
        for s in split_sentences(line):
            if not (min_words <= len(s.split()) <= max_words) or s in seen:
                continue
            seen.add(s)
            (calib if i % calib_every == 0 else evals).append(s)
    return Corpus(calibration=tuple(calib), evaluation=tuple(evals),
                  source=f"gensim {metadata.version('gensim')}: {CORPUS_FILE}",
                  sha256=hashlib.sha256(raw).hexdigest())
