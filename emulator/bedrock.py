"""The Bedrock emulator's HTTP server.

One loopback server answers both services boto3 needs, so AWS_ENDPOINT_URL_BEDROCK_RUNTIME
and AWS_ENDPOINT_URL_BEDROCK can point at the same URL:
- bedrock-runtime: ``POST /model/{modelId}/invoke`` (and the stream path, which image
  models refuse);
- bedrock: ``GET /foundation-models`` and ``GET /foundation-models/{modelIdentifier}``;
- the emulator's own control endpoints under ``/_emulator/`` (see the package docstring).

The server is the stdlib ThreadingHTTPServer: one thread per connection, HTTP/1.1
keep-alive as boto3's connection pool expects, and TCP_NODELAY so that a response whose
headers and body go out as two writes is not held back by Nagle's algorithm (about 40 ms
per call otherwise).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import ParamSpec, overload
from urllib.parse import parse_qs, unquote, urlsplit

from emulator.edits import EditJob, render_edit, validate_edit
from emulator.faults import (
    FRONT_DOOR_ERRORS,
    MODEL_ERRORS,
    FaultPlan,
    attempt_number,
    error_for,
    parse_markers,
    rule_from_json,
)
from emulator.models import (
    LIFECYCLE_MODES,
    MODELS,
    BedrockError,
    CanvasRules,
    Generation,
    ImageModel,
    catalog_model,
    prompt_texts,
    resolve_model,
    strip_guardrail_config,
    validate_body,
    validate_invoke_headers,
    validation_error,
)
from emulator.render import render

log = logging.getLogger(__name__)
P = ParamSpec("P")

MAX_BODY_BYTES = 25_000_000  # InvokeModel's modeled body limit
_SLOW_BODY_STEP_S = 0.1  # a slow body goes out in pieces about this far apart
_CREDENTIAL_REGION = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")
_PROVIDER = re.compile(r"[A-Za-z0-9- ]{1,63}")

# Wording of the real content filter for Nova Canvas and Titan (clients match on
# "blocked by our content filters").
BLOCKED_PROMPT = "This request has been blocked by our content filters."
BLOCKED_OUTPUT = (
    "This request has been blocked by our content filters because the generated image(s) "
    "may conflict with our AUP or AWS Responsible AI Policy."
)
# Stability reports filtering and model failures in an HTTP 200 body instead.
_STABILITY_FINISH_REASONS = {
    "filter": "Filter reason: prompt",
    "filter_output": "Filter reason: output image",
    "inference_error": "Inference error",
}


# --------------------------------------------------------------------------- call record


@dataclass
class Call:
    """One received InvokeModel call (also InvokeModelWithResponseStream)."""

    model_id: str  # URL-decoded, as sent
    operation: str
    region: str  # the region the call was addressed to (its SigV4 credential scope)
    headers: dict[str, str]  # lower-case names
    body: dict[str, object] | None  # parsed JSON object, None if the body was not one
    attempt: int  # from amz-sdk-request
    started_at: float  # time.monotonic()
    finished_at: float | None = None  # None while in flight
    status: int | None = None  # None if the emulator stopped before answering
    error_code: str | None = None

    def to_json(self) -> dict[str, object]:
        return asdict(self)


class CallLog(Sequence[Call]):
    """A thread-safe, append-only (until cleared) list of calls."""

    def __init__(self) -> None:
        self._calls: list[Call] = []
        self._lock = threading.Lock()

    def append(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()

    def snapshot(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    @overload
    def __getitem__(self, index: int) -> Call: ...
    @overload
    def __getitem__(self, index: slice) -> list[Call]: ...
    def __getitem__(self, index: int | slice) -> Call | list[Call]:
        with self._lock:
            return self._calls[index]

    def __len__(self) -> int:
        with self._lock:
            return len(self._calls)

    def __iter__(self) -> Iterator[Call]:
        return iter(self.snapshot())


# --------------------------------------------------------------------------- the emulator


class BedrockEmulator:
    """A local Bedrock (runtime and model catalog) on a background thread.

    ``latency_s`` delays every InvokeModel call, on top of injected latency faults.
    ``canned_image_b64``, when set, is the base64 picture of every generation (not of edits):
    `make bench` chooses its payload size (a 4 KB or a 2 MB PNG) and keeps drawing off the clock.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_s: float = 0.0,
        region: str = "us-east-1",
        lifecycle: str = "product-page",
    ) -> None:
        if lifecycle not in LIFECYCLE_MODES:
            raise ValueError(
                f"EMULATOR_LIFECYCLE must be one of {', '.join(LIFECYCLE_MODES)}, got {lifecycle!r}"
            )
        self.lifecycle = lifecycle  # "aws-2026-12": answer as AWS does today
        self.host = host
        self.port = port  # the bound port once started (port 0 picks a free one)
        self.latency_s = latency_s
        self.region = region  # for ARNs when a request carries no SigV4 credential scope
        self.canned_image_b64: str | None = None
        self.calls = CallLog()
        self.faults = FaultPlan()
        self._in_flight = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return f"http://{self.host}:{self.port}"

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def start(self) -> BedrockEmulator:
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        self._stopping.clear()
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            # A short poll interval lets stop() return promptly.
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"bedrock-emulator:{self.port}",
            daemon=True,
        )
        self._thread.start()
        log.info("Bedrock emulator listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving; calls still sleeping or writing are cut off (connection closed)."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()  # wakes every sleeping call at once
        server.shutdown()
        server.close_connections()  # idle keep-alive connections would otherwise linger
        server.server_close()  # joins the connection threads, which now end quickly
        thread.join()
        self._server = self._thread = None

    def reset(self) -> None:
        """Forget recorded calls and injected faults."""
        self.calls.clear()
        self.faults.clear()

    def __enter__(self) -> BedrockEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _sleep(self, seconds: float) -> None:
        # Event.wait returns as soon as stop() sets the event, so no sleep outlives the server.
        if seconds > 0 and self._stopping.wait(seconds):
            raise _Stopped

    def _begin(self, call: Call) -> None:
        self.calls.append(call)
        with self._lock:
            self._in_flight += 1

    def _end(self, call: Call) -> None:
        if call.finished_at is None:  # ended once, before its last byte or on failure
            call.finished_at = time.monotonic()
            with self._lock:
                self._in_flight -= 1


class _Stopped(Exception):
    """The emulator is stopping: abandon the call without an answer."""


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    slow_body_s: float | None = None  # write the body in pieces over this many seconds
    error_code: str | None = None


def json_response(status: int, payload: object, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(payload).encode(), headers or {})


def error_response(error: BedrockError) -> Response:
    """Bedrock's error wire format: boto3 reads the code from x-amzn-ErrorType."""
    return Response(
        error.status,
        json.dumps({"message": error.message, **error.extra}).encode(),
        {"x-amzn-ErrorType": error.code},
        error_code=error.code,
    )


# --------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Benchmarks open many connections at once; the default backlog of 5 drops SYNs,
    # which clients see as one-second connect stalls.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], emulator: BedrockEmulator) -> None:
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: object
    ) -> None:
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket | tuple[bytes, socket.socket]) -> None:
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: object, client_address: object) -> None:
        # A client dropping a keep-alive connection (urllib3 does when a response body is
        # left unread) is routine, not worth a traceback on stderr.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            log.exception("error while serving %s", client_address)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the client


