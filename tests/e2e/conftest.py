"""One local stack (emulator, S3, service, real Envoy) per test worker, on free ports."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from stack.local import LocalStack, Ports

# The Node SDK fixture (the pinned `openai` npm package, installed once), for every module.
from tests.e2e.test_streaming import node  # noqa: F401


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    with LocalStack(ports=Ports.free()) as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_emulator(stack: LocalStack) -> Iterator[None]:
    yield
    stack.emulator.reset()


@pytest.fixture
def client(stack: LocalStack) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url, api_key="test-key", max_retries=0, timeout=60)
