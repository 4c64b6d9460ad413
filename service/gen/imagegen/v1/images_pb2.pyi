from google.api import annotations_pb2 as _annotations_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UsageRequest(_message.Message):
    __slots__ = ("start_time", "end_time", "bucket_width", "group_by", "api_key_ids", "models", "limit", "page")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    BUCKET_WIDTH_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    API_KEY_IDS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    start_time: int
    end_time: int
    bucket_width: str
    group_by: _containers.RepeatedScalarFieldContainer[str]
    api_key_ids: _containers.RepeatedScalarFieldContainer[str]
    models: _containers.RepeatedScalarFieldContainer[str]
    limit: int
    page: str
    def __init__(self, start_time: _Optional[int] = ..., end_time: _Optional[int] = ..., bucket_width: _Optional[str] = ..., group_by: _Optional[_Iterable[str]] = ..., api_key_ids: _Optional[_Iterable[str]] = ..., models: _Optional[_Iterable[str]] = ..., limit: _Optional[int] = ..., page: _Optional[str] = ...) -> None: ...

class ListModelsHttpRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class BedrockOptions(_message.Message):
    __slots__ = ("guardrail_identifier", "guardrail_version", "trace", "service_tier", "performance_latency")
    GUARDRAIL_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    GUARDRAIL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TRACE_FIELD_NUMBER: _ClassVar[int]
    SERVICE_TIER_FIELD_NUMBER: _ClassVar[int]
    PERFORMANCE_LATENCY_FIELD_NUMBER: _ClassVar[int]
    guardrail_identifier: str
    guardrail_version: str
    trace: str
    service_tier: str
    performance_latency: str
    def __init__(self, guardrail_identifier: _Optional[str] = ..., guardrail_version: _Optional[str] = ..., trace: _Optional[str] = ..., service_tier: _Optional[str] = ..., performance_latency: _Optional[str] = ...) -> None: ...

class ImageGenerationRequest(_message.Message):
    __slots__ = ("prompt", "model", "n", "size", "quality", "style", "response_format", "output_format", "output_compression", "stream", "partial_images", "background", "moderation", "user", "safety_identifier", "extra_params", "bedrock")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    STYLE_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_COMPRESSION_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_IMAGES_FIELD_NUMBER: _ClassVar[int]
    BACKGROUND_FIELD_NUMBER: _ClassVar[int]
    MODERATION_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    SAFETY_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    EXTRA_PARAMS_FIELD_NUMBER: _ClassVar[int]
    BEDROCK_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    model: str
    n: int
    size: str
    quality: str
    style: str
    response_format: str
    output_format: str
    output_compression: int
    stream: bool
    partial_images: int
    background: str
    moderation: str
    user: str
    safety_identifier: str
    extra_params: _struct_pb2.Struct
    bedrock: BedrockOptions
    def __init__(self, prompt: _Optional[str] = ..., model: _Optional[str] = ..., n: _Optional[int] = ..., size: _Optional[str] = ..., quality: _Optional[str] = ..., style: _Optional[str] = ..., response_format: _Optional[str] = ..., output_format: _Optional[str] = ..., output_compression: _Optional[int] = ..., stream: _Optional[bool] = ..., partial_images: _Optional[int] = ..., background: _Optional[str] = ..., moderation: _Optional[str] = ..., user: _Optional[str] = ..., safety_identifier: _Optional[str] = ..., extra_params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., bedrock: _Optional[_Union[BedrockOptions, _Mapping]] = ...) -> None: ...

