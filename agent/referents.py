"""Asking back what "this" is: a message that points at a thing it never names. Pure.

"Does this animal have antlers?" or "What are the services offered by this state library?" as
the opening message of a conversation points at something the customer has in front of them.
Nothing in the conversation says which animal or which library it is. Retrieval then finds some
animal's page, and the model answers for that animal. MT-RAG labels such questions
UNDERSPECIFIED: the right reply asks which one is meant. The agent does that before it
retrieves anything:

    Which state library do you mean? Tell me its name and I'll look it up.

Later in a conversation, "this" usually points back at something said earlier, under another
word ("caribou" ... "this animal"; "the Hobsons House" ... "this hotel"), and a word match cannot
tell. A later message is asked back only when nothing earlier can be what it points at: no word
of the phrase is in an earlier turn, and the message is about something else, its meaning far
from every earlier turn's (cosine below ``LATER_TOPIC`` with the knowledge base's embedding
model). "In which country is this language officially spoken?" after a talk about a Romanesque
reliquary is such a jump (0.08); "Does this filter fit the Aero 300?" (0.39) and "How loud is
this fan on Turbo?" (0.20) after a talk about the Aero's warranty stay. Without an embedding
model only the opening message is read.

A later "the X" is asked too, when X is a kind of thing with a name of its own, said nowhere
earlier, and the message is about something new: "When was the famous basketball player born?"
after a talk about cells. Most "the X" point back ("Is the view nice?", "What is the price?").

The pointer must be "this" or "these" plus a common noun: "that" is too often a conjunction
("Is that normal?"). The thing is named when:

- the phrase ends in a name or a model ("this Aero 500", "this Echo Dot"),
- the message says something before it that it may point back at ("My Aero shows E3. What does
  this error mean?", "My Aero 300 shows E3, what does this error mean?"),
- the noun is the product itself ("this purifier", for a company that sells air purifiers), or
- it is no thing at all ("this morning", "this way", "this amount of data"), or the company's own
  ("this app", "this store").

Only the sentence that asks counts.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence

from agent.grounding import Embed, _stem, sentences


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_POINTER = re.compile(r"\b(?:this|these)\s+((?:[A-Za-z0-9][\w'’-]*\s*){1,4})", re.I)
# Words after "this" that name no thing (a time, a way, an amount, the chat itself), the company's
# own ("this app", "this store"), or where the customer is ("Does this place have a view?").
_NOT_A_THING = _words(
    """year years month months week weeks weekend morning evening afternoon night tonight day days time
    times moment point season summer winter spring fall autumn way ways case cases page site website
    chat conversation question questions message one ones amount amounts number lot bit kind sort
    type stuff thing things info information issue problem situation part step list coming past place
    places location locations spot monday tuesday wednesday thursday friday saturday
    sunday product products company brand business app store shop service services"""
)
# Where the noun phrase ends: a function word, a verb's or an adverb's ending, a particle.
_ENDS = _words(
    """is was are were be been being has have had does do did can could will would should may might
    must in on at of for to from with by about as than and or but if when while which who whom whose
    what where why how it its they them their i me my we our you your he she his her a an the any
    some every each all no not so very too also just only still that these those this there here
    now then out up down off over back away around through into onto"""
)
# Verbs a question puts after its subject ("Does this filter fit?", "Does this chain operate in
# India?"): a noun phrase ends before them. Without a tagger, the common ones.
_VERBS = _words(
    """fit fits work works come comes need needs take takes cost costs use uses run runs last lasts
    mean means support supports include includes ship ships arrive arrives go goes get gets make
    makes say says show shows help helps operate operates publish publishes offer offers require
    requires allow allows cover covers charge charges contain contains apply applies happen happens
    start starts stop stops turn turns connect connects matter matters count counts qualify
    qualifies look looks feel feels sound sounds seem seems break breaks stay stays keep keeps hold
    holds weigh weighs open opens close closes sell sells serve serves accept accepts provide
    provides lend lends hunt live lives grow grows eat eats belong belongs exist exists play plays
    known spoken written born made given taken seen shown done held sold built found kept worn"""
)
# A later message is about something new when its meaning is this far from every earlier turn's
# (cosine with the knowledge base's embedding model). Chosen on MT-RAG's training conversations:
# their later UNDERSPECIFIED "this" questions lie at 0.09, 0.11, 0.14 and 0.41, the one of another
# label at 0.51. In the DSTC11 and sample conversations a later "this hotel" or "this fan" points
# back; one of their 9,135 customer messages falls below it (0.13).
LATER_TOPIC = 0.15

# "the X" points back far more often than "this X" does ("Is the view nice?" in a talk about a
# hotel, "the price", "the internet"): later, only "the" plus a kind of thing that has a name of
# its own (a person's role, a place, a group, a work, a creature, an event) is asked, when no word
# of the phrase was said earlier and the message is about something new. "When was the famous
# basketball player born?" after a talk about cells is asked which player; "Are there views of
# the city?" in a talk about a hotel is not (0.33). Not the company's own ("the team", "the
# department", "the store"): a customer means theirs.
_KINDS = _words(
    """actor actress singer musician rapper artist painter author writer poet novelist director
    producer player athlete coach president king queen prince princess emperor leader founder
    inventor scientist astronaut character protagonist hero villain band chain franchise
    corporation university college school hospital church court ministry country nation city town
    village county province region island river lake mountain stadium park museum library book
    novel movie film show series sitcom song album episode painting poem war battle election
    festival tournament championship animal species breed bird creature"""
)
# Below this cosine with every earlier turn, a later "the X" of a named kind is about something
# new. Chosen on MT-RAG's training conversations: their UNDERSPECIFIED "the X" of such a kind
# lie at 0.01 to 0.15 (0.18 with a title, "the Prime Minister's office", which is left as named),
# the closest of another label at 0.30 ("the corporation"); DSTC11's closest at 0.33.
LATER_KIND_TOPIC = 0.25
_THE = re.compile(r"\bthe\s+((?:[A-Za-z0-9][\w'’-]*\s*){1,4})", re.I)
_POSSESSIVE = re.compile(r"['’]s$")

_ASKING = re.compile(
    r"\?\s*$|^\s*(?:tell|show|give|explain|describe|list|name|please)\b|\b(?:can|could|would) you\b", re.I
)


def _phrase(words: Sequence[str]) -> list[str]:
    """The noun phrase that starts ``words``: up to a function word, a common verb ("this filter
    fit"), an "-ly", "-ed" or "-ing" word ("this county recognized for ..."), or a particle ("talk
    this through")."""
    out: list[str] = []
    for word in words:
        low = word.lower().strip("'’")
        if low in _ENDS or low in _VERBS or (len(low) > 4 and low.endswith(("ly", "ed", "ing"))):
            break
        out.append(word)
    return out


_COPULA = _words("is are was were")


def _predicate_off(sentence: str, phrase: list[str], follows: str) -> list[str]:
    """``phrase`` without what a question "Is this ...?" says of it: "Is this purifier quiet?",
    "is this song famous in Asia?" -> "purifier", "song". Only where the phrase runs to the
    sentence's end or a function word (``follows``: the text after it): "Is this California county
    recognized for ..." keeps both."""
    after = follows.split()[:1]
    ends = not after or not after[0].strip("?!.,") or after[0].lower().strip("?!.,") in _ENDS
    if len(phrase) > 1 and ends and sentence.split()[0].lower() in _COPULA:
        return phrase[:-1]
    return phrase


_I = re.compile(r"I(?:$|['’])")  # "I", "I'm", "I've": the customer, not a name


def _said_before(sentences_before: str, start: str) -> bool:
    """Whether the message says something before the pointer that it may point back at: an earlier
    sentence of more than a greeting ("My Aero shows E3. What does this error mean?"), or a name or
    a figure earlier in the same sentence ("My Aero 300 shows E3, what does this error mean?")."""
    if len(sentences_before.split()) > 3:
        return True
    words = start.split()
    return any(any(c.isdigit() for c in w) or (w[:1].isupper() and not _I.match(w)) for w in words[1:])


def unnamed(
    message: str, earlier: Sequence[str], product: Iterable[str] = (), embed: Embed | None = None
) -> str | None:
    """The thing ``message`` points at and never names ("this state library"), or None.
    ``earlier``: the conversation's earlier turns. ``product``: words that name what the company
    sells ("Halcyon Aero air purifier"): "this purifier" is the customer's own. ``embed``: the
    knowledge base's embedding model; without it a later message (any earlier turn) is None."""
    before = [text for text in earlier if text.strip()]
    if before and embed is None:
        return None
    own = {_stem(w.lower()) for text in product for w in re.findall(r"[A-Za-z]+", text)}
    said_earlier = {_stem(w.lower()) for text in before for w in re.findall(r"[A-Za-z]+", text)}
    said = [part.strip() for part in sentences(message)]
    for at, sentence in enumerate(said):
        if not _ASKING.search(sentence):
            continue
        for found in _POINTER.finditer(sentence):
            words = found.group(1).split()
            phrase = _phrase(words)
            follows = words[len(phrase)] if len(phrase) < len(words) else sentence[found.end(1) :]
            phrase = _predicate_off(sentence, phrase, follows)
            if not phrase or phrase[0].lower() in _NOT_A_THING:
                continue
            last = phrase[-1].strip("'’")
            if any(c.isdigit() for c in last) or last[:1].isupper() or last.lower() in _NOT_A_THING:
                continue  # "this Aero 500", "this Echo Dot": named
            if _stem(last.lower()) in own or _said_before(" ".join(said[:at]), sentence[: found.start()]):
                continue
            if before and (
                any(_stem(w.lower().strip("'’")) in said_earlier for w in phrase)
                or _topic(message, before, embed) >= LATER_TOPIC
            ):
                return None  # a later message that may point back at something said
            return " ".join(phrase)
    if before:
        return _unnamed_kind(message, before, said_earlier, own, embed)
    return None


# A sentence that points back at what the conversation is about ("Is it safe for the bird?",
# "Does it work in the city?"): its "the X" is someone or somewhere of the customer's own.
_BACK = re.compile(r"\b(?:it|its|it's|they|them|their|theirs)\b", re.I)


def _unnamed_kind(
    message: str, before: Sequence[str], said_earlier: set[str], own: set[str], embed: Embed | None
) -> str | None:
    """A later message's "the X" where X is a kind of thing with a name of its own (``_KINDS``),
    no word of the phrase was said earlier, and the message is about something new (below
    ``LATER_KIND_TOPIC``): "What awards has the actor received?" after a talk about a song's
    sample -> "actor"; "the country's stadium" -> "country". Not in a sentence that points back
    at the conversation's thing ("Is it safe for the bird?") or names the product ("Is the Aero
    safe for the bird?"): the bird is the customer's own."""
    for sentence in sentences(message):
        if not _ASKING.search(sentence) or _BACK.search(sentence):
            continue
        if {_stem(w.lower()) for w in re.findall(r"[A-Za-z]+", sentence)} & own:
            continue
        for found in _THE.finditer(sentence):
            phrase = _phrase(found.group(1).split())
            owner = next((i for i, w in enumerate(phrase) if _POSSESSIVE.search(w)), None)
            if owner is not None:  # "the country's stadium": the country is what is unnamed
                phrase = phrase[: owner + 1]
            phrase = [_POSSESSIVE.sub("", w.strip("?!.,;:")) for w in phrase]
            head = phrase[-1] if phrase else ""
            if head.lower() not in _KINDS and head.lower().removesuffix("s") not in _KINDS:
                continue
            if head[:1].isupper() or any(_stem(w.lower().strip("'’")) in said_earlier for w in phrase):
                continue  # a title ("the Prime Minister"), or something said before
            if _topic(message, before, embed) >= LATER_KIND_TOPIC:
                return None
            return " ".join(phrase)
    return None


def _topic(message: str, before: Sequence[str], embed: Embed | None) -> float:
    """How close ``message`` is in meaning to the closest earlier turn (cosine)."""
    import numpy as np

    assert embed is not None
    vectors = np.asarray(embed([message, *before]), dtype=np.float32)
    return float((vectors[1:] @ vectors[0]).max())


def ask_text(thing: str) -> str:
    """The question back: "Which state library do you mean? Tell me its name and I'll look it up." """
    return f"Which {thing} do you mean? Tell me its name and I'll look it up."


_ASKED = re.compile(r"^\s*Which (.+?) do you mean\? Tell me its name and I'll look it up\.\s*$")


def asked(agent_text: str) -> str | None:
    """The thing the agent asked about, when ``agent_text`` is ``ask_text``'s question, or None.
    Read from the text, so a conversation sent whole (the OpenAI-compatible API) is read alike."""
    found = _ASKED.match(agent_text)
    return found.group(1) if found else None


def asked_as(message: str, history: Sequence[tuple[str, str]]) -> str:
    """What the answer check reads as the question: after "Which filter do you mean?", the
    customer's first question with their answer ("How much does this filter cost? the AF-500P"),
    so the check knows a price is asked for; otherwise ``message``. ``history``: (role, text)."""
    if len(history) < 2:
        return message
    (asker, question), (role, said) = history[-2], history[-1]
    if asker == "customer" and role == "agent" and asked(said) is not None:
        return f"{question.rstrip()} {message.strip()}"
    return message


# "a new one", "another one": the customer wants another of the thing they just asked about.
_ANOTHER_ONE = re.compile(
    r"\b(?:an?\s+(?:new|replacement|spare|extra|second|fresh)\s+one|another\s+one)\b", re.I
)
# A thing an earlier message names: "the filter", "my pre-filter sleeve", "a replacement cover",
# up to a word that says something of it ("my sleeve tore", "the filter is", "the cover on").
_THING = re.compile(r"\b(?:the|my|a|an|this|your)\s+([a-z][\w-]*(?:\s+[a-z][\w-]*){0,2})", re.I)
_THING_ENDS = re.compile(
    r"^(?:is|are|was|were|has|have|had|does|do|did|will|can|won't|isn't|doesn't|keeps?|tore|broke|"
    r"for|on|in|at|with|to|of|from|and|or|but|that|which|it|when|after|instead|than|[a-z]+ed)$",
    re.I,
)


def one_meant(
    message: str, history: Sequence[tuple[str, str]], vocabulary: Collection[str] | None = None
) -> str:
    """``message`` with "a new one" or "another one" naming the first thing (one whose last word
    the help pages have, ``vocabulary``) that the customer's latest message naming one named:
    "How much is a new one for the Aero 300?" after "Can I wash the filter?" -> "How much is a
    new filter for the Aero 300?"; "can I buy just a new one of those?" after "How do I clean
    the mesh sleeve on my Aero 300's filter?" -> "... a new mesh sleeve ...". Read as it was
    written, retrieval and the answer check took "one" for the purifier, and "The Aero 300 is
    priced at $199" was sent. Left as it is: a message that names a thing before "a new one"
    ("wash the filter instead of buying a new one"), and "the new one", which is as often the
    new email address or the replacement unit as another of the thing named. ``history``:
    (role, text), oldest first."""
    found = _ANOTHER_ONE.search(message)
    if found is None:
        return message
    known = {w.lower() for w in vocabulary} if vocabulary is not None else None
    if _things(message[: found.start()], known):
        return message  # "wash the filter instead of buying a new one": the message says it
    earlier = (_things(text, known) for role, text in reversed(history) if role == "customer")
    thing = next((things[0] for things in earlier if things), None)
    if thing is None:
        return message
    wording = found.group(0)
    return message.replace(wording, re.sub(r"\bone\b", thing, wording, flags=re.I), 1)


# Words after "a" or "the" that name no thing one could have another of ("a lot", "the same").
_NOT_THINGS = frozenset(
    (
        *("lot", "bit", "few", "little", "while", "couple", "minute", "moment", "second", "day"),
        *("week", "month", "year", "way", "time", "same", "question", "problem", "issue", "thing"),
        *("things", "one", "other", "rest"),
    )
)


def _things(text: str, known: Collection[str] | None = None) -> list[str]:
    """The things ``text`` names after an article or a possessive, in order ("the filter"); with
    ``known`` (the help pages' words), only those whose last word the pages have."""
    found = (_thing_words(m.group(1)) for m in _THING.finditer(text))
    return [
        t
        for t in found
        if t and t.split()[0].lower() not in _NOT_THINGS and (known is None or t.split()[-1].lower() in known)
    ]


def _thing_words(phrase: str) -> str:
    """The words of ``phrase`` up to the first that says something of the thing."""
    words = phrase.split()
    end = next((i for i, w in enumerate(words) if _THING_ENDS.match(w)), len(words))
    return " ".join(words[:end])
