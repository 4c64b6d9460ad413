"""The README's examples, as written: they name living Bedrock models, and they work.

The quick start's curl and Python snippets run against the test stack (its base URL in
place of the default port); every model a README code block names must be one that AWS
still serves, so a newcomer's first request never goes to a retired model.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import httpx
from PIL import Image

from service.models.registry import all_edit_models
from stack.__main__ import CURL_EXAMPLE
from stack.local import LocalStack

README = Path(__file__).resolve().parents[2] / "README.md"
DEFAULT_BASE = "http://127.0.0.1:8080"
# Bedrock's living image models on 2026-12-03 (reference §3.1): Stability only.
LIVING = {
    "stability.sd3-5-large-v1:0",
    "stability.stable-image-core-v1:1",
    "stability.stable-image-ultra-v1:1",
    *(spec.model_id for _, spec in all_edit_models() if spec.profile_only),
}


def code_blocks(language: str) -> list[str]:
    """The code blocks of the README and of docs/."""
    pages = [README, *sorted((README.parent / "docs").glob("*.md"))]
    return [
        block
        for page in pages
        for block in re.findall(rf"```{language}\n(.*?)```", page.read_text(), flags=re.S)
    ]


def quick_start(language: str) -> str:
    section = README.read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks: list[str] = re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)
    return blocks[-1]


def test_every_model_in_an_example_is_alive() -> None:
    named = []
    for block in code_blocks("bash") + code_blocks("python") + code_blocks("json"):
        named += re.findall(r"""model["']?\s*[:=]\s*["']([^"']+)["']""", block)
    named += re.findall(r'"model": "([^"]+)"', CURL_EXAMPLE)  # the `make run` banner
    assert named, "the README's examples name no model"
    retired = sorted({name for name in named if name.removeprefix("us.") not in LIVING})
    assert retired == []


def run_curl(command: str) -> None:
    """A `curl -s URL -H ... -d JSON` command, sent with httpx (curl may not be installed)."""
    words = shlex.split(command.replace("\\\n", " "))
    assert words[:2] == ["curl", "-s"]
    url = words[2]
    headers = dict(words[i + 1].split(": ", 1) for i, word in enumerate(words) if word == "-H")
    body = json.loads(words[words.index("-d") + 1])
    answer = httpx.post(url, headers=headers, json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    image_url = answer.json()["data"][0]["url"]
    assert httpx.get(image_url, timeout=30).content.startswith(b"\x89PNG")


def test_quick_start_curl_works_word_for_word(stack: LocalStack) -> None:
    run_curl(quick_start("bash").replace(DEFAULT_BASE, stack.envoy.url))


def test_make_run_banner_curl_works(stack: LocalStack) -> None:
    run_curl(CURL_EXAMPLE.format(base=stack.base_url))


def test_quick_start_python_snippet_works_word_for_word(stack: LocalStack, tmp_path: Path) -> None:
    snippet = quick_start("python").replace(DEFAULT_BASE, stack.envoy.url)
    done = subprocess.run(
        [sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "input_tokens" in done.stdout  # print(result.usage)
    with Image.open(tmp_path / "fox.png") as fox:
        assert (fox.format, fox.size) == ("PNG", (1024, 1024))
