"""Models operators load: fastText models (bundled, trained), LLM backends (vllm, openai,
transformers), bundled LLM files, the generation cache and the rephrase prompts."""
