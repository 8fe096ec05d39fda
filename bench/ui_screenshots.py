"""Look at a recipe's lineage in a real Prefect UI: start `prefect server`, run three recipes
against it (an upstream dataset, a refresh of it deduplicated against its history, and a
downstream dataset that reads it), then screenshot the flow runs' Artifacts tab and the
Flows page with headless Chromium.

    python bench/ui_screenshots.py [OUT_DIR]      # default /tmp/recipeflow-ui

Needs `chromium` (Debian: apt-get install -y chromium). Prints the flows, the runs' names and
tags, and the PNG paths; everything it starts is stopped by its process id.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.servers import prefect_server, stop_process_group  # noqa: E402

WINDOW = "1400,1600"


def _page(i: int) -> dict:
    words = " ".join(f"w{i}x{j}" for j in range(60))
    return {"id": f"doc{i}", "text": f"Document {i}. {words}", "lang": "en" if i % 4 else "fr"}


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _recipes(work: Path) -> tuple[Path, Path]:
    crawl = work / "crawl"
    crawl.mkdir()
    _write(crawl / "day1.jsonl", [_page(i) for i in range(40)] + [{"id": "tiny", "text": "too short"}])
    upstream = {
        "name": "web-corpus",
        "inputs": {"crawl": {"path": str(crawl / "*.jsonl")}},
        "process": [{"text_length_filter": {"min_length": 60}}, {"exact_dedup": {"scope": "history"}}],
        "output": {"path": str(work / "web-corpus"), "keep_rejected": True, "license": "cc-by-4.0",
                   "columns": {"drop": ["stat_*"]}},
        "run": {"shard_size": 20, "workers": 2},
    }
    downstream = {
        "name": "french-subset",
        "inputs": {"corpus": {"path": str(work / "web-corpus")}},
        "process": [{"specified_field_filter": {"field_key": "lang", "target_value": ["fr"]}}],
        "output": {"path": str(work / "french-subset"), "keep_rejected": True},
        "run": {"workers": 2},
    }
    a, b = work / "web-corpus.yaml", work / "french-subset.yaml"
    a.write_text(yaml.safe_dump(upstream, sort_keys=False))
    b.write_text(yaml.safe_dump(downstream, sort_keys=False))
    return a, b


def _screenshot(chromium: str, url: str, png: Path, profile: Path) -> None:
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         f"--user-data-dir={profile}", "--virtual-time-budget=15000", f"--window-size={WINDOW}",
         f"--screenshot={png}", url],
        check=True, timeout=120, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )


def main(out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium is not installed (Debian: apt-get install -y chromium)")
    work = Path(tempfile.mkdtemp(prefix="recipeflow-ui-"))
    home = work / "prefect-home"
    home.mkdir()
    os.environ["PREFECT_HOME"] = str(home)
    # The UI asks the server where its API is; the default names port 4200, not the free port
    # the test server picked. A relative URL is the server's own address, whatever its port.
    os.environ["PREFECT_UI_API_URL"] = "/api"
    upstream, downstream = _recipes(work)
    with prefect_server(home) as api:
        os.environ["PREFECT_API_URL"] = api
        from recipeflow.orchestration.runner import run_recipe

        run_recipe(str(upstream), progress=False)
        _write(work / "crawl" / "day2.jsonl", [_page(i) for i in range(40, 52)] + [dict(_page(3), id="copy3")])
        run_recipe(str(upstream), progress=False)  # a refresh: a snapshot on top of the first version
        run_recipe(str(downstream), progress=False)
        run_recipe(str(downstream), progress=False)  # nothing changed: renamed <recipe>-unchanged

        flows = {f["id"]: f["name"] for f in httpx.post(f"{api}/flows/filter", json={}).json()}
        runs = httpx.post(f"{api}/flow_runs/filter", json={"sort": "START_TIME_ASC"}).json()
        print("flows:", sorted(flows.values()))
        for run in runs:
            print(f"run {run['name']!r} of flow {flows[run['flow_id']]!r} tags {run['tags']}")
        ui = api.removesuffix("/api")
        profile = work / "chromium-profile"
        shots = []
        for run in runs:
            png = out / f"artifacts-{run['name']}.png"
            _screenshot(chromium, f"{ui}/v2/runs/flow-run/{run['id']}?tab=Artifacts", png, profile)
            shots.append(png)
        for name, path in (("flows", "/flows"), ("artifacts-page", "/artifacts"), ("runs", "/runs"),
                           ("lineage-history", "/artifacts/key/web-corpus-lineage")):
            png = out / f"{name}.png"
            _screenshot(chromium, f"{ui}/v2{path}", png, profile)
            shots.append(png)
        artifacts = httpx.post(f"{api}/artifacts/filter", json={}).json()
        print("artifact keys:", sorted({a["key"] for a in artifacts if a.get("key")}))
        # Each run's markdown artifacts opened: the lineage graph (Mermaid) and the run summary.
        names = {r["id"]: r["name"] for r in runs}
        for artifact in artifacts:
            if artifact["type"] != "markdown" or artifact.get("flow_run_id") not in names:
                continue
            png = out / f"{artifact['key']}-{names[artifact['flow_run_id']]}.png"
            _screenshot(chromium, f"{ui}/v2/artifacts/artifact/{artifact['id']}", png, profile)
            shots.append(png)
    shutil.rmtree(work, ignore_errors=True)
    for png in shots:
        print("screenshot:", png)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/recipeflow-ui")
