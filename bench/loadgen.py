"""A small HTTP/1.1 load generator, used when wrk is not installed.

python -m bench.loadgen --port P --path /account --header 'Cookie: ...' --connections 32
                        --duration 3

Keep-alive connections on raw asyncio streams (no HTTP library in the loop), each sending the
next request as soon as the last response is read. Prints one JSON line: requests, seconds,
requests per second, statuses, bytes read. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter


async def connection(
    port: int, request: bytes, deadline: float, statuses: Counter[int], totals: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                lowered = name.strip().lower()
                if lowered == "content-length":
                    length = int(value)
                elif lowered == "transfer-encoding":
                    raise RuntimeError("chunked responses are not supported")
            await reader.readexactly(length)
            statuses[status] += 1
            totals[0] += len(head) + length
    finally:
        writer.close()


async def load(
    port: int, path: str, headers: list[str], connections: int, duration: float
) -> dict[str, object]:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", *headers, "", ""]
    request = "\r\n".join(lines).encode("latin-1")
    statuses: Counter[int] = Counter()
    totals = [0]
    started = time.perf_counter()
    deadline = started + duration
    await asyncio.gather(
        *(connection(port, request, deadline, statuses, totals) for _ in range(connections))
    )
    seconds = time.perf_counter() - started
    requests = sum(statuses.values())
    return {
        "requests": requests,
        "seconds": round(seconds, 3),
        "rps": requests / seconds,
        "statuses": {str(k): v for k, v in statuses.items()},
        "bytes": totals[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=3.0)
    args = parser.parse_args()
    result = asyncio.run(load(args.port, args.path, args.header, args.connections, args.duration))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
