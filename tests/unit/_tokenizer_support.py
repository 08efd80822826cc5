"""A reference token count through bpe-openai's documented surface, to check our direct use of it."""

from __future__ import annotations

import warnings


def reference_count(text: str) -> int:
    """The same count through bpe-openai's tiktoken-compatible API (its documented surface)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the wrapper's importlib.resources use
        import bpe_openai  # type: ignore[import-untyped]

        encoding = bpe_openai.get_encoding("o200k_base")
        return len(encoding.encode_ordinary(text))
