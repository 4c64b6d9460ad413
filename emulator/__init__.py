"""A local AWS Bedrock for image models: a real HTTP server that boto3 talks to unchanged.

Point boto3 at it with ``endpoint_url=`` or ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` and
``AWS_ENDPOINT_URL_BEDROCK`` (one URL serves both), any region and dummy credentials.
It serves InvokeModel for Nova Canvas, Titan Image Generator v1/v2 and the Stability
models with Bedrock's strict request validation, error wire format and response shapes;
ListFoundationModels / GetFoundationModel; and real PNG/JPEG/WebP pictures drawn from the
prompt and seed.

In process::

    from emulator.bedrock import BedrockEmulator

    with BedrockEmulator(port=0) as emu:  # port 0: a free port
        emu.url                # "http://127.0.0.1:<port>"
        emu.faults.set("amazon.nova-canvas-v1:0", kind="throttle", times=1)
        emu.calls              # received InvokeModel calls (model_id, body, headers, ...)
        emu.in_flight          # calls being processed now
        emu.reset()            # forget calls and faults

From a shell: ``python -m emulator --port 4010 [--s3-port 4566 --s3-bucket NAME]``
(``--latency-s`` or ``EMULATOR_LATENCY_S`` delays every call).

Fault kinds
    Front door (before the body is validated):
    ``throttle`` 429 ThrottlingException, ``not_ready`` 429 ModelNotReadyException,
    ``unavailable`` 503 ServiceUnavailableException, ``internal`` 500 InternalServerException,
    ``access_denied`` 403 AccessDeniedException, ``not_found`` 404 ResourceNotFoundException
    (an end-of-life model), ``quota`` 400 ServiceQuotaExceededException.
    Model (only for a valid request): ``model_timeout`` 408 ModelTimeoutException,
    ``model_error`` 424 ModelErrorException, ``filter`` (prompt blocked: 400
    ValidationException "This request has been blocked by our content filters." for
    Nova/Titan, HTTP 200 with ``finish_reasons: ["Filter reason: prompt"]`` and no images for
    Stability), ``filter_output`` (the same for the generated image), ``inference_error``
    (HTTP 200: Stability ``"Inference error"``, Nova/Titan a non-empty ``error`` field).
    Timing: ``latency`` (wait ``latency_s`` before answering), ``slow_body`` (send a success
    body in pieces over ``latency_s``, with Content-Length set); both default to 1 s.
    Any fault's ``latency_s`` is waited before its error. Waits end at once on ``stop()``.

Ways to inject them
    1. In process: ``emu.faults.set(model_id=None, kind=..., latency_s=0.0, times=None,
       attempts=None)``; ``model_id=None`` matches every model (a base id also matches its
       ARNs and profiles); ``times`` limits the firings; ``attempts=[1]`` fires only on those
       retry attempts, read from boto3's ``amz-sdk-request: attempt=N; max=M`` header.
       Setting a rule replaces the rule with the same model_id and kind.
       ``emu.faults.clear()`` removes all.
    2. Control endpoints, for other processes (JSON in and out):
       ``POST /_emulator/faults`` with the fields of ``set``;
       ``GET /_emulator/faults``; ``DELETE /_emulator/faults``;
       ``GET /_emulator/calls`` (the call record and ``in_flight``);
       ``POST /_emulator/reset``.
    3. Per request, by a marker anywhere in the prompt text (``text`` for Nova/Titan,
       ``prompt`` for Stability): ``[[fault:KIND]]``, ``[[fault:KIND=SECONDS]]`` for its
       ``latency_s``, and ``@ATTEMPTS`` to fire only on some attempts. Examples:
       ``[[fault:throttle]]``, ``[[fault:throttle@1]]`` (only the first attempt, so a
       retrying client succeeds), ``[[fault:latency=2.5]]``, ``[[fault:filter]]``,
       ``[[fault:internal]]``, ``[[fault:slow_body=3]]``. Markers may be combined; an unknown
       kind is a 400 ValidationException.
"""
