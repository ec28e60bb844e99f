"""A forwarder in its own process, for the last-will test (which SIGKILLs it).

python _forwarder_process.py BROKER_PORT BUFFER_PATH
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from _buffer_helpers import open_buffer
from _forward_helpers import forwarder, mqtt_config


async def main(port: int, buffer_path: Path) -> None:
    buffer = open_buffer(buffer_path)
    try:
        await forwarder(mqtt_config(port), buffer).run(asyncio.Event())  # until killed
    finally:
        buffer.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2])))
