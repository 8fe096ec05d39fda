"""sha256 of every data file a set of recipes writes: to show that a change leaves outputs
byte-identical (run it on two checkouts and compare the two listings).

    python bench/output_digests.py OUT_DIR recipes/quickstart.yaml recipes/fineweb-en.yaml ...

Each recipe runs from the current directory (its relative inputs resolve as a user's do),
with its outputs redirected under OUT_DIR/<recipe name>/; prints one line per data file of the
committed versions: ``<recipe> <path under the version> <sha256>``. Manifests are left out:
they hold times, run ids and code versions, which differ by design.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import yaml

try:
    from recipeflow.orchestration.runner import run_recipe
except ImportError:  # a checkout from before the packages (0.1): compare against it
    from recipeflow.flows.runner import run_recipe


def redirected(recipe: Path, out: Path) -> Path:
    """A copy of ``recipe`` whose outputs (and trained models) go under ``out``."""
    data = yaml.safe_load(recipe.read_text())
    if "output" in data:
        data["output"]["path"] = str(out / "main")
    for name, spec in (data.get("outputs") or {}).items():
        spec["path"] = str(out / name)
    for name, spec in (data.get("train") or {}).items():
        spec["output"]["path"] = str(out / f"model-{name}")
    if "export_path" in data:
        data["export_path"] = str(out / "export" / Path(data["export_path"]).name)
    copy = out.parent / f"{recipe.stem}.yaml"
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_text(yaml.safe_dump(data, sort_keys=False))
    return copy


def digests(root: Path) -> list[tuple[str, str]]:
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and ("data" in path.parts or "rejected" in path.parts) and "cache" not in path.parts:
            rel = path.relative_to(root)
            # The version folder's name holds a time: keep only what follows it.
            parts = rel.parts
            index = next((i for i, p in enumerate(parts) if p in ("data", "rejected")), 0)
            key = "/".join(parts[:1] + parts[index:]) if index else str(rel)
            found.append((key, hashlib.sha256(path.read_bytes()).hexdigest()))
    return found


def main(argv: list[str]) -> int:
    out = Path(argv[0]).resolve()
    for recipe in map(Path, argv[1:]):
        target = out / recipe.stem
        run_recipe(str(redirected(recipe, target)), progress=False, base_dir=str(Path.cwd()))
        for key, digest in digests(target):
            print(recipe.stem, key, digest, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