class Image(_message.Message):
    __slots__ = ("index", "data", "url", "output_format", "width", "height")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    index: int
    data: bytes
    url: str
    output_format: str
    width: int
    height: int
    def __init__(self, index: _Optional[int] = ..., data: _Optional[bytes] = ..., url: _Optional[str] = ..., output_format: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class PartialImage(_message.Message):
    __slots__ = ("index", "partial_image_index", "data", "output_format", "width", "height")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_IMAGE_INDEX_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    index: int
    partial_image_index: int
    data: bytes
    output_format: str
    width: int
    height: int
    def __init__(self, index: _Optional[int] = ..., partial_image_index: _Optional[int] = ..., data: _Optional[bytes] = ..., output_format: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("input_tokens", "output_tokens", "total_tokens")
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    input_tokens: int
    output_tokens: int
    total_tokens: int
    def __init__(self, input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ...) -> None: ...

class ImageGenerationEvent(_message.Message):
    __slots__ = ("partial_image", "image", "usage", "created")
    PARTIAL_IMAGE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    partial_image: PartialImage
    image: Image
    usage: Usage
    created: int
    def __init__(self, partial_image: _Optional[_Union[PartialImage, _Mapping]] = ..., image: _Optional[_Union[Image, _Mapping]] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., created: _Optional[int] = ...) -> None: ...

class EditOptions(_message.Message):
    __slots__ = ("negative_prompt", "seed", "style_preset", "grow_mask", "search_prompt", "select_prompt", "left", "right", "up", "down", "creativity", "control_strength", "fidelity", "aspect_ratio", "composition_fidelity", "style_strength", "change_strength", "strength", "similarity_strength", "mask_prompt", "outpainting_mode", "task_type")
    NEGATIVE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    STYLE_PRESET_FIELD_NUMBER: _ClassVar[int]
    GROW_MASK_FIELD_NUMBER: _ClassVar[int]
    SEARCH_PROMPT_FIELD_NUMBER: _ClassVar[int]
    SELECT_PROMPT_FIELD_NUMBER: _ClassVar[int]
    LEFT_FIELD_NUMBER: _ClassVar[int]
    RIGHT_FIELD_NUMBER: _ClassVar[int]
    UP_FIELD_NUMBER: _ClassVar[int]
    DOWN_FIELD_NUMBER: _ClassVar[int]
    CREATIVITY_FIELD_NUMBER: _ClassVar[int]
    CONTROL_STRENGTH_FIELD_NUMBER: _ClassVar[int]
    FIDELITY_FIELD_NUMBER: _ClassVar[int]
    ASPECT_RATIO_FIELD_NUMBER: _ClassVar[int]
    COMPOSITION_FIDELITY_FIELD_NUMBER: _ClassVar[int]
    STYLE_STRENGTH_FIELD_NUMBER: _ClassVar[int]
    CHANGE_STRENGTH_FIELD_NUMBER: _ClassVar[int]
    STRENGTH_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_STRENGTH_FIELD_NUMBER: _ClassVar[int]
    MASK_PROMPT_FIELD_NUMBER: _ClassVar[int]
    OUTPAINTING_MODE_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    negative_prompt: str
    seed: int
    style_preset: str
    grow_mask: int
    search_prompt: str
    select_prompt: str
    left: int
    right: int
    up: int
    down: int
    creativity: float
    control_strength: float
    fidelity: float
    aspect_ratio: str
    composition_fidelity: float
    style_strength: float
    change_strength: float
    strength: float
    similarity_strength: float
    mask_prompt: str
    outpainting_mode: str
    task_type: str
    def __init__(self, negative_prompt: _Optional[str] = ..., seed: _Optional[int] = ..., style_preset: _Optional[str] = ..., grow_mask: _Optional[int] = ..., search_prompt: _Optional[str] = ..., select_prompt: _Optional[str] = ..., left: _Optional[int] = ..., right: _Optional[int] = ..., up: _Optional[int] = ..., down: _Optional[int] = ..., creativity: _Optional[float] = ..., control_strength: _Optional[float] = ..., fidelity: _Optional[float] = ..., aspect_ratio: _Optional[str] = ..., composition_fidelity: _Optional[float] = ..., style_strength: _Optional[float] = ..., change_strength: _Optional[float] = ..., strength: _Optional[float] = ..., similarity_strength: _Optional[float] = ..., mask_prompt: _Optional[str] = ..., outpainting_mode: _Optional[str] = ..., task_type: _Optional[str] = ...) -> None: ...

class ImageEditRequest(_message.Message):
    __slots__ = ("prompt", "model", "image", "mask", "n", "size", "quality", "response_format", "output_format", "output_compression", "stream", "partial_images", "background", "input_fidelity", "user", "safety_identifier", "variation", "options", "extra_params", "bedrock")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_COMPRESSION_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_IMAGES_FIELD_NUMBER: _ClassVar[int]
    BACKGROUND_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIDELITY_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    SAFETY_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    VARIATION_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_PARAMS_FIELD_NUMBER: _ClassVar[int]
    BEDROCK_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    model: str
    image: _containers.RepeatedScalarFieldContainer[bytes]
    mask: bytes
    n: int
    size: str
    quality: str
    response_format: str
    output_format: str
    output_compression: int
    stream: bool
    partial_images: int
    background: str
    input_fidelity: str
    user: str
    safety_identifier: str
    variation: bool
    options: EditOptions
    extra_params: _struct_pb2.Struct
    bedrock: BedrockOptions
    def __init__(self, prompt: _Optional[str] = ..., model: _Optional[str] = ..., image: _Optional[_Iterable[bytes]] = ..., mask: _Optional[bytes] = ..., n: _Optional[int] = ..., size: _Optional[str] = ..., quality: _Optional[str] = ..., response_format: _Optional[str] = ..., output_format: _Optional[str] = ..., output_compression: _Optional[int] = ..., stream: _Optional[bool] = ..., partial_images: _Optional[int] = ..., background: _Optional[str] = ..., input_fidelity: _Optional[str] = ..., user: _Optional[str] = ..., safety_identifier: _Optional[str] = ..., variation: _Optional[bool] = ..., options: _Optional[_Union[EditOptions, _Mapping]] = ..., extra_params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., bedrock: _Optional[_Union[BedrockOptions, _Mapping]] = ...) -> None: ...
