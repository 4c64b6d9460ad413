"""Entry point: `python -m service` runs the gRPC service until SIGINT/SIGTERM;
`python -m service keys new NAME` makes an API key and prints its configuration entries."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
import sys

from service import logs, tracing
from service.auth import hash_key, new_key, parse_api_keys
from service.config import ConfigError, Settings
from service.server import ImageServer, keep_freed_memory


async def serve(settings: Settings) -> None:
    try:
        server = ImageServer(settings)
        await server.start()
    except ConfigError as exc:
        sys.exit(f"configuration error: {exc}")
    # What start-up made lives as long as the process: the collector's full passes need not
    # walk it again (about 180,000 objects; a full pass took 130 ms, stalling every request).
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for sig in (signal.SIGINT, signal.SIGTERM):  # a second signal: stop without waiting
        loop.add_signal_handler(sig, server.drain.cut_short)
    await server.stop()


def new_key_command(name: str) -> str:
    """A fresh key and the two ways to configure it (only the hash is ever configured)."""
    key = new_key()
    digest = hash_key(key)
    entry = json.dumps({"name": name, "sha256": digest})
    return (
        f"API key for {name!r} (shown once; give it to the caller, store it nowhere else):\n"
        f"  {key}\n"
        f"Entry for API_KEYS (comma-separated):\n  {name}={digest}\n"
        f"Entry for the 'keys' list of API_KEYS_FILE (add options as needed):\n  {entry}\n"
    )


def main() -> None:
    args = sys.argv[1:]
    if args:
        if len(args) != 3 or args[:2] != ["keys", "new"]:
            sys.exit("usage: python -m service [keys new NAME]")
        try:
            parse_api_keys(f"{args[2]}={'0' * 64}", set())
        except ValueError as exc:
            sys.exit(f"error: {exc}")
        print(new_key_command(args[2]), end="")
        return
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        sys.exit(f"configuration error: {exc}")
    logs.configure(settings.log_level)
    keep_freed_memory()
    provider = tracing.configure(os.environ) if settings.tracing else None
    asyncio.run(serve(settings))
    if provider is not None:
        provider.shutdown()  # exports the spans still batched
    # Drained. A blocking call whose client is gone (an S3 upload in a worker thread) may
    # still hold its thread; the interpreter would wait for it at exit, so leave without it.
    logging.shutdown()
    os._exit(0)


if __name__ == "__main__":
    main()
