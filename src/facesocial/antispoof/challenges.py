"""Challenge kinds of active liveness and the server's random choice of a sequence.

A session asks the subject to perform a short sequence of challenges, chosen by the server with
cryptographic randomness (:class:`secrets.SystemRandom`), so a client cannot predict it.

Why two head moves and one face move by default: blinks and mouth movements happen naturally
(a person blinks every 2-10 s), so the engine can never call one "out of order"; head moves are
deliberate, so they can be order-checked. With two distinct head challenges out of four, a
recording made for an earlier session shows the right head move in the right place with
probability 1/12 (4 x 3 ordered pairs); otherwise it shows a head move out of order and the
session fails ``wrong_challenge`` (see :mod:`facesocial.antispoof.active`).
"""

from __future__ import annotations

import itertools
import secrets
from typing import Literal, get_args

ChallengeKind = Literal["turn_left", "turn_right", "look_up", "nod", "blink", "smile", "open_mouth"]
ALL_CHALLENGES: tuple[str, ...] = get_args(ChallengeKind)
# Deliberate head moves: order-checked ("left/right" are the subject's own, as in the mesh head).
HEAD_CHALLENGES: tuple[str, ...] = ("turn_left", "turn_right", "look_up", "nod")
# Face moves chosen by default. ``smile`` is accepted when a caller asks for it, but not chosen:
# mouth widening is small (a few %) next to the mesh's jitter and varies most between people.
FACE_CHALLENGES: tuple[str, ...] = ("blink", "open_mouth")
MAX_CHALLENGES = 6

INSTRUCTIONS: dict[str, str] = {
    "turn_left": "Slowly turn your head to your left, then back",
    "turn_right": "Slowly turn your head to your right, then back",
    "look_up": "Look up, then back at the camera",
    "nod": "Nod your head down and back up",
    "blink": "Blink your eyes",
    "smile": "Smile",
    "open_mouth": "Open your mouth wide, then close it",
}


def is_head_challenge(kind: str) -> bool:
    return kind in HEAD_CHALLENGES


def random_sequence(length: int = 3, rng: secrets.SystemRandom | None = None) -> list[str]:
    """A random challenge sequence of ``length`` (1..6), e.g. ``["nod", "blink", "turn_right"]``.

    ``length`` 3 (the default): 2 distinct head challenges and 1 face challenge, shuffled.
    Other lengths keep about two thirds head challenges (at least one when ``length`` ≥ 2),
    with no kind repeated back to back. ``rng`` defaults to :class:`secrets.SystemRandom`
    (the operating system's cryptographic source); tests may pass a seeded one.
    Raises ``ValueError`` when ``length`` is outside 1..6.
    """
    if not 1 <= length <= MAX_CHALLENGES:
        raise ValueError(f"a challenge sequence has 1 to {MAX_CHALLENGES} challenges, not {length}")
    rng = rng or secrets.SystemRandom()
    heads = length if length == 1 else max(1, round(length * 2 / 3))
    if length == 1:
        heads = 0 if rng.random() < 0.5 else 1
    faces = length - heads
    while True:
        # Distinct head moves while there are enough of them, then repeats (never adjacent).
        head_moves = rng.sample(HEAD_CHALLENGES, min(heads, len(HEAD_CHALLENGES)))
        head_moves += [rng.choice(HEAD_CHALLENGES) for _ in range(heads - len(head_moves))]
        face_moves = [rng.choice(FACE_CHALLENGES) for _ in range(faces)]
        sequence = head_moves + face_moves
        rng.shuffle(sequence)
        if all(a != b for a, b in itertools.pairwise(sequence)):
            return sequence


def validate_sequence(challenges: list[str]) -> list[str]:
    """``challenges`` unchanged (as a new list) when it is a valid sequence.

    Raises ``ValueError`` naming the problem: empty, more than 6, an unknown kind, or the same
    kind twice in a row (a single long move would then count twice).
    """
    if not challenges:
        raise ValueError("the challenge sequence is empty")
    if len(challenges) > MAX_CHALLENGES:
        raise ValueError(f"at most {MAX_CHALLENGES} challenges, got {len(challenges)}")
    for position, kind in enumerate(challenges):
        if kind not in ALL_CHALLENGES:
            raise ValueError(
                f"unknown challenge {kind!r} at position {position}; known: {', '.join(ALL_CHALLENGES)}"
            )
        if position > 0 and challenges[position - 1] == kind:
            raise ValueError(f"challenge {kind!r} is repeated at positions {position - 1} and {position}")
    return list(challenges)
