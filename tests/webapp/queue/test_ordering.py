from webapp.queue.ordering import Waiting, merge_tiers

NORMAL, PRIORITY = 0, 1


def tickets(*spec):
    return [Waiting(id=i, tier=tier, front=front) for i, (tier, front) in enumerate(spec)]


def test_it_serves_one_tier_first_come_first_served():
    waiting = tickets((NORMAL, False), (NORMAL, False), (NORMAL, False))
    assert merge_tiers(waiting, 0.5, 0, 0) == [0, 1, 2]


def test_front_passes_go_before_everyone():
    waiting = tickets((PRIORITY, False), (NORMAL, False), (NORMAL, True))
    assert merge_tiers(waiting, 0.5, 0, 0)[0] == 2


def test_a_half_share_alternates_the_tiers():
    waiting = tickets(*([(NORMAL, False)] * 3 + [(PRIORITY, False)] * 3))
    order = merge_tiers(waiting, 0.5, 0, 0)
    tiers = [waiting[i].tier for i in order]
    assert tiers == [NORMAL, PRIORITY, NORMAL, PRIORITY, NORMAL, PRIORITY]


def test_a_three_quarter_share_still_moves_the_normal_tier():
    waiting = tickets(*([(NORMAL, False)] * 4 + [(PRIORITY, False)] * 12))
    order = merge_tiers(waiting, 0.75, 0, 0)
    first_eight = [waiting[i].tier for i in order[:8]]
    assert first_eight.count(NORMAL) == 2
    assert first_eight.count(PRIORITY) == 6


def test_it_keeps_fifo_within_each_tier():
    waiting = tickets((PRIORITY, False), (NORMAL, False), (PRIORITY, False), (NORMAL, False))
    order = merge_tiers(waiting, 0.5, 0, 0)
    assert [i for i in order if waiting[i].tier == PRIORITY] == [0, 2]
    assert [i for i in order if waiting[i].tier == NORMAL] == [1, 3]


def test_recent_history_counts_toward_the_share():
    waiting = tickets((NORMAL, False), (PRIORITY, False))
    # Priority already had 3 of the last 4 offers: the normal player goes next.
    assert merge_tiers(waiting, 0.5, 3, 1) == [0, 1]


def test_a_lone_tier_is_never_held_back_by_the_share():
    waiting = tickets((PRIORITY, False), (PRIORITY, False))
    assert merge_tiers(waiting, 0.0, 0, 0) == [0, 1]
