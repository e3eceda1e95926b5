"""KeyedOrder: one key's work one piece after another, other keys' concurrently, no lock kept after use."""

from __future__ import annotations

import asyncio

import pytest

from cokreat_jobs.flink.operators import KeyedOrder


def test_one_key_in_order_and_forgotten_after() -> None:
    order = KeyedOrder()
    done: list[str] = []

    async def work(name: str, delay: float) -> str:
        await asyncio.sleep(delay)
        done.append(name)
        return name

    async def main() -> list[str]:
        jobs = [
            order.run("a", lambda: work("a1", 0.03)),
            order.run("a", lambda: work("a2", 0.0)),
            order.run("b", lambda: work("b1", 0.01)),
        ]
        tasks = [asyncio.ensure_future(j) for j in jobs]
        await asyncio.sleep(0)
        assert len(order) == 2  # two keys in use: a (held, one waiting) and b
        return list(await asyncio.gather(*tasks))

    assert asyncio.run(main()) == ["a1", "a2", "b1"]
    assert done == ["b1", "a1", "a2"]  # b did not wait for a; a2 waited for a1
    assert len(order) == 0


def test_a_cancelled_waiter_and_a_failing_holder_leave_no_lock() -> None:
    order = KeyedOrder()

    async def fail() -> None:
        await asyncio.sleep(0.01)
        raise RuntimeError("boom")

    async def main() -> None:
        holder = asyncio.ensure_future(order.run("k", fail))
        waiter = asyncio.ensure_future(order.run("k", lambda: asyncio.sleep(0)))
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(RuntimeError, match="boom"):
            await holder
        with pytest.raises(asyncio.CancelledError):
            await waiter

    asyncio.run(main())
    assert len(order) == 0