class _BadRequest(Exception):
    """The request cannot be read; answer and close the connection."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as boto3's pool expects
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _dispatch(self, method: str) -> None:
        emulator = self.server.emulator
        url = urlsplit(self.path)
        # Split before decoding: an ARN model id arrives with its '/' encoded as %2F.
        parts = [unquote(part) for part in url.path.split("/")[1:]]
        try:
            raw_body = self._read_body()
        except _BadRequest as exc:
            self.close_connection = True  # the unread body would corrupt the next request
            self._send(error_response(validation_error(str(exc))))
            return
        match method, parts:
            case "POST", ["model", model_id, "invoke" | "invoke-with-response-stream" as op]:
                self._invoke(model_id, op != "invoke", raw_body)
            case "GET", ["foundation-models"]:
                self._send(
                    _answer(list_foundation_models, url.query, self._region(), emulator.lifecycle)
                )
            case "GET", ["foundation-models", identifier]:
                self._send(_answer(get_foundation_model, identifier, self._region()))
            case _, ["_emulator", *rest]:
                self._send(_answer(control, emulator, method, rest, raw_body))
            case _:
                error = BedrockError(404, "UnknownOperationException", f"{method} {url.path}")
                self._send(error_response(error))

    def _invoke(self, model_id: str, stream: bool, raw_body: bytes) -> None:
        emulator = self.server.emulator
        headers = {name.lower(): value for name, value in self.headers.items()}
        body = _parse_json(raw_body)
        call = Call(
            model_id=model_id,
            operation="InvokeModelWithResponseStream" if stream else "InvokeModel",
            region=self._region(),
            headers=headers,
            body=body if isinstance(body, dict) else None,
            attempt=attempt_number(headers.get("amz-sdk-request")),
            started_at=time.monotonic(),
        )
        emulator._begin(call)
        try:
            response = _answer(invoke, emulator, call, body, stream)
            call.status, call.error_code = response.status, response.error_code
            # End the call before its last byte goes out, so that a client holding the whole
            # response always finds it finished in the record.
            self._send(response, before_last_write=lambda: emulator._end(call))
        except _Stopped:
            call.status = call.error_code = None
            self.close_connection = True
        finally:
            emulator._end(call)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            raise _BadRequest("Invalid Content-Length") from None
        if not 0 <= length <= MAX_BODY_BYTES:
            raise _BadRequest(f"The request body must be at most {MAX_BODY_BYTES} bytes.")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            try:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            except ValueError:
                raise _BadRequest("Invalid chunked encoding") from None
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # skip trailers
                return bytes(body)
            if len(body) + size > MAX_BODY_BYTES:
                raise _BadRequest(f"The request body must be at most {MAX_BODY_BYTES} bytes.")
            body += self.rfile.read(size)
            self.rfile.readline()  # the CRLF after each chunk

    def _region(self) -> str:
        match = _CREDENTIAL_REGION.search(self.headers.get("Authorization", ""))
        return match.group(1) if match else self.server.emulator.region

    def _send(
        self, response: Response, before_last_write: Callable[[], None] = lambda: None
    ) -> None:
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(response.body)))
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            pieces = _pieces(response.body, response.slow_body_s)
            pause = (response.slow_body_s or 0.0) / len(pieces)
            for index, piece in enumerate(pieces):
                if index:
                    self.server.emulator._sleep(pause)
                if index == len(pieces) - 1:
                    before_last_write()
                self.wfile.write(piece)
        except OSError:
            # The client went away, or stop() shut the socket: nobody is left to answer.
            self.close_connection = True


def _pieces(body: bytes, seconds: float | None) -> list[bytes]:
    """The body in one piece, or for a slow body in pieces about _SLOW_BODY_STEP_S apart."""
    if not seconds:
        return [body]
    count = max(2, min(len(body), round(seconds / _SLOW_BODY_STEP_S)))
    step = -(-len(body) // count)  # ceiling division
    return [body[start : start + step] for start in range(0, len(body), step)]


# --------------------------------------------------------------------------- InvokeModel


class _NotJson:
    """Marker for a body that is not JSON."""


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _answer(handler: Callable[P, Response], *args: P.args, **kwargs: P.kwargs) -> Response:
    """Run a request handler; Bedrock errors (and emulator bugs) become error responses."""
    try:
        return handler(*args, **kwargs)
    except BedrockError as exc:
        return error_response(exc)
    except _Stopped:
        raise
    except Exception:
        log.exception("the emulator failed to answer a request")
        return error_response(BedrockError(500, "InternalServerException", "Emulator failure."))


def _parse_json(raw: bytes) -> object:
    try:
        # Python accepts NaN and Infinity; JSON (and Bedrock) does not.
        return json.loads(raw, parse_constant=_reject_constant)
    except ValueError:
        return _NotJson()


def invoke(emulator: BedrockEmulator, call: Call, body: object, stream: bool) -> Response:
    """Answer one InvokeModel call, refusing it in the order Bedrock's layers would.

    `body` is the result of _parse_json: a JSON value, or _NotJson.
    """
    model = resolve_model(call.model_id)
    if model is None:
        raise BedrockError(
            404,
            "ResourceNotFoundException",
            "Could not resolve the foundation model from the provided model identifier.",
        )
    if emulator.lifecycle == "aws-2026-12":
        check_todays_aws(model, call.model_id, call.region)
    if stream:
        raise validation_error(
            f"The model {model.model_id} does not support InvokeModelWithResponseStream; "
            "use InvokeModel."
        )
    guardrail = validate_invoke_headers(call.headers)
    if isinstance(body, _NotJson):
        raise validation_error("Malformed input request, please reformat your input and try again.")
    body = strip_guardrail_config(body, guardrail)
    markers = [rule for text in prompt_texts(body) for rule in parse_markers(text)]
    decision = emulator.faults.decide({call.model_id, model.model_id}, call.attempt, markers)
    emulator._sleep(emulator.latency_s + decision.delay_s)
    if decision.failure in FRONT_DOOR_ERRORS:
        raise error_for(decision.failure, model.model_id)
    if model.profile_only and call.model_id == model.model_id:
        raise validation_error("The provided model identifier is invalid.")
    work: Generation | EditJob | None = validate_edit(model, body)
    if work is None:
        work = validate_body(model, body)
    if decision.failure in MODEL_ERRORS:
        raise error_for(decision.failure, model.model_id)
    canned = emulator.canned_image_b64 if isinstance(work, Generation) else None
    payload = _model_output(model, work, decision.failure, canned)
    headers = {
        "X-Amzn-Bedrock-Invocation-Latency": str(
            round((time.monotonic() - call.started_at) * 1000)
        ),
        "X-Amzn-Bedrock-PerformanceConfig-Latency": call.headers.get(
            "x-amzn-bedrock-performanceconfig-latency", "standard"
        ),
    }
    if tier := call.headers.get("x-amzn-bedrock-service-tier"):
        headers["X-Amzn-Bedrock-Service-Tier"] = tier
    response = json_response(200, payload, headers)
    response.slow_body_s = decision.slow_body_s
    return response


def check_todays_aws(model: ImageModel, named: str, region: str) -> None:
    """Refuse what Bedrock refuses today: retired models, a model outside its regions, an
    on-demand model named by a profile id."""
    if model.lifecycle.retired:
        raise BedrockError(
            404,
            "ResourceNotFoundException",
            "This model version has reached the end of its life. Please refer to the AWS "
            "documentation for more details.",
        )
    by_profile = named.startswith(("us.", "eu.", "apac.")) or ":inference-profile/" in named
    if region not in model.regions or (by_profile and not model.profile_only):
        raise validation_error("The provided model identifier is invalid.")


def _model_output(
    model: ImageModel, work: Generation | EditJob, outcome: str | None, canned_b64: str | None
) -> object:
    """The success body of the model's family, or its in-band filter/inference outcome."""
    if isinstance(model.rules, CanvasRules):
        if outcome == "filter":
            raise validation_error(BLOCKED_PROMPT)
        if outcome == "filter_output":
            raise validation_error(BLOCKED_OUTPUT)
        if outcome == "inference_error":
            return {"images": [], "error": "The model could not generate an image."}
        # Without a seed, each call is distinct; each image of a call gets its own seed.
        seed = secrets.randbelow(model.rules.seed_max) if work.seed is None else work.seed
        images = [canned_b64 or _b64_image(work, seed + index) for index in range(work.count)]
        return {"images": images, "error": None}
    seed = work.seed or 1 + secrets.randbelow(model.rules.seed_max)
    if outcome is not None:
        return {
            "seeds": [seed],
            "finish_reasons": [_STABILITY_FINISH_REASONS[outcome]],
            "images": [],
        }
    image = canned_b64 or _b64_image(work, seed)
    return {"seeds": [seed], "finish_reasons": [None], "images": [image]}


