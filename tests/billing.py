"""What the emulator was paid for: images of the InvokeModel calls that succeeded."""

from __future__ import annotations

from typing import Any

from emulator.bedrock import BedrockEmulator


def images_of(body: Any) -> int:
    """Images one call asked for (Nova/Titan say how many; Stability makes one)."""
    if isinstance(body, dict):
        config = body.get("imageGenerationConfig")
        if isinstance(config, dict) and isinstance(config.get("numberOfImages"), int):
            return int(config["numberOfImages"])
    return 1


def billed_images(emulator: BedrockEmulator) -> int:
    return sum(images_of(call.body) for call in emulator.calls.snapshot() if call.status == 200)
