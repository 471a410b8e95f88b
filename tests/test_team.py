"""``core/team.py``: every index of a pass done exactly once, by the calling thread and the
spinning helpers, whether the helpers are awake, asleep or busy with another caller's pass."""

import threading
import time

import numpy as np
import pytest

import kernelab as kl
from kernelab.core import jit

pytest.importorskip("numba")

from kernelab.core import team  # noqa: E402  (needs numba)
from kernelab.core.team import claim  # noqa: E402


@jit.kernel()
def count(counts, control):
    """counts[i] += 1 for every index this thread claims; the indices it did."""
    done = 0
    start, stop = claim(control, counts.size)
    while start < stop:
        for i in range(start, stop):
            counts[i] += 1
        done += stop - start
        start, stop = claim(control, counts.size)
    return done


@pytest.mark.parametrize("size", [0, 1, 1000, 2 * team.CHUNK, 20 * team.CHUNK + 7])
def test_every_index_once_back_to_back(threads, size):
    counts = np.zeros(size, np.int64)
    for _ in range(20):
        team.run(count, (counts,), size)
    np.testing.assert_array_equal(counts, 20)


def test_every_index_once_after_the_helpers_fall_asleep(threads):
    counts = np.zeros(3 * team.CHUNK, np.int64)
    for _ in range(3):
        team.run(count, (counts,), counts.size)
        time.sleep(team.SPINS * 200e-9)  # past a helper's spin, whatever its rounds take
    np.testing.assert_array_equal(counts, 3)


def test_callers_on_two_threads_each_get_their_pass_done(threads):
    arrays = [np.zeros(5 * team.CHUNK, np.int64) for _ in range(2)]

    def passes(counts):
        kl.set_num_threads(threads)  # numba's count is per thread
        for _ in range(30):
            team.run(count, (counts,), counts.size)

    callers = [threading.Thread(target=passes, args=(a,)) for a in arrays]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    for counts in arrays:
        np.testing.assert_array_equal(counts, 30)


def test_planes_count_by_their_elements(threads):
    """A pass over 64 planes of 64x64 is 4 chunks: shared; over 8 planes, one thread's."""
    for planes in (8, 64):
        counts = np.zeros(planes, np.int64)
        team.run(count, (counts,), planes, unit=64 * 64)
        np.testing.assert_array_equal(counts, 1)


@jit.kernel()
def claim_range(control, size):
    """:func:`claim` called from Python."""
    return claim(control, size)


def test_chunks_shrink_to_the_least_one_as_a_pass_ends():
    """Each claim takes a quarter of what is left, the control's step at least: the chunks
    cover the pass once, in order, largest first, and only the very last is smaller than
    the step."""
    control, size = team.new_control(2), 100
    chunks = []
    start, stop = claim_range(control, size)
    while start < stop:
        chunks.append((start, stop))
        start, stop = claim_range(control, size)
    assert [a for a, _ in chunks[1:]] == [b for _, b in chunks[:-1]]  # in order, no gaps
    assert chunks[0] == (0, size // team.GUIDE) and chunks[-1][1] == size
    lengths = [b - a for a, b in chunks]
    assert lengths == sorted(lengths, reverse=True)
    assert min(lengths[:-1]) == 2 and lengths[-1] in (1, 2)


def test_a_pass_held_up_by_a_helper_waits_for_it_and_ends_whole():
    """A helper that takes long over its chunk (as when other programs take its core) holds
    the pass up: the caller waits past its patience, and every index is done once."""
    previous = kl.get_num_threads()
    kl.set_num_threads(2)
    joined, caller = [], {}

    def slow_on_helpers(counts, control):
        begun, done = time.perf_counter(), 0
        helper = threading.current_thread().name == "kernelab-team"
        start, stop = claim_range(control, counts.size)
        while start < stop:
            if helper:
                joined.append(True)
                while "took" not in caller:  # the caller's chunks done, however slow the machine
                    time.sleep(0.001)
                # far past the caller's patience (twice its chunks' time) once it waits
                time.sleep(0.1 + 2 * caller["took"])
            else:
                time.sleep(0.001)  # without the GIL, so that a helper can join
            counts[start:stop] += 1
            done += stop - start
            start, stop = claim_range(control, counts.size)
        if not helper:
            caller["took"] = time.perf_counter() - begun
        return done

    try:
        counts = np.zeros(4 * team.CHUNK, np.int64)
        passes = 0
        while not joined and passes < 20:
            caller.clear()
            team.run(slow_on_helpers, (counts,), counts.size)
            passes += 1
        np.testing.assert_array_equal(counts, passes)
        if not joined:
            pytest.skip("no helper got a core in 20 passes")
    finally:
        kl.set_num_threads(previous)


@jit.kernel()
def count_claims(counts, claims, control):
    """:func:`count`, and claims[0] += 1 for every chunk this thread claims."""
    done = 0
    start, stop = claim(control, counts.size)
    while start < stop:
        claims[0] += 1
        for i in range(start, stop):
            counts[i] += 1
        done += stop - start
        start, stop = claim(control, counts.size)
    return done


def test_sharing_is_measured_again_once_its_answer_is_old(monkeypatch):
    """The machine's load changes whether sharing pays: an answer older than
    ``MEASURE_EVERY`` seconds is measured again, a fresh one is kept."""
    helpers = team.Team(0)  # no helper threads: only its answer is asked
    answers = iter([False, True])
    monkeypatch.setattr(team, "measure", lambda _: next(answers))
    assert helpers.shares() is False
    assert helpers.shares() is False  # fresh: not measured again
    monkeypatch.setattr(helpers, "measured_at", time.perf_counter() - team.MEASURE_EVERY - 1)
    assert helpers.shares() is True


def test_passes_run_alone_where_sharing_measured_no_faster(monkeypatch):
    """With ``measure`` finding no gain, a big pass at two threads is one chunk, this
    thread's; what it measures is a bool, and whole passes either way."""
    previous = kl.get_num_threads()
    kl.set_num_threads(2)
    try:
        helpers = team.team_for(4 * team.CHUNK, team.CHUNK)
        with helpers.busy:
            assert team.measure(helpers, rounds=1) in (True, False)
        monkeypatch.setattr(team, "SHARE", None)
        monkeypatch.setattr(helpers, "measured", False)
        monkeypatch.setattr(helpers, "measured_at", time.perf_counter())
        counts, claims = np.zeros(4 * team.CHUNK, np.int64), np.zeros(1, np.int64)
        for _ in range(3):
            team.run(count_claims, (counts, claims), counts.size)
        np.testing.assert_array_equal(counts, 3)
        assert claims[0] == 3  # one claim of the whole range per pass
    finally:
        kl.set_num_threads(previous)
