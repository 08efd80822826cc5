"""The ``o200k_base`` tokenizer both built-in providers count with: offline, loaded once, never blocking.

``codex`` counts a request exactly with the encoding of GPT-5.x; ``kilo`` estimates with the same
encoding, standing in for its models' own tokenizers. Each provider's ``tokens`` module keeps its own
counting rule (which texts of its request body are encoded, and what is estimated instead); this module
only turns those texts into a count.

The encoding ships inside the ``bpe-openai`` wheel: nothing is downloaded, ever. It is loaded once,
lazily, in a worker thread; large texts are also counted in a worker thread so the event loop never
blocks. ``bpe-openai``'s tiktoken-style wrapper refuses texts over 1,000,000 characters or 200,000
tokens, so the Rust tokenizer under it is used directly (the same backend the wrapper calls, without
the limits, and counting without building the token list). The dependency stays here, among the
providers: the core does not need it (DESIGN §1).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import threading
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import anyio

ENCODING = "o200k_base"
_PACKAGE = "bpe_openai"
ATTACHMENT_TOKENS = 1_844
"""Tokens counted for one image or file, whose data is not text the model reads: the Codex CLI's
estimate for a resized image (7,373 bytes at 4 bytes per token). Both providers count attachments alike."""
INLINE_CHARACTERS = 32_768
"""Texts up to this size are counted on the event loop (tens of microseconds); larger ones in a thread."""


class Tokenizer(Protocol):
    def count(self, text: str) -> int: ...


_load_lock = threading.Lock()
_tokenizer: Tokenizer | None = None


def load_tokenizer() -> Tokenizer:
    """The ``o200k_base`` tokenizer (blocking the first time; call it off the event loop, e.g. through
    :func:`get_tokenizer`)."""
    global _tokenizer
    with _load_lock:
        if _tokenizer is None:
            _tokenizer = _bindings().tokenizer_for_encoding(ENCODING)
        return _tokenizer


def _bindings() -> Any:
    """``bpe_openai._bindings``, the Rust extension, loaded without running ``bpe_openai/__init__``:
    that wrapper eagerly parses every bundled vocabulary into Python dicts (about 65 MB and half a
    second) that the Rust tokenizer does not need, and warns on Python 3.11 while doing it. Falls back
    to the ordinary import when the package is laid out differently."""
    spec = importlib.util.find_spec(_PACKAGE)
    folders = list(spec.submodule_search_locations or ()) if spec is not None else []
    for folder in folders:
        for path in sorted(Path(folder).glob("_bindings*")):
            if any(path.name.endswith(suffix) for suffix in importlib.machinery.EXTENSION_SUFFIXES):
                name = f"{_PACKAGE}._bindings"
                loader = importlib.machinery.ExtensionFileLoader(name, str(path))
                module_spec = importlib.util.spec_from_file_location(name, path, loader=loader)
                if module_spec is not None:
                    module = importlib.util.module_from_spec(module_spec)
                    loader.exec_module(module)
                    return module
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return importlib.import_module(f"{_PACKAGE}._bindings")


async def get_tokenizer() -> Tokenizer:
    """The tokenizer, loaded in a worker thread on first use."""
    tokenizer = _tokenizer
    if tokenizer is not None:
        return tokenizer
    return await anyio.to_thread.run_sync(load_tokenizer)


def count_texts(tokenizer: Tokenizer, texts: Iterable[str]) -> int:
    return sum(tokenizer.count(text) for text in texts)


async def count_tokens(texts: Sequence[str]) -> int:
    """The tokens of ``texts`` together: on the event loop when they are small, else in a worker thread."""
    tokenizer = await get_tokenizer()
    if sum(len(text) for text in texts) > INLINE_CHARACTERS:
        return await anyio.to_thread.run_sync(count_texts, tokenizer, texts)
    return count_texts(tokenizer, texts)
