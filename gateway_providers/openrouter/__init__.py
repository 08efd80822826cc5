"""OpenAI-compatible chat providers: Kilo's gateway (keyless ``:free`` models) and OpenRouter (a key).

The ``kilo`` provider serves the Haiku lane (DESIGN §4, §5):
``POST {RELAYGATE_KILO_BASE_URL}/chat/completions`` in the OpenRouter dialect of Chat Completions
(protocols §3), with ``RELAYGATE_HAIKU_API_KEY`` as the bearer when it is set. Point the base URL at
``https://openrouter.ai/api/v1`` to use OpenRouter itself.
"""
