"""Guardrails around a turn. Pure functions; the runtime applies them in this order:

1. ``check_input``: empty or oversize messages, and text no database can store (NUL, invalid
   UTF-8: ``agent.validation.check_chars``), are refused with an ``InputError``.
2. ``classify_input``: prompt-injection attempts, abuse and clearly off-topic requests get a
   polite refusal instead of a model call (the refusal is logged like any agent turn).
   ``small_talk``: a message that is only a greeting, thanks, goodbye, "how are you" or "are you
   a bot?" gets a short on-brand answer (``small_talk_reply``) without retrieval or a hand-off.
   The whole message must be small talk: "hi, my filter light is red" is a question.
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
    # Asking for the assistant's own instructions, secrets or internal notes. "your rules" always
    # counts; "the rules", "all the codes" only with a verb that discloses ("reveal", "recite") or
    # a word that makes them internal ("staff", "hidden"): "Could you give me all the placement
    # rules from the setup guide?" and "Can you list the error codes?" are customers' questions.
    r"|\b(?:reveal|print|show|repeat|output|display|tell me|give me|share|leak|dump|recite|spell out|list|"
    r"translate|summari[sz]e|copy)\b(?:\s+\w+){0,4}\s+(?:your\s+(?:\w+\s+){0,2}"
    r"(?:instructions?|prompts?|rules?|guidelines?|configuration|config|secrets?|keys?|passwords?|"
    r"credentials?|tokens?|notes?|codes?|directives?)"
    r"|(?:the|all|every|these)\s+(?:\w+\s+){0,2}(?:prompts?|configuration|config|secrets?|credentials?|"
    r"tokens?|directives?)"
    r"|(?:the|all|every|these)\s+(?:\w+\s+){0,1}(?:staff|internal|hidden|secret|private|admin|system|"
    r"confidential)\s+(?:\w+\s+){0,1}(?:instructions?|rules?|guidelines?|keys?|passwords?|notes?|codes?))\b"
    r"|\b(?:reveal|print|repeat|output|leak|dump|recite|spell out|translate|summari[sz]e|copy)\b"
    r"(?:\s+\w+){0,4}\s+(?:the|all|every|these)\s+(?:\w+\s+){0,2}"
    r"(?:instructions?|rules?|guidelines?|keys?|passwords?|notes?|codes?)\b"
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


SMALL_TALK_REPLIES = {
    "greeting": "Hi! I'm {agent_name}, the {company} assistant. How can I help with your {product} today?",
    "how_are_you": "I'm doing well, thanks for asking! How can I help with your {product} today?",
    "thanks": "You're welcome! Is there anything else I can help you with?",
    "goodbye": "Thanks for contacting {company}. Have a great day!",
    "bot": "Yes, I'm {agent_name}, {company}'s virtual assistant. I can answer questions about your "
    "{product}, and connect you with a member of our team whenever you like.",
    "ack": "Great! Let me know if there's anything else I can help with.",
}
# Each phrase, with the kind it signals; a message is small talk when phrases (and filler) cover
# all of it. Order matters only within one alternation (longest first).
_SMALL_TALK = [
    (
        "bot",
        r"(?:are|r) (?:you|u) (?:an? |the )?(?:real |actual )?(?:bot|robot|ai|chat ?bot|machine|computer|"
        r"human|real person|person|real|automated|virtual assistant)"
        r"|(?:am i|are we) (?:talking|chatting|speaking) (?:to|with) (?:an? |the )?(?:real |actual )?"
        r"(?:bot|robot|ai|chat ?bot|machine|computer|human|person|real person)"
        r"|is (?:this|that|it) (?:an? |the )?(?:real |actual )?(?:bot|robot|ai|chat ?bot|machine|computer|"
        r"human|real person|person|automated(?: \w+)?)"
        r"|who (?:are|r) (?:you|u)|what are you",
    ),
    (
        "how_are_you",
        r"how (?:are|r) (?:you|u|things)(?: doing)?(?: today)?|how(?:'s| is) it going|"
        r"how do you do|how have you been|what'?s up|whats up|sup",
    ),
    (
        "thanks",
        r"(?:thank (?:you|u)|thanks|thx|ty|cheers|much appreciated|appreciate it|"
        r"i appreciate (?:it|that|your help|the help))"
        r"(?: (?:so|very) much| a lot| a bunch| again| for (?:your|the|all (?:your|the)) help| for helping(?: me)?)*"
        r"|(?:that|this|you) (?:was|were|is|are|has been|have been) (?:very |really |super |so )?"
        r"(?:helpful|great|perfect|a great help|a big help)",
    ),
    (
        "goodbye",
        r"good ?bye|bye(?: bye| now| for now)?|see (?:you|ya|u)(?: later| soon)?|farewell|"
        r"(?:have|wish you) a (?:good|great|nice|lovely) (?:day|evening|night|weekend|one)|"
        r"good ?night|take care|talk (?:to you )?(?:later|soon)|ttyl|that'?s all(?: for (?:now|today))?|"
        r"that is all|i'?m (?:all )?(?:done|set|good)|all (?:done|set|good)|nothing else",
    ),
    (
        "greeting",
        r"hello|hi|hiya|hey(?: there)?|howdy|greetings|yo|good (?:morning|afternoon|evening|day)|"
        r"morning|afternoon|evening|nice to meet you|pleased to meet you|(?:is )?any(?:one|body) (?:there|here|home)",
    ),
    (
        "ack",
        r"ok(?:ay)?|k|cool|great|awesome|perfect|got it|understood|sounds good|alright|all right|"
        r"nice|wonderful|excellent|brilliant|lovely|noted|sure|fine|no worries|no problem|np",
    ),
]
_SMALL_TALK_RE = re.compile(
    "|".join(f"(?P<{kind}>{pattern})" for kind, pattern in _SMALL_TALK), re.IGNORECASE
)
_FILLER = re.compile(
    r"(?:there|again|everyone|all|folks|team|friend|mate|buddy|guys|so|oh|ah|well|and|then|"
    r"too|very|much|really|just|again|please|pls|by the way|btw|lol|haha|:\)|:-\)|:d|"
    r"you|u|[!?.,;:~\-]+|[\U0001F300-\U0001FAFF\u2600-\u27BF]+)",
    re.IGNORECASE,
)
_SMALL_TALK_MAX_CHARS = 80
# When a message holds several kinds, the answer follows the most specific one.
_SMALL_TALK_PRIORITY = ("bot", "goodbye", "thanks", "how_are_you", "greeting", "ack")


def small_talk(text: str, names: Sequence[str] = ()) -> str | None:
    """The kind of small talk ``text`` is (see ``SMALL_TALK_REPLIES``), or None when it holds
    anything else: a question, a problem, a request. ``names`` (the assistant's, the company's)
    may appear in it ("thanks Aria")."""
    rest = " ".join(text.lower().replace("’", "'").split())
    if not rest or len(rest) > _SMALL_TALK_MAX_CHARS:
        return None
    for name in names:
        if name:
            rest = re.sub(rf"\b{re.escape(name.lower())}\b", " ", rest)
    kinds: set[str] = set()
    position = 0
    while position < len(rest):
        if rest[position].isspace():
            position += 1
            continue
        phrase = _SMALL_TALK_RE.match(rest, position)
        if phrase and _ends_a_word(rest, phrase.end()):
            kinds.add(next(k for k, v in phrase.groupdict().items() if v is not None))
            position = phrase.end()
            continue
        filler = _FILLER.match(rest, position)
        if filler and _ends_a_word(rest, filler.end()):
            position = filler.end()
            continue
        return None
    return next((kind for kind in _SMALL_TALK_PRIORITY if kind in kinds), None)


def _ends_a_word(text: str, end: int) -> bool:
    return end >= len(text) or not (text[end].isalnum() or text[end] == "'") or not text[end - 1].isalnum()


def small_talk_reply(kind: str, company: str, product: str, agent_name: str) -> str:
    """The short, on-brand answer to a kind of small talk."""
    return SMALL_TALK_REPLIES[kind].format(company=company, product=product, agent_name=agent_name)


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
