#!/usr/bin/env python3
"""Range GETs of a blob as a lazy fetcher sends them: WORKERS threads, each with its own
keep-alive connection, ask random 1 MiB-aligned ranges until COUNT are answered; prints the
p50 and p99 latency in milliseconds. A wrong status or length is an error, never a sample.

    range_gets.py HOST:PORT PATH SIZE COUNT WORKERS
"""
import http.client
import random
import sys
import threading
import time

host, path, size, count, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
CHUNK = 1 << 20
chunks = max(1, size // CHUNK)
latencies, lock, left = [], threading.Lock(), [count]


def worker(seed):
    rng = random.Random(seed)
    connection = http.client.HTTPConnection(host, timeout=30)
    while True:
        with lock:
            if left[0] == 0:
                return
            left[0] -= 1
        first = rng.randrange(chunks) * CHUNK
        last = min(size, first + CHUNK) - 1
        t0 = time.perf_counter()
        connection.request("GET", path, headers={"Range": f"bytes={first}-{last}"})
        response = connection.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - t0
        if response.status != 206 or len(body) != last - first + 1:
            sys.exit(f"range {first}-{last}: HTTP {response.status}, {len(body)} bytes")
        with lock:
            latencies.append(elapsed)


threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if len(latencies) != count:
    sys.exit(f"only {len(latencies)} of {count} ranges answered")
latencies.sort()
print(f"{latencies[len(latencies) // 2] * 1000:.3f} {latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000:.3f}")
