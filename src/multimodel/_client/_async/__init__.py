"""The async client, stream and OpenAI-shaped surface: the source of ``_sync/``."""
