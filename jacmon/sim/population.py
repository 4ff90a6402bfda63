"""The simulated learner population: who the learners are and how each one behaves.

A learner is a :class:`LearnerProfile` drawn from one :class:`Archetype`
(steady, fast, slow, streak, declining, dropout, stalled, inactive) with its own
ability (mean score 0-100), score spread, pace, session rate and preferred hour
of the day. Learner ``i`` depends only on ``(seed, i)``: the same seed gives the
same learner whatever the population size.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from jacmon.errors import UsageError
from jacmon.sim.catalog import SimPath

DAY_S = 86_400.0
"""Seconds in a simulated day."""


@dataclass(frozen=True, slots=True)
class Archetype:
    """A kind of learner; each range is (low, high) and a learner draws uniformly in it."""

    name: str
    #: Relative share of the population.
    weight: float
    #: Mean sessions per simulated day.
    sessions_per_day: tuple[float, float]
    #: Lessons a learner works through in one session.
    lessons_per_session: tuple[int, int]
    #: Mean assessment score, 0-100.
    ability: tuple[float, float]
    #: Standard deviation of scores around the mean, in points.
    score_sd: tuple[float, float]
    #: Typical minutes one lesson takes.
    lesson_minutes: tuple[float, float]


ARCHETYPES: tuple[Archetype, ...] = (
    Archetype("steady", 0.24, (1.0, 2.0), (1, 3), (60.0, 85.0), (8.0, 14.0), (10.0, 20.0)),
    Archetype("fast", 0.10, (2.0, 3.0), (2, 5), (75.0, 95.0), (4.0, 9.0), (6.0, 12.0)),
    Archetype("slow", 0.10, (0.5, 1.0), (1, 2), (50.0, 72.0), (10.0, 16.0), (15.0, 30.0)),
    # Streak learners come back every single day.
    Archetype("streak", 0.12, (1.2, 2.0), (1, 3), (65.0, 90.0), (6.0, 12.0), (10.0, 18.0)),
    # Good at first, then scores fall well below the pass mark (performance alerts).
    Archetype("declining", 0.10, (1.2, 2.0), (1, 3), (75.0, 90.0), (4.0, 7.0), (10.0, 20.0)),
    # Sessions thin out, then stop for good (engagement drop, then inactivity).
    Archetype("dropout", 0.12, (1.0, 2.0), (1, 3), (45.0, 75.0), (10.0, 16.0), (10.0, 25.0)),
    # Keeps visiting but stops progressing mid-path (stagnation).
    Archetype("stalled", 0.10, (0.8, 1.5), (1, 2), (50.0, 70.0), (10.0, 16.0), (12.0, 25.0)),
    # Takes breaks of several days, then comes back (inactivity alerts).
    Archetype("inactive", 0.12, (1.0, 2.0), (1, 3), (55.0, 85.0), (8.0, 14.0), (10.0, 20.0)),
)

ARCHETYPE_NAMES: tuple[str, ...] = tuple(a.name for a in ARCHETYPES)

_FIRST = [
    "ada",
    "alan",
    "amara",
    "ana",
    "ben",
    "chen",
    "dara",
    "elif",
    "emma",
    "farah",
    "gabe",
    "hana",
    "ivan",
    "jade",
    "kai",
    "lena",
    "liam",
    "maya",
    "mei",
    "nia",
    "noah",
    "omar",
    "priya",
    "quinn",
    "rosa",
    "sam",
    "sofia",
    "tariq",
    "uma",
    "vera",
    "wei",
    "yara",
    "zoe",
]
_LAST = [
    "adams",
    "baker",
    "chen",
    "diaz",
    "evans",
    "fischer",
    "garcia",
    "haddad",
    "ito",
    "jensen",
    "khan",
    "lopez",
    "moreau",
    "nakamura",
    "okafor",
    "patel",
    "quispe",
    "rossi",
    "silva",
    "tanaka",
    "ueda",
    "varga",
    "wang",
    "xu",
    "yilmaz",
    "zhou",
]

# Popular paths get more first enrolments.
_PATH_POPULARITY = (4.0, 3.0, 2.0, 1.0)


@dataclass(frozen=True, slots=True)
class LearnerProfile:
    """One simulated learner: fixed traits; their behaviour unfolds in :mod:`jacmon.sim.learner`.

    Times are seconds since the Unix epoch (UTC).
    """

    index: int
    id: str
    archetype: str
    #: Mean assessment score before any decline, 0-100.
    ability: float
    #: Standard deviation of scores, in points.
    score_sd: float
    #: Mean sessions per simulated day.
    sessions_per_day: float
    lessons_per_session: tuple[int, int]
    #: Typical minutes per lesson.
    lesson_minutes: float
    #: Preferred hour of the day (UTC, 0-24) around which sessions cluster.
    peak_hour: float
    #: Earliest moment of the first session (the enrolment).
    enroll_at: float
    #: Paths in the order the learner takes them (the first is enrolled at once).
    paths: tuple[str, ...]
    #: Chance of enrolling in the next path after completing one.
    continue_chance: float
    #: declining: scores fall after this many assessments (None: never).
    decline_after: int | None = None
    #: declining: how many points the mean falls.
    decline_drop: float = 0.0
    #: dropout: when sessions start thinning out (None: never).
    dropout_at: float | None = None
    #: stalled: (module index, lessons done) in the first path where progress stops.
    stall_at: tuple[int, int] | None = None
    #: inactive: first break start (None: no breaks).
    first_break_at: float | None = None


def _pick_archetype(rng: random.Random) -> str:
    return rng.choices(ARCHETYPE_NAMES, weights=[a.weight for a in ARCHETYPES])[0]


def learner_rng(seed: int, index: int) -> random.Random:
    """The random stream of learner ``index``: its traits, then its behaviour."""
    # A string seed is hashed with SHA-512: stable across runs and Python processes.
    return random.Random(f"jacmon-sim:{seed}:{index}")


def make_profile(
    index: int,
    rng: random.Random,
    *,
    archetype: str,
    start: float,
    enroll_window_s: float,
    paths: Sequence[SimPath],
) -> LearnerProfile:
    """Draw learner ``index``'s traits from ``rng`` (which then drives its behaviour)."""
    kind = next(a for a in ARCHETYPES if a.name == archetype)
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    weights = [_PATH_POPULARITY[i] if i < len(_PATH_POPULARITY) else 1.0 for i in range(len(paths))]
    first_path = rng.choices(range(len(paths)), weights=weights)[0]
    others = [p.id for i, p in enumerate(paths) if i != first_path]
    rng.shuffle(others)
    # Front-loaded: most learners enrol early in the window, a tail trickles in.
    enroll_at = start + enroll_window_s * rng.random() ** 2
    ability = rng.uniform(*kind.ability)
    profile = dict(
        index=index,
        id=f"{first}.{last}-{index:04d}",
        archetype=archetype,
        ability=round(ability, 1),
        score_sd=round(rng.uniform(*kind.score_sd), 1),
        sessions_per_day=round(rng.uniform(*kind.sessions_per_day), 2),
        lessons_per_session=kind.lessons_per_session,
        lesson_minutes=round(rng.uniform(*kind.lesson_minutes), 1),
        # Most people learn in the afternoon or evening; a few are early birds.
        peak_hour=round(min(21.0, max(8.0, rng.gauss(15.5, 3.0))), 2),
        enroll_at=enroll_at,
        paths=(paths[first_path].id, *others),
        continue_chance=rng.uniform(0.4, 0.9),
    )
    if archetype == "declining":
        # Soon enough that the demo shows it within its first simulated day.
        profile["decline_after"] = rng.randint(2, 5)
        profile["decline_drop"] = round(ability - rng.uniform(32.0, 45.0), 1)
    elif archetype == "dropout":
        profile["dropout_at"] = enroll_at + rng.uniform(0.5, 3.0) * DAY_S
    elif archetype == "stalled":
        modules = paths[first_path].modules
        # Mid-path: past the first module when the path has more than one.
        low = min(len(modules) - 1, max(1, len(modules) // 3))
        module = rng.randint(low, min(len(modules) - 1, max(low, len(modules) // 2)))
        profile["stall_at"] = (module, rng.randint(0, modules[module].lessons - 1))
    elif archetype == "inactive":
        profile["first_break_at"] = enroll_at + rng.uniform(0.7, 2.0) * DAY_S
    return LearnerProfile(**profile)  # type: ignore[arg-type]


def make_population(
    seed: int,
    count: int,
    *,
    start: float,
    enroll_window_s: float,
    paths: Sequence[SimPath],
) -> list[tuple[LearnerProfile, random.Random]]:
    """``count`` learners and their random streams.

    The first learners cover every archetype once (in a seeded order), so even
    a population of eight shows every behaviour; the rest are drawn by weight.
    ``start`` and the enrolment window are in epoch seconds / seconds.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise UsageError(f"learners has value {count!r}. Expected a whole number of at least 1.")
    if not paths:
        raise UsageError("the catalog has no paths. Expected at least one path to simulate.")
    order = list(ARCHETYPE_NAMES)
    random.Random(f"jacmon-sim:{seed}:archetypes").shuffle(order)
    population = []
    for index in range(count):
        rng = learner_rng(seed, index)
        archetype = order[index] if index < len(order) else _pick_archetype(rng)
        profile = make_profile(
            index,
            rng,
            archetype=archetype,
            start=start,
            enroll_window_s=enroll_window_s,
            paths=paths,
        )
        population.append((profile, rng))
    return population
