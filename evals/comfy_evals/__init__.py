"""Inspect AI eval suites for the comfy-mcp server: tasks (tasks.py), their
JSONL datasets and configs, the deterministic scorer, and the scripted
assistants that prove the harness in CI without a language model."""
