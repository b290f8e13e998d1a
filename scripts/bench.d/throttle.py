#!/usr/bin/env python3
"""A TCP proxy on 127.0.0.1 that forwards to a loopback server, its answers sharing one token
bucket of BYTES_PER_SECOND (a link of that speed): what the bench's lazy group pulls through.

usage: throttle.py LISTEN_PORT UPSTREAM_PORT BYTES_PER_SECOND
Prints "listening PORT" once it accepts connections; runs until killed.
"""
import asyncio
import sys
import time

CHUNK = 64 * 1024


class Bucket:
    def __init__(self, rate):
        self.rate = rate
        self.next_free = time.monotonic()

    async def take(self, n):
        now = time.monotonic()
        start = max(now, self.next_free)
        self.next_free = start + n / self.rate
        if self.next_free - now > 0.0005:
            await asyncio.sleep(self.next_free - now)


async def pipe(reader, writer, bucket):
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            if bucket is not None:
                await bucket.take(len(data))
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main():
    listen, upstream, rate = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    bucket = Bucket(rate)

    async def handle(client_reader, client_writer):
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, up_writer, None), pipe(up_reader, client_writer, bucket))

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    print("listening", server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
