"""When to hand a conversation to a person. Pure functions; the runtime applies them.

Three triggers, each with a reason code logged on the conversation:

* ``customer_request``: the customer asks for a person. Detected from the *shape* of a
  request (a request verb or construction aimed at a human noun, or a rejection of the bot),
  not from one keyword, so "is the filter safe for a person with asthma?" is not a handoff while
  "can I get someone on the phone" is, and neither is "what time does live chat with a real
  person open on saturdays?" (it asks for the hours).
* ``low_confidence``: the best passage relevance is under the configured threshold.
* ``unhelpful_streak``: the agent could not help for N consecutive turns.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_CONTRACTIONS = {
    "can't": "cannot",
    "won't": "will not",
    "don't": "do not",
    "dont": "do not",
    "cant": "cannot",
    "im": "i am",
    "i'd": "i would",
    "i'm": "i am",
    "let's": "let us",
    "wanna": "want to",
    "gimme": "give me",
    "lemme": "let me",
    "u": "you",
    "pls": "please",
    "plz": "please",
}

_HUMAN = (
    r"(?:(?:a |an |the |some |your |to )?(?:real|actual|live|human|proper|flesh and blood|breathing)\s+"
    r"(?:person|human|people|agent|being|one|rep|representative)"
    r"|human(?:s| being)?|person|people|some(?:one|body)|any(?:one|body) (?:real|human|else)|"
    r"(?:customer |support |service )?(?:agent|representative|rep|operator|advisor|adviser|specialist)s?|"
    r"(?:your |a |the )?(?:manager|supervisor|boss|staff|employee|team member|colleague)s?|"
    r"(?:customer|tech(?:nical)?) (?:service|support)(?: team| department| people)?|support team|(?:the |your |a )?\w+ (?:team|department|desk)|"
    r"member of (?:the |your )?(?:staff|team|support team)|the team|a man|a woman)"
)
_REQUEST = (
    r"(?:speak|talk|chat|get in touch|connect|transfer|hand|pass|put|forward|escalate|redirect|route|"
    r"get|give|need|want|prefer|would like|like to|ask for|request|demand|bring|find|send|call|"
    r"phone|ring|reach|contact|switch|have)"
)
_PATTERNS = [
    # "speak to a human", "put me through to someone", "get me a manager", "I need a real person"
    re.compile(
        rf"\b{_REQUEST}\b(?:\s+\w+){{0,5}}?\s+(?:with |to |through to |me to |me |me with |for )?{_HUMAN}\b"
    ),
    # "is there a human I can talk to", "is anyone there who is real"
    re.compile(
        rf"\b(?:is there|are there|any chance of|can i have|may i have)\b(?:\s+\w+){{0,3}}\s+{_HUMAN}\b"
    ),
    # "escalate this", "escalation please"
    re.compile(r"\bescalat(?:e|ion|ed)\b"),
    # "a human please", "representative!", "agent please"
    re.compile(rf"^(?:{_HUMAN})(?:\s+(?:please|now|asap|immediately))*[.!?]*$"),
    # rejections of the bot: "I don't want a bot", "stop the bot", "enough with the robot"
    re.compile(
        r"\b(?:stop|enough|done with|sick of|tired of|hate|quit|no more|not another)\b(?:\s+\w+){0,2}\s+"
        r"(?:bots?|robots?|machines?|ai|automated|chatbots?|computer|script)\b"
    ),
    re.compile(
        r"\b(?:not|no|never)\b(?:\s+\w+){0,2}\s+(?:want|wish|like|going)\b(?:\s+\w+){0,4}\s+"
        r"(?:bots?|robots?|machines?|ai|automated|chatbots?|computer|script)\b"
    ),
    re.compile(
        r"\b(?:you are|you're|ur) (?:just |only )?an? (?:bot|robot|machine|ai|chatbot)\b.*\b(?:human|person|someone)\b"
    ),
    re.compile(r"\b(?:call me back|callback|call-back|have someone call|somebody call me)\b"),
]
# Ordinary questions that mention people without asking for one.
_NOT_A_REQUEST = [
    re.compile(
        rf"\b(?:for|with|by|does|do|can|should|would|will|safe for|harmful to|a)\s+(?:a |an |the )?{_HUMAN}\s+(?:with|who|that|need|have|use|be|in|to|near|sleeping|allergic)\b"
    ),
    re.compile(r"\b(?:how many|number of|per|each|every)\s+(?:people|persons|person|humans|users)\b"),
]


# A question about when people are there ("what time does live chat with a real person open on
# saturdays?"): it asks for the hours, which the passages answer, not to be handed over now.
_ASKS_WHEN = re.compile(
    r"^(?:(?:hi|hello|hey|ok|so)\b[ ,!.]*)?(?:what time|what hours|what are (?:the|your) (?:\w+ )?hours"
    r"|when (?:does|do|is|are))\b[^.!?]*\b(?:open|opens|close|closes|hours)\b[^.!?]*[.!?]*$"
)


def normalize(text: str) -> str:
    text = text.lower().replace("’", "'")
    words = [_CONTRACTIONS.get(w, w) for w in re.findall(r"[a-z0-9']+|[.!?]", text)]
    return " ".join(words).replace(" .", ".").replace(" !", "!").replace(" ?", "?").strip()


def wants_human(text: str) -> bool:
    """Whether a customer message asks to be handed to a person."""
    norm = normalize(text)
    if not any(p.search(norm) for p in _PATTERNS) or _ASKS_WHEN.search(norm):
        return False  # _ASKS_WHEN: the whole message is one question about the hours
    strong = re.search(
        r"\b(?:speak|talk|transfer|connect|escalat\w*|put me through|representative|supervisor|"
        r"real person|actual person|live (?:person|agent)|human being|not a bot|call me back)\b",
        norm,
    )
    return bool(strong) or not any(p.search(norm) for p in _NOT_A_REQUEST)


def low_confidence(best_relevance: float | None, threshold: float) -> bool:
    """No passage (None) or the best one under the threshold."""
    return best_relevance is None or best_relevance < threshold


def unhelpful_streak(flags: Sequence[bool], limit: int) -> bool:
    """Whether the last ``limit`` agent turns (flags, oldest first) were all unhelpful."""
    return limit > 0 and len(flags) >= limit and all(flags[-limit:])
