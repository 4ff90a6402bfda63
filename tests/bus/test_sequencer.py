"""The sequencer delivers each seq once, in order, whatever order batches arrive in."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st
from support import event

from jacmon.bus import EventsCommitted
from jacmon.bus.sequencer import Sequencer
from jacmon.events import validate_event
from jacmon.store import StoredEvent


def batch(first: int, last: int) -> EventsCommitted:
    return EventsCommitted(
        [
            StoredEvent(seq, validate_event(event(seq)), f'{{"n":{seq}}}')
            for seq in range(first, last + 1)
        ]
    )


def seqs(facts: list[EventsCommitted]) -> list[int]:
    return [e.seq for fact in facts for e in fact.stored]


def test_in_order_batches_go_straight_through():
    seq = Sequencer(1)
    assert seqs(seq.offer(batch(1, 3))) == [1, 2, 3]
    assert seqs(seq.offer(batch(4, 4))) == [4]
    assert seq.gap() is None and seq.next_seq == 5


def test_a_later_batch_waits_for_the_gap_and_a_repeat_is_dropped():
    seq = Sequencer(1)
    assert seq.offer(batch(4, 6)) == []
    assert seq.gap() == (1, 3)
    assert seqs(seq.offer(batch(1, 3))) == [1, 2, 3, 4, 5, 6]
    assert seq.offer(batch(2, 5)) == []  # everything in it was delivered
    # A fill overlapping what was delivered gives only the rest.
    assert seqs(seq.offer(batch(5, 8))) == [7, 8]


def test_skipping_seqs_the_store_no_longer_has_releases_what_waits():
    seq = Sequencer(1)
    seq.offer(batch(10, 12))
    assert seqs(seq.skip_to(10)) == [10, 11, 12]
    assert seq.gap() is None


@settings(max_examples=200, deadline=None)
@given(
    cuts=st.lists(st.integers(1, 59), unique=True, max_size=20),
    order=st.randoms(use_true_random=False),
    repeats=st.lists(st.tuples(st.integers(1, 60), st.integers(0, 10)), max_size=8),
)
def test_any_arrival_order_with_repeats_delivers_each_seq_once_in_order(cuts, order, repeats):
    bounds = [0, *sorted(cuts), 60]
    batches = [batch(a + 1, b) for a, b in itertools.pairwise(bounds)]
    # Overlapping re-deliveries, as a store fill racing a late message would make.
    batches += [batch(start, min(60, start + length)) for start, length in repeats]
    order.shuffle(batches)
    seq = Sequencer(1)
    delivered: list[int] = []
    for fact in batches:
        delivered += seqs(seq.offer(fact))
    assert delivered == list(range(1, 61))
    assert seq.gap() is None and seq.waiting() == 0
