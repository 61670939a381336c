"""The Rust runner's workloads on the Python original, async-cache 2.0.3.

Prints one JSON object: nanoseconds per hit (through @AsyncLRU and AsyncCache.get), the herd
of 10,000 callers on one key and the error storm of 100 callers (time, the loader's own time,
loads), and 10,000 distinct keys through the batch loader. Keys, sizes, windows and loader
times match the runner's (bench_table), so the figures sit in one table.
"""

import asyncio
import json
import platform
import sys
import time

from cache import AsyncCache, AsyncLRU

ENTRIES = 10_000
MASK = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


def key_sets():
    """The runner's keys: 10,000 splitmix64 values, and the same keys shuffled."""
    state = 0x5EED
    inserted = []
    for _ in range(ENTRIES):
        state, key = splitmix64(state)
        inserted.append(key)
    lookups = list(inserted)
    for i in range(len(lookups) - 1, 0, -1):
        state, r = splitmix64(state)
        j = r % (i + 1)
        lookups[i], lookups[j] = lookups[j], lookups[i]
    return inserted, lookups


@AsyncLRU(maxsize=20_000)
async def identity(k):
    return k


async def hit_async_lru(inserted, lookups, rounds):
    for k in inserted:
        await identity(k)
    best = None
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for k in lookups:
            await identity(k)
        per_hit = (time.perf_counter_ns() - start) / len(lookups)
        best = per_hit if best is None else min(best, per_hit)
    return best


async def hit_cache_get(inserted, lookups, rounds):
    cache = AsyncCache(maxsize=20_000)
    for k in inserted:
        cache.set(k, k)
    best = None
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for k in lookups:
            await cache.get(k)
        per_hit = (time.perf_counter_ns() - start) / len(lookups)
        best = per_hit if best is None else min(best, per_hit)
    return best


async def loader_alone():
    start = time.perf_counter_ns()
    await asyncio.create_task(asyncio.sleep(0.001))
    return time.perf_counter_ns() - start


async def herd(callers):
    """`callers` concurrent gets of one cold key whose loader sleeps 1 ms."""
    cache = AsyncCache(maxsize=1_000)
    loads = 0

    async def loader():
        nonlocal loads
        loads += 1
        await asyncio.sleep(0.001)
        return 42

    start = time.perf_counter_ns()
    tasks = [asyncio.create_task(cache.get(7, loader=loader)) for _ in range(callers)]
    values = await asyncio.gather(*tasks)
    elapsed = time.perf_counter_ns() - start
    assert all(v == 42 for v in values)
    return elapsed, loads


async def error_storm(callers):
    """`callers` concurrent gets of one key whose loader fails after 1 ms."""
    cache = AsyncCache(maxsize=1_000)
    loads = 0

    async def loader():
        nonlocal loads
        loads += 1
        await asyncio.sleep(0.001)
        raise RuntimeError("backend down")

    start = time.perf_counter_ns()
    tasks = [asyncio.create_task(cache.get(7, loader=loader)) for _ in range(callers)]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = time.perf_counter_ns() - start
    assert all(isinstance(r, RuntimeError) for r in results)
    return elapsed, loads


async def batch(keys):
    """`keys` distinct keys loaded concurrently through the batch loader (1 ms window,
    batches of at most 1,000 keys), as the runner's batch workload."""
    cache = AsyncCache(maxsize=keys, batch_window_ms=1, max_batch_size=1_000)
    calls = 0

    async def batch_loader(ks):
        nonlocal calls
        calls += 1
        return {k: k * 2 for k in ks}

    start = time.perf_counter_ns()
    tasks = [asyncio.create_task(cache.get(k, batch_loader=batch_loader)) for k in range(keys)]
    values = await asyncio.gather(*tasks)
    elapsed = time.perf_counter_ns() - start
    assert values == [k * 2 for k in range(keys)]
    return elapsed, calls


def median(samples):
    samples = sorted(samples)
    return samples[len(samples) // 2]


async def main():
    inserted, lookups = key_sets()
    result = {
        "python": platform.python_version(),
        "async_cache": "2.0.3",
        "hit_async_lru_ns": await hit_async_lru(inserted, lookups, 5),
        "hit_cache_get_ns": await hit_cache_get(inserted, lookups, 5),
    }
    alone = median([await loader_alone() for _ in range(20)])
    herds = [await herd(10_000) for _ in range(5)]
    result["loader_alone_ns"] = alone
    result["herd_10k_ns"] = median([h[0] for h in herds])
    result["herd_10k_loads"] = max(h[1] for h in herds)
    storms = [await error_storm(100) for _ in range(10)]
    result["error_storm_100_ns"] = median([s[0] for s in storms])
    result["error_storm_100_loads"] = max(s[1] for s in storms)
    batches = [await batch(10_000) for _ in range(5)]
    result["batch_10k_ns"] = median([b[0] for b in batches])
    result["batch_10k_calls"] = max(b[1] for b in batches)
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    asyncio.run(main())
