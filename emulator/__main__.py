"""``python -m emulator``: run the Bedrock emulator (and optionally local S3) until stopped.

It prints the endpoints as shell assignments, one per line, so a person can read them and
a script can ``eval`` them; then it serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from types import FrameType

from emulator.bedrock import BedrockEmulator
from emulator.models import LIFECYCLE_MODES
from emulator.s3 import LocalS3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m emulator", description="Local AWS Bedrock image-model emulator."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4010, help="0 picks a free port")
    parser.add_argument(
        "--latency-s",
        type=float,
        # A string default goes through `type`, so a bad variable gets argparse's error.
        default=os.environ.get("EMULATOR_LATENCY_S", "0"),
        help="delay added to every InvokeModel call (default: $EMULATOR_LATENCY_S or 0)",
    )
    parser.add_argument(
        "--region",
        default=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        help="region in ARNs when a request carries no SigV4 scope",
    )
    parser.add_argument(
        "--lifecycle",
        choices=LIFECYCLE_MODES,
        default=os.environ.get("EMULATOR_LIFECYCLE", "").strip() or "product-page",
        help="product-page: every model served; aws-2026-12: as AWS answers today "
        "(default: $EMULATOR_LIFECYCLE or product-page)",
    )
    parser.add_argument(
        "--s3-port", type=int, help="also run local S3 on this port (0 picks a free port)"
    )
    parser.add_argument("--s3-bucket", help="bucket to create in local S3 (implies local S3)")
    parser.add_argument("--log-level", default="WARNING", help="DEBUG logs every request")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    level = args.log_level.upper()
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(message)s")
    # moto's werkzeug server turns its own request log on unless told a level.
    logging.getLogger("werkzeug").setLevel(level)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    emulator = BedrockEmulator(args.host, args.port, args.latency_s, args.region, args.lifecycle)
    s3 = None
    if args.s3_port is not None or args.s3_bucket:
        s3 = LocalS3(args.host, args.s3_port or 0, args.s3_bucket or "bedrock-images-local")
    try:
        emulator.start()
        lines = [
            f"AWS_ENDPOINT_URL_BEDROCK_RUNTIME={emulator.url}",
            f"AWS_ENDPOINT_URL_BEDROCK={emulator.url}",
        ]
        if s3 is not None:
            s3.start()
            lines += [f"AWS_ENDPOINT_URL_S3={s3.url}", f"AWS_S3_BUCKET={s3.bucket}"]
        print("\n".join(lines), flush=True)
        print("Bedrock emulator running; Ctrl-C to stop.", file=sys.stderr, flush=True)
        stop.wait()
    except OSError as exc:  # typically: the port is taken
        print(f"emulator: {exc}", file=sys.stderr)
        return 1
    finally:
        if s3 is not None:
            s3.stop()
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
