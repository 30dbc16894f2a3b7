"""The local OpenAI / Anthropic fake lives with the demo, which runs it for the example app."""

from lightkeeper.demo.llm_fake import DEFAULT_ANTHROPIC_USAGE, DEFAULT_OPENAI_USAGE, WORDS, LLMFake

__all__ = ["DEFAULT_ANTHROPIC_USAGE", "DEFAULT_OPENAI_USAGE", "WORDS", "LLMFake"]
