"""Runs a service until SIGTERM/SIGINT, then lets it finish the record in hand and stop cleanly."""

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable

from relais.common import telemetry
from relais.common.config import Settings

Main = Callable[[Settings, asyncio.Event], Awaitable[None]]


def serve(service: str, main: Main) -> None:
    logging.basicConfig(
        level=os.environ.get("RELAIS_LOG_LEVEL", "INFO"),
        format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    settings = Settings.from_env(service)
    telemetry.setup(service)
    try:
        asyncio.run(_run(settings, main))
    finally:
        telemetry.shutdown()


async def _run(settings: Settings, main: Main) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await main(settings, stop)
    logging.getLogger(settings.service).info("stopped cleanly")
