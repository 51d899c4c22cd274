"""The default credential chain under concurrency: one fetch, no stalled event loop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SECRET = "UriServedSecretValue0123456789"


def run_script(tmp_path: Path, *args: str) -> tuple[dict[str, object], str]:
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
        [sys.executable, str(REPO / "tests" / "scripts" / "chain_concurrency.py"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


@pytest.mark.slow
def test_many_polls_asking_at_once_share_one_fetch_and_never_stall_the_loop(
    tmp_path: Path,
) -> None:
    seen, stderr = run_script(tmp_path, SECRET, "20")
    assert seen["ok"] == 20
    assert seen["hits"] == 1  # single flight, then reused
    # Without the single flight the package blocks the loop for its 5 s lock timeout.
    assert seen["max_lag"] < 1.0, seen
    assert SECRET not in stderr


@pytest.mark.slow
def test_a_chain_error_never_quotes_the_credentials_it_was_sent(tmp_path: Path) -> None:
    """The package's error quotes the whole response, secret included: ours must not."""
    seen, stderr = run_script(tmp_path, SECRET, "3", "nocode")
    assert seen["ok"] == 0
    errors = seen["errors"]
    assert isinstance(errors, list) and errors
    assert all(str(e).startswith("no credentials from the default chain") for e in errors)
    assert all(SECRET not in str(e) for e in errors)
    assert SECRET not in stderr


def test_redact_blanks_secret_fields_in_the_packages_messages() -> None:
    from exporter.aliyun.credentials import redact

    message = (
        "error retrieving credentials from http://127.0.0.1:1/creds result: "
        '{"AccessKeyId": "STS.abc", "AccessKeySecret": "TOPSECRET-VALUE-123", '
        '"SecurityToken": "CAIStoken456", "Expiration": "2099-01-01T00:00:00Z"}'
        " access_key_secret=plain789 password: hunter2"
    )
    cleaned = redact(message)
    for secret in ("TOPSECRET-VALUE-123", "CAIStoken456", "plain789", "hunter2"):
        assert secret not in cleaned
    assert "STS.abc" in cleaned and "2099-01-01" in cleaned  # the rest stays readable