def _b64_image(work: Generation | EditJob, seed: int) -> str:
    if isinstance(work, EditJob):
        return render_edit(work, seed)
    data = render(work.width, work.height, work.prompt, seed, work.fmt)
    return base64.b64encode(data).decode()


# --------------------------------------------------------------------------- model catalog

_LIST_FILTERS = {
    "byOutputModality": ("TEXT", "IMAGE", "EMBEDDING"),
    "byInferenceType": ("ON_DEMAND", "PROVISIONED"),
    "byCustomizationType": ("FINE_TUNING", "CONTINUED_PRE_TRAINING", "DISTILLATION"),
}


def model_summary(model: ImageModel, region: str) -> dict[str, object]:
    lifecycle: dict[str, object] = {"status": model.lifecycle.status}
    if model.lifecycle.legacy_since:
        lifecycle["legacyTime"] = model.lifecycle.legacy_since
    if model.lifecycle.end_of_life:
        lifecycle["endOfLifeTime"] = model.lifecycle.end_of_life
    return {
        # Foundation-model ARNs have an empty account field.
        "modelArn": f"arn:aws:bedrock:{region}::foundation-model/{model.model_id}",
        "modelId": model.model_id,
        "modelName": model.name,
        "providerName": model.provider,
        "inputModalities": list(model.input_modalities),
        "outputModalities": ["IMAGE"],
        "responseStreamingSupported": False,
        "customizationsSupported": list(model.customizations),
        "inferenceTypesSupported": ["INFERENCE_PROFILE" if model.profile_only else "ON_DEMAND"],
        "modelLifecycle": lifecycle,
    }


