"""gateway/openapi.json describes the HTTP face as the edge and the service implement it.

Fails on drift: an HTTP rule or edge route without its operation (or the reverse), a
generation or edit parameter the parsers accept but the document lacks (or the reverse), a
type, range or enum that differs from the validator's, an error status without the envelope.
"""

from __future__ import annotations

import json
import re
from typing import Any

from google.api import annotations_pb2
from google.protobuf.descriptor import FieldDescriptor
from openapi_spec_validator import OpenAPIV31SpecValidator

import service
from gateway.render import OPENAPI
from imagegen.v1 import images_pb2 as pb
from service import errors, openai_edits, openai_http, validation
from service.models.base import OUTPUT_FORMATS
from tests.unit.test_edge_routes import lua_routes

DOCUMENT: dict[str, Any] = json.loads(OPENAPI.read_text())
SCHEMAS: dict[str, Any] = DOCUMENT["components"]["schemas"]
JSON_TYPES = {str: "string", int: "integer", bool: "boolean"}
PROTO_TYPES = {
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BOOL: "boolean",
    FieldDescriptor.TYPE_INT32: "integer",
    FieldDescriptor.TYPE_UINT32: "integer",
    FieldDescriptor.TYPE_DOUBLE: "number",
}
# Answered by Envoy itself (gateway/envoy.yaml.tmpl, gateway/edge.lua) on any URL.
EDGE_STATUSES = {"400", "404", "405", "408", "413", "415", "431", "500", "502", "503", "504"}


def operations() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in DOCUMENT["paths"].items()
        for method in item
        if method in ("get", "post", "put", "delete", "patch")
    }


def proto_operations() -> set[tuple[str, str]]:
    found = set()
    for service_descriptor in pb.DESCRIPTOR.services_by_name.values():
        for method in service_descriptor.methods:
            rule = method.GetOptions().Extensions[annotations_pb2.http]
            for each in (rule, *rule.additional_bindings):
                verb = each.WhichOneof("pattern")
                if verb:  # {model=**} is the path parameter {model}
                    path = re.sub(r"\{(\w+)=[^}]*\}", r"{\1}", getattr(each, verb))
                    found.add((verb.upper(), path))
    return found


def test_the_document_is_valid_openapi_3_1() -> None:
    assert DOCUMENT["openapi"].startswith("3.1.")
    OpenAPIV31SpecValidator(DOCUMENT).validate()
    assert DOCUMENT["info"]["version"] == service.__version__


def test_every_http_rule_of_the_proto_is_documented() -> None:
    documented = operations()
    assert ("POST", "/v1/images/generations") in proto_operations()
    assert proto_operations() <= documented, proto_operations() - documented
    # Nothing else is documented but the document itself.
    assert documented - proto_operations() == {("GET", "/openapi.json")}


def test_every_edge_route_is_documented_and_the_reverse() -> None:
    edge = {(method, pattern.pattern) for pattern, methods in lua_routes() for method in methods}
    documented = set()
    for method, path in operations():
        concrete = path.replace("{model}", "amazon.nova-canvas-v1:0")
        [matched] = [p for p, ms in lua_routes() if p.search(concrete) and method in ms]
        documented.add((method, matched.pattern))
    assert documented == edge


def test_generation_parameters_are_the_ones_the_parser_accepts() -> None:
    schema = SCHEMAS["GenerationRequest"]
    properties = schema["properties"]
    assert set(properties) == set(openai_http._FIELDS)
    for name, kind in openai_http._FIELDS.items():
        assert properties[name]["type"] == JSON_TYPES[kind], name
    assert set(schema["required"]) == {"prompt", "model"}
    assert properties["n"]["maximum"] == validation.MAX_N
    assert properties["partial_images"]["maximum"] == validation.MAX_PARTIAL_IMAGES
    assert (
        properties["output_compression"]["minimum"],
        properties["output_compression"]["maximum"],
    ) == (1, 100)
    assert tuple(properties["response_format"]["enum"]) == validation.RESPONSE_FORMATS
    assert set(properties["output_format"]["enum"]) == set(OUTPUT_FORMATS) | {"jpg"}
    # Provider extras are any other field, except the OpenAI-only options that are refused.
    assert schema["additionalProperties"] is True
    for name in openai_http.OPENAI_ONLY:
        assert name in schema["description"]


def test_edit_parameters_are_the_ones_the_parser_accepts() -> None:
    fields = set(openai_edits.REQUEST_FIELDS) | set(openai_edits.OPTION_FIELDS)
    json_schema = SCHEMAS["EditJsonRequest"]["properties"]
    form_schema = SCHEMAS["EditFormRequest"]["properties"]
    assert set(json_schema) == fields | {"image", "images", "mask"}
    assert set(form_schema) == fields | set(openai_edits.IMAGE_FIELDS) | {"mask"}
    for message in (pb.ImageEditRequest, pb.EditOptions):
        for field in message.DESCRIPTOR.fields:
            if field.name in fields:
                assert json_schema[field.name]["type"] == PROTO_TYPES[field.type], field.name
                assert form_schema[field.name]["type"] == "string", field.name  # form text
                if field.type == FieldDescriptor.TYPE_DOUBLE:  # text that float() reads
                    number = re.compile(form_schema[field.name]["pattern"])
                    assert all(number.match(text) for text in ("0.5", " 1 ", ".25", "-2e-3"))
                    assert not any(number.match(text) for text in ("", "x", "1.2.3"))
    for path in ("/v1/images/edits", "/v1/images/variations"):
        content = DOCUMENT["paths"][path]["post"]["requestBody"]["content"]
        assert set(content) == {"multipart/form-data", "application/json"}


def test_streaming_answers_are_an_event_stream() -> None:
    for path in ("/v1/images/generations", "/v1/images/edits", "/v1/images/variations"):
        content = DOCUMENT["paths"][path]["post"]["responses"]["200"]["content"]
        assert set(content) == {openai_http.JSON, openai_http.SSE}


def test_every_error_answer_is_the_openai_envelope() -> None:
    envelope = SCHEMAS["ErrorBody"]
    body = errors.ApiError(400, "x", param="n").body()
    assert set(envelope["required"]) == set(envelope["properties"]) == set(body["error"])
    assert SCHEMAS["Error"]["required"] == list(body)
    responses = DOCUMENT["components"]["responses"]
    # Every status the service renders (a cancelled request has no client to read it).
    assert {str(s) for s in errors._STATUS_TABLE if s != 499} <= set(responses)
    for response in responses.values():
        assert response["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }
    for method, path in operations():
        answers = DOCUMENT["paths"][path][method.lower()]["responses"]
        assert EDGE_STATUSES <= set(answers), (method, path)
        for status, answer in answers.items():
            # MCP answers a body that is not JSON-RPC with a JSON-RPC error (the protocol's rule).
            if not status.startswith("2") and (method, path, status) != ("POST", "/mcp", "400"):
                assert answer == {"$ref": f"#/components/responses/{status}"}, (path, status)
        if DOCUMENT["paths"][path][method.lower()].get("security") != []:
            assert "401" in answers, (method, path)
