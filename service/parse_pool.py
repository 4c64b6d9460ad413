"""Large request bodies are parsed in worker processes, so the event loop never waits on them.

`json.loads`, the text checks, multipart splitting and base64 decoding hold the GIL: run in a
thread they still stop the event loop for as long as they take (0.3 to 1.7 s for one 64 MiB
body, seconds for four at once; docs/edge.md has the figures). A body larger than
`PARSE_INLINE_BYTES` is therefore parsed by one of `PARSE_WORKERS` processes. The body goes to
the worker as raw bytes over a pipe, written from a thread (the write releases the GIL; a
pickled copy would hold it for 50 ms per 64 MiB), and what comes back is the parse function's
result (the typed request: protobuf messages pickle as their serialized bytes) or the
`ApiError` it raised. A generation request is also checked in the worker as the pipeline will
check it (`Checks`: the same settings), so a large body the pipeline refuses (a prompt of
megabytes, extras no model takes) comes back as its error alone instead of megabytes of
parsed request. Workers run at a lower CPU priority, so on a busy machine the server's
own requests come first. Smaller bodies are parsed where they are: a round trip to a worker
would cost more than their parse.

Memory stays bounded: each worker parses one body at a time, and at most
`WAITING_BYTES_PER_WORKER` of large bodies (eight of the largest) per worker are parsing or
waiting; beyond that a 503 asks the client to retry. A worker that dies (killed, out of
memory) fails its parse with a 503 and is replaced by a fresh one for the next body.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnProcess
from types import MappingProxyType
from typing import Any, Concatenate, ParamSpec, TypeVar

from imagegen.v1 import images_pb2 as pb
from service import openai_http
from service.errors import ApiError
from service.models import aliases
from service.pipeline import Pipeline

log = logging.getLogger(__name__)

# Bodies up to this size are parsed on the event loop. The slowest shape is thousands of tiny
# values (each becomes a protobuf Struct value): about 1 ms per KiB, so at most ~10 ms here,
# while a round trip to a worker costs about 1 ms. Ordinary bodies (a prompt of a few
# thousand characters) stay below it.
PARSE_INLINE_BYTES = 8 * 1024
# Bytes of large bodies, per worker, that may be parsing or waiting for a worker; a body
# beyond that gets a 503 (one body is always admitted, whatever its size).
WAITING_BYTES_PER_WORKER = 8 * 64 * 1024 * 1024
# Workers yield the CPU to the server process (niceness added to theirs).
WORKER_NICENESS = 10

P = ParamSpec("P")
T = TypeVar("T")
Parse = Callable[Concatenate[bytes, P], T]


def busy() -> ApiError:
    return _retry_shortly(
        "The server is reading too many large request bodies at once; retry shortly.",
        "server_busy",
    )


def worker_lost() -> ApiError:
    return _retry_shortly(
        "The worker reading this request body stopped before it finished; retry the request.",
        "parse_worker_lost",
    )


def _retry_shortly(message: str, code: str) -> ApiError:
    return ApiError(503, message, code=code, headers={"retry-after": "1"})


@dataclass(frozen=True)
class Checks:
    """The settings the pipeline checks a request with, as plain data a worker can take."""

    has_bucket: bool = False
    default_model_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    model_aliases: dict[str, dict[str, str]] | None = None  # endpoint -> model; None: built in

    def pipeline(self) -> Pipeline:
        """A pipeline for checking requests only: it has no Bedrock and no bucket to call."""
        if self.model_aliases is not None:
            aliases.use(aliases.parse_aliases(self.model_aliases))
        defaults = {model: MappingProxyType(params)
                    for model, params in self.default_model_params.items()}  # fmt: skip
        bucket = _CheckingOnly() if self.has_bucket else None
        return Pipeline(_CheckingOnly(), bucket, MappingProxyType(defaults))


class _CheckingOnly:
    """Stands in for Bedrock and the bucket in a worker's pipeline, which only checks."""

    async def invoke(
        self, model: str, body: Mapping[str, Any], options: Mapping[str, str]
    ) -> dict[str, Any]:
        raise RuntimeError("a parse worker does not call Bedrock")

    async def put(self, data: bytes, output_format: str) -> str:
        raise RuntimeError("a parse worker does not store images")


# In a worker: the pipeline that checks generation requests (None in the server itself, whose
# servicers check every request anyway).
_checking: Pipeline | None = None


def generation_request(body: bytes, headers: Mapping[str, str]) -> pb.ImageGenerationRequest:
    """The typed request of a generation body (raises ApiError); in a worker also checked as
    the pipeline will check it, so that a request it refuses travels back as its error."""
    request = openai_http.parse_request(body, headers)
    if _checking is not None:
        _checking.prepare(request)
    return request


class WorkerLost(Exception):
    """The worker process went away during a parse."""


