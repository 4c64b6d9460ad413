"""InvokeModel from botocore's own parts, without its per-call machinery.

aiobotocore spends about 0.9 ms of CPU on each InvokeModel call, most of it in work that
gives the same result every time: a dozen event hooks, endpoint resolution, parameter
validation, serialisation and signer selection (py-spy; docs/performance.md). For a small
image that is more than everything else the service does. The call itself never changes
shape: one POST of the body as given, with a few headers. So for each client this:

- serialises a model's request once with botocore's serializer (URL and headers, the
  X-Amzn-Bedrock-* options among them) and reuses it;
- signs every attempt with the client's own signer (SigV4 with the client's credentials,
  refreshed as botocore refreshes them);
- sends it on the client's own HTTP session (its connection pool, timeouts, proxies, TLS,
  and its translation of aiohttp failures into botocore's exceptions);
- parses an error answer with botocore's parser and raises the client's modelled exception;
- asks the client's retry handlers (standard mode: attempts, backoff, retry quota) whether
  to retry, through the same events botocore's endpoint emits.

A client that does not sign with SigV4 (a Bedrock API key: `bearer`) takes aiobotocore's
whole path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiobotocore.parsers import AioResponseParserFactory
from botocore.awsrequest import AWSRequest, prepare_request_dict
from botocore.hooks import first_non_none_response
from botocore.serialize import create_serializer

OPERATION = "InvokeModel"
JSON = "application/json"
TEMPLATES_KEPT = 256  # (model, options) pairs; the options come from request headers


@dataclass(frozen=True)
class Answer:
    body: bytes
    request_id: str


class InvokeModel:
    """`await InvokeModel(client)(model_id, body, options)`: Bedrock's answer body and request
    id, or the exception aiobotocore's `invoke_model` raises for the same call."""

    def __init__(self, client: Any) -> None:
        self._client = client
        service = client.meta.service_model
        self._operation = service.operation_model(OPERATION)
        self._events = client.meta.events
        self._event_suffix = f"{service.service_id.hyphenize()}.{OPERATION}"
        self._signing_name = service.signing_name
        self._serializer = create_serializer(service.resolved_protocol, include_validation=True)
        self._parser = AioResponseParserFactory().create_parser(service.resolved_protocol)
        # botocore keeps these on private attributes; aiobotocore is pinned in pyproject.toml
        # and tests/unit/test_invoke_model.py compares this path with aiobotocore's.
        self._signer = client._request_signer
        self._http = client._endpoint.http_session
        self._sigv4 = self._signer.signature_version == "v4"
        self._templates: dict[tuple[str, ...], tuple[str, dict[str, str]]] = {}

    async def __call__(self, model_id: str, body: bytes, options: Mapping[str, str]) -> Answer:
        if not self._sigv4:
            return await self._through_aiobotocore(model_id, body, options)
        url, headers = self._template(model_id, options)
        context: dict[str, Any] = {"client_region": self._client.meta.region_name}
        attempts = 1
        while True:
            response, error = await self._attempt(url, headers, body)
            delay = await self._retry_delay(attempts, response, error, context)
            if delay is None:
                break
            await asyncio.sleep(delay)
            attempts += 1
        if error is not None:
            raise error
        assert response is not None
        http, parsed = response
        parsed["ResponseMetadata"]["RetryAttempts"] = attempts - 1
        await self._events.emit(
            f"after-call.{self._event_suffix}",
            http_response=http,
            parsed=parsed,
            model=self._operation,
            context=context,
        )
        if http.status_code >= 300:
            code = parsed.get("Error", {}).get("Code")
            raise self._client.exceptions.from_code(code)(parsed, OPERATION)
        return Answer(await http.content, parsed["ResponseMetadata"]["RequestId"])

    def _template(self, model_id: str, options: Mapping[str, str]) -> tuple[str, dict[str, str]]:
        """The URL and headers botocore serialises for this model and these options."""
        key = (model_id, *(f"{name}={value}" for name, value in sorted(options.items())))
        if (found := self._templates.get(key)) is None:
            params = {"modelId": model_id, "body": b"", "contentType": JSON, "accept": JSON}
            request = self._serializer.serialize_to_request(params | dict(options), self._operation)
            prepare_request_dict(
                request,
                endpoint_url=self._client.meta.endpoint_url,
                user_agent=self._client.meta.config.user_agent,
            )
            if len(self._templates) >= TEMPLATES_KEPT:
                self._templates.clear()
            found = self._templates[key] = (request["url"], dict(request["headers"]))
        return found

    async def _attempt(
        self, url: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[tuple[Any, dict[str, Any]] | None, Exception | None]:
        """One signed request: ((HTTP response, parsed answer), None) or (None, exception),
        as botocore's endpoint has it."""
        request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
        auth = await self._signer.get_auth_instance(
            self._signing_name, self._client.meta.region_name, "v4"
        )
        auth.add_auth(request)
        prepared = request.prepare()
        prepared.stream_output = False  # the whole answer is read inside the session's errors
        try:
            http = await self._http.send(prepared)
            return (http, await self._parsed(http)), None
        except Exception as exc:  # as botocore's endpoint: the retry handlers judge it
            return None, exc

    async def _parsed(self, http: Any) -> dict[str, Any]:
        metadata = {
            "RequestId": http.headers.get("x-amzn-requestid", ""),
            "HTTPStatusCode": http.status_code,
            "HTTPHeaders": http.headers,
        }
        if http.status_code < 300:
            return {"ResponseMetadata": metadata}
        answer = {
            "headers": http.headers,
            "status_code": http.status_code,
            "body": await http.content,
            "context": {"operation_name": OPERATION},
        }
        parsed: dict[str, Any] = await self._parser.parse(answer, self._operation.output_shape)
        code = parsed.get("Error", {}).get("Code")
        error_shape = self._operation.service_model.shape_for_error_code(code) if code else None
        if error_shape is not None:
            parsed.update(await self._parser.parse(answer, error_shape))
        return parsed

    async def _retry_delay(
        self,
        attempts: int,
        response: tuple[Any, dict[str, Any]] | None,
        error: Exception | None,
        context: dict[str, Any],
    ) -> float | None:
        """Seconds to wait before the next attempt, or None: the client's retry handlers."""
        responses = await self._events.emit(
            f"needs-retry.{self._event_suffix}",
            response=response,
            endpoint=None,
            operation=self._operation,
            attempts=attempts,
            caught_exception=error,
            request_dict={"context": context},
        )
        delay = first_non_none_response(responses)
        return None if delay is None or delay is False else float(delay)

    async def _through_aiobotocore(
        self, model_id: str, body: bytes, options: Mapping[str, str]
    ) -> Answer:
        response = await self._client.invoke_model(
            modelId=model_id, body=body, contentType=JSON, accept=JSON, **options
        )
        async with response["body"] as stream:
            return Answer(await stream.read(), response["ResponseMetadata"].get("RequestId", ""))
