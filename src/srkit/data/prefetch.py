"""Decode ahead: run a loader in a background thread a few items ahead of the consumer.

Pillow releases the GIL while decoding, so the next images decode while torch computes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def prefetched(
    items: Sequence[Item], load: Callable[[Item], Result], depth: int = 3
) -> Iterator[tuple[Item, Result]]:
    """Yield ``(item, load(item))`` in order, keeping ``depth`` loads in flight.

    ``load`` should catch the errors it wants reported per item and return them.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="srkit-decode") as pool:
        queue: list[tuple[Item, Future]] = [(i, pool.submit(load, i)) for i in items[:depth]]
        next_index = len(queue)
        while queue:
            item, future = queue.pop(0)
            if next_index < len(items):
                queue.append((items[next_index], pool.submit(load, items[next_index])))
                next_index += 1
            yield item, future.result()
