"""Hypothesis profiles for the property tests.

`ci` (the default, and what `make test` and `.ci/run` use): derandomized, so a run's examples are
the same on every machine and a failure reproduces; no deadline, since a loaded machine's timing is
not a property.  `long` (`make properties`): randomized, twenty times the examples.  `mutate`
(`make mutate`, which runs the unit tests once per mutant): derandomized, a tenth of the examples.
"""

from __future__ import annotations

import os

from hypothesis import settings

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
SCALE = {"long": 20.0, "mutate": 0.1}.get(PROFILE, 1.0)

settings.register_profile("ci", derandomize=True, deadline=None, database=None, print_blob=True)
settings.register_profile("long", derandomize=False, deadline=None, database=None, print_blob=True)
settings.register_profile("mutate", derandomize=True, deadline=None, database=None, print_blob=True)
settings.load_profile(PROFILE)


def examples(n: int) -> int:
    """How many examples a property gets: `n`, scaled up under the long profile."""
    return max(1, round(n * SCALE))
