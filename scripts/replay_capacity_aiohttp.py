#!/usr/bin/env python3
"""The Python baseline for scripts/bench_replay.py: a streaming OpenAI-completions client built
the way vLLM's `vllm bench serve` client is (asyncio, one aiohttp session, an async generator
that sleeps each inter-arrival interval and then creates a task per request, SSE lines parsed
with json.loads, TTFT/ITL from time.perf_counter), pointed at the same loopback server as
benchkit's `replay_capacity client`, printing the same JSON fields.

Schedule lag is measured against the ideal schedule (request i due at i / rate, or the
cumulative Poisson draws), which is what the offered load means; vLLM's generator sleeps
each interval after the previous send, so any time spent elsewhere makes it drift behind.

    scripts/replay_capacity_aiohttp.py --base-url http://127.0.0.1:8099 --rate 20000 --requests 20000
"""
import argparse
import asyncio
import json
import random
import resource
import time

import aiohttp


def percentile(sorted_vals, p):
    if not sorted_vals:
        return 0.0
    k = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


async def request_func(session, url, payload, due, out):
    sent = time.perf_counter()
    ttft = None
    itl = []
    ok = False
    last = sent
    generated = 0
    try:
        async with session.post(url=url, json=payload) as response:
            if response.status == 200:
                async for chunk_bytes in response.content:
                    chunk_bytes = chunk_bytes.strip()
                    if not chunk_bytes:
                        continue
                    chunk = chunk_bytes.decode("utf-8").removeprefix("data: ")
                    if chunk == "[DONE]":
                        continue
                    data = json.loads(chunk)
                    choices = data.get("choices")
                    if choices and choices[0].get("text"):
                        now = time.perf_counter()
                        if ttft is None:
                            ttft = now - sent
                        else:
                            itl.append(now - last)
                        last = now
                    usage = data.get("usage")
                    if usage:
                        generated = usage.get("completion_tokens", 0)
                ok = True
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        ok = False
    end = time.perf_counter()
    out.append((ok, sent - due, ttft, end - sent, generated))


async def arrivals(n, rate, kind, burstiness, seed):
    """vLLM-style: yield a request, then sleep the next inter-arrival interval. Also yields
    when the request is due on the ideal schedule (seconds after the start), which the
    sleeps drift behind."""
    rng = random.Random(seed)
    ideal = 0.0
    for i in range(n):
        yield i, ideal
        if kind == "poisson":
            interval = rng.expovariate(rate)
        elif kind == "gamma":  # vLLM's: shape = burstiness, mean 1 / rate
            interval = rng.gammavariate(burstiness, 1.0 / (rate * burstiness))
        else:
            interval = 1.0 / rate
        ideal += interval
        await asyncio.sleep(interval)


async def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--rate", type=float, default=20000.0)
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--warmup", type=int, default=0)
    ap.add_argument("--poisson", action="store_true", help="same as --arrivals poisson")
    ap.add_argument("--arrivals", choices=["constant", "poisson", "gamma"], default="constant")
    ap.add_argument("--burstiness", type=float, default=1.0, help="gamma shape of --arrivals gamma")
    ap.add_argument("--tokens", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-connections", type=int, default=0, help="aiohttp connector limit (0: none, vLLM's default)")
    a = ap.parse_args()
    kind = "poisson" if a.poisson else a.arrivals

    url = a.base_url.rstrip("/") + "/v1/completions"
    payload = {"model": "capacity", "prompt": "Say hello.", "max_tokens": a.tokens, "stream": True,
               "stream_options": {"include_usage": True}, "temperature": 0, "ignore_eos": True}
    # As vLLM's client: keep-alive, no connection limit unless asked.
    connector = aiohttp.TCPConnector(limit=a.max_connections, limit_per_host=a.max_connections,
                                     keepalive_timeout=60, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    total = a.requests + a.warmup
    results, warm = [], []
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = []
        cpu0 = time.process_time()
        start = time.perf_counter()
        async for i, ideal in arrivals(total, a.rate, kind, a.burstiness, a.seed):
            out = results if i >= a.warmup else warm
            tasks.append(asyncio.create_task(request_func(session, url, payload, start + ideal, out)))
        await asyncio.gather(*tasks)
        duration = time.perf_counter() - start
        cpu = time.process_time() - cpu0

    ok = [r for r in results if r[0]]
    lags = sorted(max(0.0, r[1]) * 1e3 for r in results)
    ttfts = sorted(r[2] * 1e3 for r in ok if r[2] is not None)
    e2el = sorted(r[3] * 1e3 for r in ok)
    print(json.dumps({
        "client": "python-aiohttp",
        "offered_rate": a.rate,
        "arrivals": kind if kind != "gamma" else f"gamma({a.burstiness})",
        "requests": a.requests,
        "max_connections": a.max_connections or None,
        "warmup": a.warmup,
        "completed": len(ok),
        "failed": len(results) - len(ok),
        "duration_s": duration,
        "request_throughput": len(ok) / duration,
        "achieved_rate": (len(ok) + sum(1 for r in warm if r[0])) / duration,
        "total_output_tokens": sum(r[4] for r in ok),
        "lag_median_ms": percentile(lags, 50),
        "lag_p99_ms": percentile(lags, 99),
        "lag_max_ms": lags[-1] if lags else 0.0,
        "ttft_median_ms": percentile(ttfts, 50),
        "ttft_p99_ms": percentile(ttfts, 99),
        "e2el_p99_ms": percentile(e2el, 99),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "cpu_s": cpu,
        "cpu_us_per_request": cpu * 1e6 / max(total, 1),
    }, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
