"""Why a customer gave a thumbs-down: one vocabulary for the chat, the API, the console and
``data compile``. A reason is stored on the feedback row as the label ``reason:<key>``; the
free text of "other" goes in the feedback's ``comment``."""

from __future__ import annotations

REASON_PREFIX = "reason:"

#: key -> what the customer sees (in the order the chat offers them)
THUMBS_DOWN_REASONS: dict[str, str] = {
    "wrong": "Wrong or outdated answer",
    "unanswered": "Didn't answer my question",
    "docs_gap": "Missing information in your docs",
    "tone": "Tone",
    "personal_data": "Contains personal data",
    "other": "Other",
}


def reason_label(key: str) -> str:
    """The feedback label for a reason key; an unknown key is a ``ValueError``."""
    if key not in THUMBS_DOWN_REASONS:
        raise ValueError(
            f"unknown thumbs-down reason {key!r}; expected one of {', '.join(THUMBS_DOWN_REASONS)}"
        )
    return REASON_PREFIX + key


def labels_for(reason: str | None) -> tuple[str, ...]:
    """The labels a feedback call adds for ``reason`` (none for None); an unknown key is an
    ``InputError`` naming the known ones."""
    if reason is None:
        return ()
    from agent.errors import InputError

    try:
        return (reason_label(reason),)
    except ValueError as exc:
        raise InputError(str(exc), param="reason") from None


def reason_of(labels: tuple[str, ...] | list[str]) -> str | None:
    """The reason key among a feedback row's labels, or None."""
    for label in labels:
        if label.startswith(REASON_PREFIX) and label[len(REASON_PREFIX) :] in THUMBS_DOWN_REASONS:
            return label[len(REASON_PREFIX) :]
    return None


#: The reviewer's label for an answer that should have been a hand-off to a person (the
#: console offers the first; the others are accepted as written by the API or older consoles).
SHOULD_HAND_OFF = "should have handed off"
HAND_OFF_LABELS = frozenset({SHOULD_HAND_OFF, "should_handoff", "should have escalated"})


def should_hand_off(labels: tuple[str, ...] | list[str]) -> bool:
    """Whether a reviewer marked the answer "should have handed off" (any accepted spelling)."""
    return any(label.strip().casefold() in HAND_OFF_LABELS for label in labels)