def listed_in(model: ImageModel, region: str, lifecycle_mode: str) -> bool:
    """Every model everywhere by default; in the aws-2026-12 mode, where AWS lists it."""
    if lifecycle_mode != "aws-2026-12":
        return True
    return model.lifecycle.listed and region in model.regions


def list_foundation_models(query: str, region: str, lifecycle_mode: str) -> Response:
    params = {name: values[-1] for name, values in parse_qs(query, keep_blank_values=True).items()}
    for name, allowed in _LIST_FILTERS.items():
        if name in params and params[name] not in allowed:
            raise validation_error(
                f"1 validation error detected: Value '{params[name]}' at '{name}' failed to "
                f"satisfy constraint: Member must satisfy enum value set: [{', '.join(allowed)}]"
            )
    provider = params.get("byProvider")
    if provider is not None and not _PROVIDER.fullmatch(provider):
        raise validation_error(
            f"1 validation error detected: Value '{provider}' at 'byProvider' failed to "
            "satisfy constraint: Member must satisfy regular expression pattern"
        )
    customization = params.get("byCustomizationType")
    summaries = [
        model_summary(model, region)
        for model in MODELS.values()
        # Every emulated model outputs IMAGE on demand.
        if listed_in(model, region, lifecycle_mode)
        and params.get("byOutputModality") in (None, "IMAGE")
        and params.get("byInferenceType") in (None, *(() if model.profile_only else ("ON_DEMAND",)))
        and (customization is None or customization in model.customizations)
        and (provider is None or provider.lower() == model.provider.lower())
    ]
    return json_response(200, {"modelSummaries": summaries})


