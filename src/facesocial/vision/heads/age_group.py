"""Age estimate -> coarse age group.

Boundaries (years, estimate rounded down to whole years; each group includes its lower
bound): child < 13 <= teenager <= 19 < young_adult <= 35 < adult <= 59 < senior (60+).
Age estimates carry a ~7-year error, so the group near a boundary is uncertain: callers
should show the estimate's group, not treat it as a fact about the person.
"""

from __future__ import annotations

import math
from typing import Literal

AgeGroup = Literal["child", "teenager", "young_adult", "adult", "senior"]

# (group, first whole year of the group), ascending.
AGE_GROUPS: tuple[tuple[AgeGroup, int], ...] = (
    ("child", 0),
    ("teenager", 13),
    ("young_adult", 20),
    ("adult", 36),
    ("senior", 60),
)


def age_group(age: float) -> AgeGroup:
    """The group of an age estimate in years (negative or NaN estimates are rejected)."""
    if math.isnan(age) or age < 0:
        raise ValueError(f"not an age: {age}")
    years = math.floor(age)
    group: AgeGroup = AGE_GROUPS[0][0]
    for name, start in AGE_GROUPS:
        if years >= start:
            group = name
    return group
