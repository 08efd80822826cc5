"""The shared o200k_base tokenizer: offline, exact, loaded once, and never blocking the event loop."""

from __future__ import annotations

import pytest

from gateway_providers import _tokenizer
from gateway_providers._tokenizer import INLINE_CHARACTERS, count_tokens, get_tokenizer, load_tokenizer
from tests.unit._tokenizer_support import reference_count

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "text",
    [
        "Hello, world!",
        "héllo wörld — ünïcode ✓ 日本語",
        "def f(x):\n    return x ** 2\n",
        "<|endoftext|> is text",
    ],
)
def test_counts_agree_with_the_tiktoken_compatible_api(text: str) -> None:
    assert load_tokenizer().count(text) == reference_count(text)


def test_a_known_text_has_its_known_o200k_count() -> None:
    # "Hello, world!" is [13225, 11, 2375, 0] in o200k_base.
    assert load_tokenizer().count("Hello, world!") == 4


async def test_the_tokenizer_is_loaded_once() -> None:
    assert await get_tokenizer() is await get_tokenizer()
    assert _tokenizer.load_tokenizer() is await get_tokenizer()


async def test_several_texts_count_as_the_sum_of_their_counts() -> None:
    texts = ["You are terse.", '[{"role":"user","content":"hi"}]']

    assert await count_tokens(texts) == sum(reference_count(text) for text in texts)


async def test_texts_too_large_to_count_inline_are_counted_exactly_too() -> None:
    text = "lorem ipsum dolor sit amet, " * (INLINE_CHARACTERS // 10)

    assert await count_tokens([text, "[]"]) == load_tokenizer().count(text) + load_tokenizer().count("[]")
