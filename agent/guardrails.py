"""Guardrails around a turn. Pure functions; the runtime applies them in this order:

1. ``check_input``: empty or oversize messages, and text no database can store (NUL, invalid
   UTF-8: ``agent.validation.check_chars``), are refused with an ``InputError``.
2. ``classify_input``: prompt-injection attempts, abuse and clearly off-topic requests get a
   polite refusal instead of a model call (the refusal is logged like any agent turn).
3. ``clean_passages``: instruction-like sentences inside retrieved documents are removed
   before the model sees them (an injection planted in a document is data, not a command).
4. ``OutputGuard``: every streamed prefix is checked before it is sent; a reply that would
   reveal the system prompt (any 6-word run, or any of its rare tokens such as codes and
   keys), a configured secret, a key-like string or abusive language is replaced by a refusal.
   The guard holds back the last few words of the stream so that a leak is caught before any
   part of it reaches the customer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agent.errors import InputError
from agent.validation import check_chars

REFUSAL_INJECTION = "I can't help with that request, but I'm happy to answer questions about {product}."
REFUSAL_ABUSE = (
    "I'd like to help, and I'll do my best if we keep things respectful. "
    "What can I do for you with your {product}?"
)
REFUSAL_OFF_TOPIC = (
    "I can only help with questions about {product} and your {company} account. "
    "Is there something about your purifier I can help with?"
)
REFUSAL_OUTPUT = "Sorry, I can't share that. Is there anything else about {product} I can help with?"

_INJECTION = re.compile(
    r"(?:\b(?:ignore|disregard|forget|override|bypass|skip)\b(?:\s+\w+){0,4}\s+"
    r"(?:instructions?|rules?|prompts?|guidelines?|directives?|policies|polic[yi]|restrictions?|guardrails?|above)\b"
    r"|\b(?:system|initial|original|hidden|secret|developer|internal)\s+(?:prompt|instructions?|message|rules?|notes?)\b"
    r"|\b(?:reveal|print|show|repeat|output|display|tell me|give me|share|leak|dump|recite|spell out|list|"
    r"translate|summari[sz]e|copy)\b(?:\s+\w+){0,4}\s+(?:your|the|all|every|these)\s+(?:\w+\s+){0,2}"
    r"(?:instructions?|prompts?|rules?|guidelines?|configuration|config|secrets?|keys?|passwords?|"
    r"credentials?|tokens?|notes?|codes?|directives?)\b"
    r"|\b(?:you are now|from now on you|act as|pretend (?:to be|you are|you're)|roleplay as|"
    r"jailbreak|developer mode|dan mode|do anything now|sudo mode|god mode|unfiltered)\b"
    r"|\b(?:what|who)\s+(?:did|does|has|have|was|were|is|are)\s+(?:\w+\s+){0,3}(?:other|another|previous|last|"
    r"earlier|prior)\s+(?:customers?|users?|people|person|clients?|conversations?|chats?)\b"
    r"|\b(?:other|another|previous|last|earlier|prior|different)\s+(?:customers?|users?|clients?)'?s?\s+"
    r"(?:\w+\s+){0,2}(?:data|details|conversations?|chats?|messages?|orders?|emails?|addresses|"
    r"phone|info(?:rmation)?|names?|accounts?)\b"
    r"|\b(?:other|another|previous|last|earlier|prior)\s+(?:customers?|users?|clients?)\s+"
    r"(?:ordered|bought|purchased|asked|said|wrote|paid)\b"
    r"|\b(?:api|secret|access|admin|private)[ _-]?(?:keys?|tokens?|passwords?|credentials?)\b"
    r"|\b(?:text|words|message|everything|all)\s+(?:above|before this|preceding)\b"
    r"|<\|im_start\|>|<\|system\|>|\[/?inst\]|###\s*(?:system|instruction)|\bbegin (?:system|admin)\b)",
    re.IGNORECASE,
)
_ABUSE = re.compile(
    r"\b(?:(?:you(?:'re| are)?|ur|this)\s+(?:\w+\s+){0,2}(?:stupid|idiot|idiotic|moron|dumb|useless piece|"
    r"pathetic|worthless|garbage|trash|retard\w*)"
    r"|f+u+c+k+\s*(?:you|off|u)|shut up|screw you|go to hell|piss off|stfu|kys|kill yourself"
    r"|(?:bitch|bastard|asshole|dickhead|cunt|motherf\w+))\b",
    re.IGNORECASE,
)
_OFF_TOPIC = re.compile(
    r"\b(?:write|compose|generate|create|make up|tell)\s+(?:me\s+)?(?:a|an|some)\s+"
    r"(?:poem|story|essay|song|lyrics|haiku|limerick|rap|novel|joke|speech|cover letter|tweet)\b"
    r"|\b(?:write|fix|debug|explain)\s+(?:me\s+)?(?:some\s+|a\s+|this\s+)?(?:python|javascript|java|sql|c\+\+|code|program|script|regex)\b"
    r"|\b(?:who (?:will|should) (?:win|i vote)|election|president of|prime minister|democrat|republican|"
    r"religion|is god real|stock tips?|which stocks?|crypto(?:currency)? (?:to buy|tips)|bitcoin price|"
    r"lottery numbers|homework|my essay|capital of|weather (?:in|today|tomorrow)|recipe for|"
    r"meaning of life|horoscope|dating advice)\b",
    re.IGNORECASE,
)
_KEYLIKE = re.compile(r"\b(?:sk|pk|rk|api|key|tok)[-_][A-Za-z0-9_\-]{12,}\b|\b[A-Fa-f0-9]{32,}\b")
_WORD = re.compile(r"[\w'-]+")


@dataclass(frozen=True)
class Verdict:
    kind: str  # "ok", "injection", "abuse", "off_topic"
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


def check_input(text: str | None, max_chars: int) -> str:
    """The message, stripped; ``InputError`` with a polite message if empty or too long, or
    if it holds what no database can store (NUL, invalid UTF-8)."""
    message = check_chars(text or "", "Your message").strip()
    if not message:
        raise InputError("Please type a message so I can help.")
    if len(message) > max_chars:
        raise InputError(
            f"Your message is {len(message):,} characters long; the limit is {max_chars:,}. "
            "Could you shorten it or split it into a few messages?"
        )
    return message


def classify_input(text: str, off_topic: bool = True) -> Verdict:
    if match := _INJECTION.search(text):
        return Verdict("injection", match.group(0))
    if match := _ABUSE.search(text):
        return Verdict("abuse", match.group(0))
    if off_topic and (match := _OFF_TOPIC.search(text)):
        return Verdict("off_topic", match.group(0))
    return Verdict("ok")


def refusal(kind: str, company: str, product: str) -> str:
    template = {
        "injection": REFUSAL_INJECTION,
        "abuse": REFUSAL_ABUSE,
        "off_topic": REFUSAL_OFF_TOPIC,
    }.get(kind, REFUSAL_OUTPUT)
    return template.format(company=company, product=product)


def clean_passage(text: str) -> str:
    """The passage without sentences that try to instruct the model."""
    sentences = re.split(r"(?<=[.!?\n])\s+", text)
    return " ".join(s for s in sentences if not _INJECTION.search(s)).strip()


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _rare_tokens(text: str) -> set[str]:
    """Tokens of a protected text that would identify it if they appeared in an answer:
    anything with a digit, or mixed/upper-case codes, at least 4 characters (and their parts)."""
    tokens: set[str] = set()
    for raw in re.findall(r"[A-Za-z0-9][A-Za-z0-9_\-]{3,}", text):
        if any(c.isdigit() for c in raw) or (raw.isupper() and len(raw) >= 5) or "_" in raw:
            tokens.add(raw.lower())
            tokens.update(
                p.lower() for p in re.split(r"[-_]", raw) if len(p) >= 4 and any(c.isdigit() for c in p)
            )
    return tokens


class OutputGuard:
    """Checks a reply incrementally against protected texts before it reaches the customer."""

    def __init__(
        self,
        protected: Iterable[str],
        secrets: Sequence[str] = (),
        allowed: Iterable[str] = (),
        shingle: int = 6,
    ):
        self.shingle = shingle
        allowed_text = " ".join(allowed)
        allowed_words = " ".join(_words(allowed_text))
        allowed_rare = _rare_tokens(allowed_text) | set(_words(allowed_text))
        self.shingles: set[str] = set()
        self.rare: set[str] = set()
        for text in protected:
            words = _words(text)
            for i in range(len(words) - shingle + 1):
                run = " ".join(words[i : i + shingle])
                if run not in allowed_words:
                    self.shingles.add(run)
            self.rare |= _rare_tokens(text) - allowed_rare
        self.secrets = [s.lower() for s in secrets if s and len(s) >= 4]
        self.holdback_chars = max([48, *(len(s) + 2 for s in self.secrets), *(len(t) + 2 for t in self.rare)])

    def violation(self, text: str) -> str | None:
        lowered = text.lower()
        for secret in self.secrets:
            if secret in lowered:
                return "secret"
        if any(token in lowered for token in self.rare):
            return "protected_token"
        words = _words(text)
        for i in range(len(words) - self.shingle + 1):
            if " ".join(words[i : i + self.shingle]) in self.shingles:
                return "system_prompt"
        if _KEYLIKE.search(text):
            return "key"
        if _ABUSE.search(text):
            return "abuse"
        return None

    def safe_prefix_length(self, text: str, final: bool) -> int:
        """How much of ``text`` may be sent now (everything, once final and clean)."""
        if final:
            return len(text)
        cut = max(0, len(text) - self.holdback_chars)
        while cut > 0 and not text[cut - 1].isspace():
            cut -= 1
        return cut
