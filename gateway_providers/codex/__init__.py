"""The Codex provider: ChatGPT/Codex backend over OpenAI OAuth accounts (DESIGN §7)."""