def get_foundation_model(identifier: str, region: str) -> Response:
    model = catalog_model(identifier)
    if model is None:
        raise BedrockError(
            404, "ResourceNotFoundException", f"The model {identifier} does not exist."
        )
    return json_response(200, {"modelDetails": model_summary(model, region)})


# --------------------------------------------------------------------------- control endpoints


def control(emulator: BedrockEmulator, method: str, path: list[str], raw_body: bytes) -> Response:
    """``/_emulator/...``: fault rules, the call record and reset, for other processes."""
    match method, path:
        case "GET", ["faults"]:
            return json_response(200, {"rules": [r.to_json() for r in emulator.faults.rules()]})
        case "POST", ["faults"]:
            try:
                rule = emulator.faults.add(rule_from_json(_parse_json(raw_body)))
            except ValueError as exc:
                raise validation_error(f"Bad fault rule: {exc}") from None
            return json_response(200, {"rule": rule.to_json()})
        case "DELETE", ["faults"]:
            emulator.faults.clear()
            return json_response(200, {"rules": []})
        case "GET", ["calls"]:
            calls = [call.to_json() for call in emulator.calls.snapshot()]
            return json_response(200, {"calls": calls, "in_flight": emulator.in_flight})
        case "POST", ["reset"]:
            emulator.reset()
            return json_response(200, {})
    raise BedrockError(404, "UnknownOperationException", f"{method} /_emulator/{'/'.join(path)}")
