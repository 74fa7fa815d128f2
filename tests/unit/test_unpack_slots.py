"""The order in which layers get an unpacking slot (pure trio, no kernel)."""

import trio

from rootless.engine.layer_unpack import LargestFirst


def run_jobs(slots: int, sizes: list[int], cancel: set[int] = frozenset()) -> list[int]:
    started: list[int] = []

    async def job(limiter, size, gate):
        with trio.CancelScope() as scope:
            if size in cancel:
                scope.cancel()
            async with limiter.slot(size):
                started.append(size)
                await gate.wait()

    async def main():
        limiter, gates = LargestFirst(slots), {size: trio.Event() for size in sizes}
        async with trio.open_nursery() as nursery:
            for size in sizes:  # arrive in this order
                nursery.start_soon(job, limiter, size, gates[size])
                await trio.testing.wait_all_tasks_blocked()
            for _ in sizes:  # finish whatever runs, one at a time
                await trio.testing.wait_all_tasks_blocked()
                running = [s for s in started if not gates[s].is_set()]
                if running:
                    gates[running[0]].set()
        assert limiter.free == slots

    import trio.testing  # noqa: F401

    trio.run(main)
    return started


def test_free_slots_are_taken_in_arrival_order():
    assert run_jobs(2, [1, 2]) == [1, 2]


def test_waiting_jobs_get_a_slot_largest_first():
    assert run_jobs(1, [5, 1, 2, 9, 3]) == [5, 9, 3, 2, 1]


def test_a_cancelled_waiter_gives_up_its_place_and_the_slots_all_come_back():
    assert run_jobs(1, [5, 1, 9, 2], cancel={9}) == [5, 2, 1]
