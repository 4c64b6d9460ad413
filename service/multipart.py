"""`multipart/form-data` bodies, parsed with python-multipart under explicit limits.

The OpenAI SDKs send edits and variations as forms: text fields first, then one part per
file (`image` or repeated `image[]`, `mask`). Envoy hands the service the whole body; this
module splits it into parts and refuses, with an error naming the field, a body that has too
many parts, a part that is too large (413), or framing that is broken, before anything else
looks at it. Nothing here knows what the fields mean.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from service.errors import ApiError, invalid_param

MEDIA_TYPE = "multipart/form-data"


@dataclass(frozen=True)
class Limits:
    max_parts: int = 40
    max_file_bytes: int = 20 * 1024 * 1024  # one image; Bedrock bodies are at most 25 MB
    max_field_bytes: int = 256 * 1024  # a text field (a 32,000-character prompt fits)


@dataclass
class Part:
    name: str
    filename: str | None  # set for file parts
    content_type: str
    data: bytearray = field(default_factory=bytearray)

    @property
    def is_file(self) -> bool:
        """A part with a filename, or one whose Content-Type says it holds an image: clients
        (and the OpenAPI document's `encoding`) may send image parts without a filename."""
        return self.filename is not None or self.content_type.lower().startswith("image/")

    def text(self) -> str:
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError:
            raise invalid_param(self.name, f"Form field '{self.name}' is not UTF-8 text.") from None


def is_multipart(content_type: str) -> bool:
    media_type, _ = parse_options_header(content_type)
    return media_type == MEDIA_TYPE.encode()


def parse(body: bytes, content_type: str, limits: Limits) -> list[Part]:
    """The parts of a form body, in the order they were sent (raises ApiError)."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise _malformed("the Content-Type header has no boundary")
    parts: list[Part] = []
    header: dict[str, bytearray] = {"field": bytearray(), "value": bytearray()}
    headers: dict[str, str] = {}

    def on_part_begin() -> None:
        if len(parts) >= limits.max_parts:
            raise ApiError(
                400,
                f"The form has more than {limits.max_parts} parts.",
                code="too_many_parts",
            )
        headers.clear()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"] += data[start:end]

    def on_header_end() -> None:
        headers[header["field"].decode("latin-1").lower()] = header["value"].decode("latin-1")
        header["field"], header["value"] = bytearray(), bytearray()

    def on_headers_finished() -> None:
        disposition, params = parse_options_header(headers.get("content-disposition"))
        name = params.get(b"name")
        if disposition != b"form-data" or name is None:
            raise _malformed("a part has no Content-Disposition: form-data header with a name")
        filename = params.get(b"filename")
        parts.append(
            Part(
                name=name.decode("utf-8", "replace"),
                filename=None if filename is None else filename.decode("utf-8", "replace"),
                content_type=headers.get("content-type", ""),
            )
        )

    def on_part_data(data: bytes, start: int, end: int) -> None:
        part = parts[-1]
        part.data += data[start:end]
        limit = limits.max_file_bytes if part.is_file else limits.max_field_bytes
        if len(part.data) > limit:
            kind = "file" if part.is_file else "field"
            raise ApiError(
                413,
                f"The {kind} '{part.name}' is larger than {limit} bytes, the limit for one "
                f"{kind} of this form.",
                param=part.name,
                code="part_too_large",
            )

    ended: list[bool] = []
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_end": lambda: ended.append(True),
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError as exc:
        raise _malformed(str(exc)) from None
    if not ended:
        raise _malformed("the body ends before the closing boundary")
    return parts


def _malformed(problem: str) -> ApiError:
    return ApiError(
        400, f"The multipart/form-data body is malformed: {problem}.", code="invalid_multipart"
    )
