"""An asyncio node whose loop is blocked by a synchronous call inside a coroutine.

``refresh_cache`` is a coroutine but calls ``time.sleep`` (a blocking call by mistake, as with a
synchronous HTTP client): while it runs, the asyncio loop cannot resume the task awaiting
``node.recv_async()``, so STOP is never read. No thread holds the GIL (sleep releases it).

Right answer (``--grace-duration 2s``): did NOT react to STOP (it never left the blocking
call), terminated by SIGTERM at ~2 s; the main thread is in ``refresh_cache`` (this file)
in ``time.sleep``; fix: ``await asyncio.sleep`` / ``asyncio.to_thread``. No "reacted" claim,
no GIL holder, no SIGTERM handler (it has none).
"""

import asyncio
import time

from dora import Node


async def refresh_cache() -> None:
    while True:
        time.sleep(0.5)  # blocks the loop: should be await asyncio.sleep(0.5)


async def main() -> None:
    node = Node()
    first = await node.recv_async()
    if first is None or first["type"] == "STOP":
        return
    asyncio.create_task(refresh_cache())
    while True:
        event = await node.recv_async()
        if event is None or event["type"] == "STOP":
            break


if __name__ == "__main__":
    asyncio.run(main())
