"""The seeded learner-population simulator: for ``jacmon demo``, ``jacmon sim``, tests
and benchmarks.

- :mod:`~jacmon.sim.simulator`: :class:`~jacmon.sim.simulator.Simulator`, every
  learner's events merged in simulated-time order, numbered and stamped;
- :mod:`~jacmon.sim.population`: the learners and their archetypes;
- :mod:`~jacmon.sim.learner`: one learner's behaviour as events;
- :mod:`~jacmon.sim.catalog`: the simulated paths and modules (the demo catalog);
- :mod:`~jacmon.sim.clock`: simulated time, ``speed`` x the wall clock;
- :mod:`~jacmon.sim.stream`: feeding a server (rate-limited) or writing JSONL.
"""
