"""The default credential chain under concurrency: one fetch, no stalled event loop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SECRET = "UriServedSecretValue0123456789"


def test_many_polls_asking_at_once_share_one_fetch_and_never_stall_the_loop(
    tmp_path: Path,
) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("ALIBABA_CLOUD_") and not key.startswith("ALICLOUD_")
    }
    env.update(
        {
            "HOME": str(tmp_path),  # no CLI profile, no credentials file
            "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
            "PYTHONPATH": str(REPO),
        }
    )
    result = subprocess.run(
        [sys.executable, str(REPO / "tests" / "scripts" / "chain_concurrency.py"), SECRET, "20"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["ok"] == 20
    assert seen["hits"] == 1  # single flight, then reused
    # Without the single flight the package blocks the loop for its 5 s lock timeout.
    assert seen["max_lag"] < 1.0, seen
    assert SECRET not in result.stderr
