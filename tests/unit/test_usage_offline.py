"""Token counting must work with no network and an empty tiktoken cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Runs in a fresh interpreter where any attempt to open a network connection fails.
NO_NETWORK_COUNT = """
import socket
def refuse(*args, **kwargs):
    raise OSError("network access attempted")
socket.socket.connect = refuse
socket.create_connection = refuse
from service.usage import count_tokens
print(count_tokens("a red fox in the snow"))
"""


def test_tiktoken_counts_offline(tmp_path: Path) -> None:
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(tmp_path / "empty-cache")}
    result = subprocess.run(
        [sys.executable, "-c", NO_NETWORK_COUNT],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == 6
