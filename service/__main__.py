"""Entry point: `python -m service` runs the gRPC service until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from service.config import ConfigError, Settings
from service.server import ImageServer


async def serve(settings: Settings) -> None:
    try:
        server = ImageServer(settings)
        await server.start()
    except ConfigError as exc:
        sys.exit(f"configuration error: {exc}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for sig in (signal.SIGINT, signal.SIGTERM):  # a second signal: stop without waiting
        loop.add_signal_handler(sig, server.drain.cut_short)
    await server.stop()


def main() -> None:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        sys.exit(f"configuration error: {exc}")
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    asyncio.run(serve(settings))
    # Drained. A blocking call whose client is gone (an S3 upload in a worker thread) may
    # still hold its thread; the interpreter would wait for it at exit, so leave without it.
    logging.shutdown()
    os._exit(0)


if __name__ == "__main__":
    main()
