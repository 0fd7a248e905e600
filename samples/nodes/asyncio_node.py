"""An asyncio node that reads events with ``await node.recv_async()`` and breaks on STOP.

The event loop also runs a ``heartbeat`` task that sleeps asynchronously. Nothing blocks the
loop, so STOP is read as soon as it comes.

Right answer: clean, within ~0.1 s, cause none.
"""

import asyncio

from dora import Node


async def heartbeat() -> None:
    while True:
        await asyncio.sleep(0.05)


async def main() -> None:
    node = Node()
    beat = asyncio.create_task(heartbeat())
    while True:
        event = await node.recv_async()
        if event is None or event["type"] == "STOP":
            break
    beat.cancel()


if __name__ == "__main__":
    asyncio.run(main())
