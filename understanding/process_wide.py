"""One instance per process of something expensive to build (a model), built on first use under a lock
so two threads asking at once build it once."""
from __future__ import annotations

import threading
from typing import Callable, TypeVar

T = TypeVar("T")


def process_wide(build: Callable[[], T]) -> Callable[[], T]:
    made: list[T] = []
    lock = threading.Lock()

    def get() -> T:
        with lock:
            if not made:
                made.append(build())
            return made[0]
    get.__doc__ = f"The process-wide {getattr(build, '__name__', 'instance')}, built on first use."
    return get