class _Worker:
    """One worker process and the pipe to it; used by one parse at a time."""

    def __init__(self, checks: Checks) -> None:
        # spawn: a forked copy of a process running gRPC's threads is not safe to use.
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process: SpawnProcess = context.Process(
            target=_serve, args=(child, checks), name="body-parser", daemon=True
        )
        self.process.start()
        child.close()

    def call(self, function: Callable[..., Any], body: bytes, args: tuple[Any, ...]) -> Any:
        """Blocking (run it in a thread): the parse's result, or raise what it raised."""
        try:
            self.conn.send((function, args))
            self.conn.send_bytes(body)
            outcome, value = self.conn.recv()
        except (EOFError, OSError):
            raise WorkerLost from None
        if outcome == "error":
            raise value
        if outcome == "crash":
            raise RuntimeError(f"body parse failed in the worker:\n{value}")
        return value

    def stop(self) -> None:
        self.conn.close()  # the worker sees the end of its pipe and exits
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


class BodyParser:
    """Runs a parse function on a request body: inline when the body is small, else in a
    worker process (`workers` = 0: in a thread, where processes cannot be started)."""

    def __init__(
        self,
        workers: int = 0,
        checks: Checks | None = None,
        bytes_per_worker: int = WAITING_BYTES_PER_WORKER,
    ) -> None:
        self._workers = workers
        self._checks = checks or Checks()
        self._max_admitted = workers * bytes_per_worker
        self._seats = asyncio.Semaphore(max(workers, 1))  # one per worker process
        self._idle: list[_Worker] = []  # started by start() or by a large body, then kept
        self._admitted = 0  # bytes of large bodies being parsed or waiting for a worker
        self._closed = False

    async def start(self) -> None:
        """Start the workers now, not with the first large body: a worker takes a few hundred
        milliseconds to start (a fresh interpreter importing the service), which that body's
        client would otherwise wait for. Each start holds a seat, so a body that arrives
        meanwhile waits for that worker rather than starting one more."""
        for _ in range(self._workers):
            async with self._seats:
                worker = await asyncio.to_thread(_Worker, self._checks)
                if self._closed:
                    await asyncio.to_thread(worker.stop)
                    return
                self._idle.append(worker)

    async def parse(
        self, function: Parse[P, T], body: bytes, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`function(body, *args)`; raises what it raises (an ApiError for a bad body)."""
        if len(body) <= PARSE_INLINE_BYTES:
            return function(body, *args, **kwargs)
        if self._workers == 0 or self._closed:
            return await asyncio.to_thread(function, body, *args, **kwargs)
        if kwargs:
            raise TypeError("a body parse in a worker takes positional arguments only")
        if self._admitted and self._admitted + len(body) > self._max_admitted:
            raise busy()
        self._admitted += len(body)
        try:
            await self._seats.acquire()
            seat = [self._idle.pop()] if self._idle else []
            call = asyncio.ensure_future(
                asyncio.to_thread(_call, seat, self._checks, function, body, args)
            )
            call.add_done_callback(lambda done: self._leave(seat, done))
            # Shielded: if the client goes away, the worker still finishes this parse (and
            # is handed back) before it takes the next one.
            return await asyncio.shield(call)
        except WorkerLost:
            raise worker_lost() from None
        finally:
            self._admitted -= len(body)

    def _leave(self, seat: list[_Worker], call: asyncio.Future[Any]) -> None:
        lost = not call.cancelled() and isinstance(call.exception(), WorkerLost)
        if seat and (lost or self._closed):
            if lost:
                log.error("a body parse worker stopped; the next large body starts a new one")
            threading.Thread(target=seat[0].stop, daemon=True).start()
        elif seat:
            self._idle.append(seat[0])
        self._seats.release()

    async def close(self) -> None:
        """Stop the idle workers; busy ones stop when their parse is done."""
        self._closed = True
        idle, self._idle = self._idle, []
        for worker in idle:
            await asyncio.to_thread(worker.stop)


def _call(
    seat: list[_Worker],
    checks: Checks,
    function: Callable[..., T],
    body: bytes,
    args: tuple[Any, ...],
) -> T:
    """In a thread: the parse in the seat's worker, started first if the seat is empty (or
    its worker died while it waited for work)."""
    if seat and not seat[0].process.is_alive():
        seat.pop().stop()
    if not seat:
        seat.append(_Worker(checks))
    result: T = seat[0].call(function, body, args)
    return result


def _serve(conn: Connection, checks: Checks) -> None:
    """A worker's life: parse bodies until the server closes the pipe (or goes away)."""
    global _checking
    _checking = checks.pipeline()
    # Ctrl-C reaches the whole process group: the server, not its workers, decides when
    # they stop. And a worker never outlives the server, even one killed outright.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(WORKER_NICENESS)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()
    while True:
        try:
            function, args = conn.recv()
            body = conn.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            outcome: tuple[str, Any] = ("ok", function(body, *args))
        except ApiError as exc:
            outcome = ("error", exc)
        except Exception:
            outcome = ("crash", traceback.format_exc())
        del body
        conn.send(outcome)


def _exit_with(sentinel: int) -> None:
    wait([sentinel])
    os._exit(1)
