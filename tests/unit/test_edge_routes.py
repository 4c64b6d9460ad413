"""The Lua filter's table of URLs and methods (405s) follows the proto's http rules."""

from __future__ import annotations

import re

from google.api import annotations_pb2

from gateway.render import EDGE_LUA
from imagegen.v1 import images_pb2 as pb

# OpenAI's edit and variation URLs: listed at the edge before the proto binds them.
EDIT_ROUTES = (r"^/v1/images/edits$", r"^/v1/images/variations$")
_ROUTE = re.compile(r'\{ "(\^[^"]+\$)", "([A-Z, ]+)" \}')


def lua_routes() -> list[tuple[re.Pattern[str], set[str]]]:
    routes = _ROUTE.findall(EDGE_LUA.read_text())
    assert routes
    return [
        (re.compile(lua.replace("%.", r"\.")), set(methods.split(", "))) for lua, methods in routes
    ]


def proto_rules() -> list[tuple[str, str]]:
    rules: list[tuple[str, str]] = []
    for service in pb.DESCRIPTOR.services_by_name.values():
        for method in service.methods:
            rule = method.GetOptions().Extensions[annotations_pb2.http]
            for each in (rule, *rule.additional_bindings):
                verb = each.WhichOneof("pattern")
                if verb:
                    path = getattr(each, verb)
                    rules.append((verb.upper(), re.sub(r"\{[^}]*\}", "x", path)))
    return rules


def allowed(method: str, path: str) -> bool:
    return any(pattern.search(path) and method in methods for pattern, methods in lua_routes())


def test_every_http_rule_of_the_proto_is_allowed_at_the_edge() -> None:
    rules = proto_rules()
    assert ("POST", "/v1/images/generations") in rules
    for method, path in rules:
        assert allowed(method, path), (method, path)


def test_every_edge_route_is_a_proto_rule_or_the_openapi_document() -> None:
    served = {(method, path) for method, path in proto_rules()} | {("GET", "/openapi.json")}
    for pattern, methods in lua_routes():
        for method in methods:
            assert (
                any(verb == method and pattern.search(path) for verb, path in served)
                or pattern.pattern in EDIT_ROUTES
            ), (
                pattern.pattern,
                method,
            )
