"""Which values of the configured metadata fields a piece of dialogue names; pure, no models.

The vocabulary is built from the index itself (the distinct values of each entity field), never from
knowledge of one dataset. Matching is forgiving (case, accents, apostrophes, "guest house" written
"guesthouse", one typo in a long word that is not itself a word of the documents) and weighs each
word of a name by how specific it is: a word that also appears in the documents of many other values
("hotel", "cambridge", "house") counts little; one found only in this value's documents
("allenbell") counts fully.

A value is named by a span of text when either
- every word of the name appears, without gaps, or
- the words found cover at least ``threshold`` of the name's weight and one of them is distinctive
  (seen in the documents of few values).
When two names claim the same words, the better-covered (then heavier) name wins.

Which metadata fields hold such names can be inferred from the documents' metadata alone
(``infer_entity_fields``): short names shared by a few documents each, with many distinct values.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from knowledge.text import words

EntityKey = tuple[str, str]  # (metadata field, value)
_CACHE_SIZE = 20_000


@dataclass(frozen=True)
class Name:
    key: EntityKey
    tokens: tuple[str, ...]
    weights: tuple[float, ...]

    @property
    def total(self) -> float:
        return sum(self.weights)


@dataclass(frozen=True)
class Mention:
    key: EntityKey
    coverage: float
    weight: float
    positions: frozenset[int]


class EntityMatcher:
    """Finds mentions of known entity values in text."""

    def __init__(
        self,
        values: Mapping[EntityKey, Iterable[str]],
        *,
        threshold: float = 0.7,
        distinctive_share: float = 0.05,
    ):
        """``values``: each entity value -> the texts of its chunks (to learn word specificity)."""
        self.threshold = threshold
        self._cache: dict[str, tuple[EntityKey, ...]] = {}
        self.names: list[Name] = []
        self._by_token: dict[str, list[int]] = defaultdict(list)  # name word -> names holding it
        self._surface: dict[str, set[str]] = defaultdict(set)  # written form -> name words it stands for
        self._fuzzy: dict[str, set[str]] = defaultdict(set)  # one-letter deletion -> written forms
        spread, self._vocabulary = _spread(values)
        total = max(1, len(values))
        self._distinctive_cap = max(2.0, distinctive_share * total)
        self._spread = spread
        for key in values:
            tokens = tuple(words(key[1]))
            if tokens:
                weights = tuple(math.log((total + 1) / (spread.get(t, 0) + 1)) ** 2 for t in tokens)
                self._add(Name(key, tokens, weights))

    def _add(self, name: Name) -> None:
        self.names.append(name)
        forms = [(t, {t}) for t in name.tokens]
        # "guest house" is also written "guesthouse".
        forms += [(a + b, {a, b}) for a, b in zip(name.tokens, name.tokens[1:], strict=False)]
        for token in set(name.tokens):
            self._by_token[token].append(len(self.names) - 1)
        for form, covers in forms:
            self._surface[form] |= covers
            for variant in _deletions(form):
                self._fuzzy[variant].add(form)

    def __len__(self) -> int:
        return len(self.names)

    def find(self, text: str) -> list[EntityKey]:
        """Entity values named in ``text``, best-covered first (memoised: turns recur in every search)."""
        found = self._cache.get(text)
        if found is None:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            found = self._cache[text] = tuple(self._find(text))
        return list(found)

    def _find(self, text: str) -> list[EntityKey]:
        matches = self._matches(words(text))
        hits: dict[int, list[int]] = defaultdict(list)  # name index -> text positions matching a name word
        for pos, found in enumerate(matches):
            for idx in {i for name_token in found for i in self._by_token[name_token]}:
                hits[idx].append(pos)
        mentions = [m for idx, positions in hits.items() if (m := self._score(idx, positions, matches))]
        return [m.key for m in _resolve(mentions)]

    def _matches(self, tokens: list[str]) -> list[set[str]]:
        """For each text position, the name words it (alone, or joined with the next word) stands for."""
        matches: list[set[str]] = [self._lookup(tok) for tok in tokens]
        for pos in range(len(tokens) - 1):
            joined = self._surface.get(tokens[pos] + tokens[pos + 1])
            if joined:
                matches[pos] = matches[pos] | joined
                matches[pos + 1] = matches[pos + 1] | joined
        return matches

    def _lookup(self, token: str) -> set[str]:
        if token in self._surface:
            return set(self._surface[token])
        # A real word of the documents is not a typo ("place" is not "palace").
        if len(token) < 4 or token in self._vocabulary:
            return set()
        forms = set(self._fuzzy.get(token, ()))  # a letter missing
        for variant in _deletions(token):
            forms |= self._fuzzy.get(variant, set())  # a letter wrong
            if variant in self._surface:
                forms.add(variant)  # a letter too many
        return {t for form in forms if len(form) >= 5 for t in self._surface[form]}

    def _score(self, idx: int, positions: list[int], matches: Sequence[set[str]]) -> Mention | None:
        name = self.names[idx]
        span = len(name.tokens) + 2
        best: Mention | None = None
        for start in sorted(set(positions)):
            window = sorted({p for p in positions if start <= p < start + span})
            covered = {t for p in window for t in matches[p]} & set(name.tokens)
            weight = sum(w for t, w in zip(name.tokens, name.weights, strict=True) if t in covered)
            coverage = weight / name.total if name.total > 0 else 0.0
            if not self._accept(name, covered, coverage, window):
                continue
            mention = Mention(name.key, coverage, weight, frozenset(window))
            if best is None or (mention.coverage, mention.weight) > (best.coverage, best.weight):
                best = mention
        return best

    def _accept(self, name: Name, covered: set[str], coverage: float, window: list[int]) -> bool:
        if covered == set(name.tokens) and window[-1] - window[0] < len(window):
            return True  # the whole name, written without gaps
        distinctive = any(self._spread.get(t, 0) <= self._distinctive_cap for t in covered)
        return distinctive and coverage >= self.threshold


def _resolve(mentions: list[Mention]) -> list[Mention]:
    """Keep the best mention for each span of words: better coverage, then more weight, first."""
    kept: list[Mention] = []
    used: set[int] = set()
    for mention in sorted(mentions, key=lambda m: (-m.coverage, -m.weight, m.key)):
        if mention.positions & used:
            continue
        kept.append(mention)
        used |= mention.positions
    return kept


def _spread(values: Mapping[EntityKey, Iterable[str]]) -> tuple[dict[str, int], set[str]]:
    """For each word of any name, in how many values' documents it appears; and every word seen."""
    name_words = {t for key in values for t in words(key[1])}
    seen: dict[str, set[EntityKey]] = defaultdict(set)
    vocabulary: set[str] = set()
    for key, texts in values.items():
        present = {t for text in texts for t in words(text)}
        vocabulary |= present
        for token in (present & name_words) | set(words(key[1])):
            seen[token].add(key)
    return {token: len(keys) for token, keys in seen.items()}, vocabulary


def _deletions(token: str) -> list[str]:
    if len(token) < 4:
        return []
    return [token[:i] + token[i + 1 :] for i in range(len(token))]


# -- which metadata fields name entities ---------------------------------------------------------

MIN_VALUES = 8  # fewer distinct values is a category (domain, doc_type, audience), not names
_NAME_CHARS = 80
_NAME_WORDS = 8
_NAME_SHARE = 0.9  # share of a field's values that must look like names
_REPEAT_SHARE = 0.5  # share of its documents that must share their value with another document


def infer_entity_fields(
    documents: Sequence[Mapping[str, Any]], *, min_values: int = MIN_VALUES
) -> tuple[str, ...]:
    """The metadata fields that name what each document is about, from one metadata mapping per
    document; most distinct values first.

    A field is a candidate when, over the documents carrying it,
    - its values are names: strings with a letter, at most 80 characters and 8 words, not JSON
      (at least 90% of them);
    - they repeat: at least half of the documents share their value with another document (a
      per-document id or title does not);
    - they are many: at least ``min_values`` distinct values (``domain`` or ``doc_type`` have two).
    Of two candidates where one groups the documents more finely than the other (names within
    product lines), only the finer is kept; of two that group them alike (a name and its id), the
    one whose values are more letters and spaces.
    """
    names = dict.fromkeys(name for meta in documents for name in meta)
    columns = {name: [meta.get(name) for meta in documents] for name in names}
    candidates = sorted(
        (name for name, column in columns.items() if _names_entities(column, min_values)),
        key=lambda name: (-_wordiness(columns[name]), name),
    )
    kept = [
        name
        for i, name in enumerate(candidates)
        if not any(_refines(columns[other], columns[name]) for other in candidates[:i])
        and not any(_strictly_refines(columns[other], columns[name]) for other in candidates[i + 1 :])
    ]
    return tuple(sorted(kept, key=lambda name: (-len(set(columns[name]) - {None}), name)))


def _names_entities(column: list[Any], min_values: int) -> bool:
    values = [v for v in column if v is not None]
    if sum(map(_is_name, values)) < _NAME_SHARE * len(values):
        return False
    counts: dict[Any, int] = defaultdict(int)
    for value in values:
        counts[value] += 1
    repeated = sum(n for n in counts.values() if n > 1)
    return len(counts) >= min_values and repeated >= _REPEAT_SHARE * len(values)


def _is_name(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    text = value.strip()
    return (
        0 < len(text) <= _NAME_CHARS
        and len(text.split()) <= _NAME_WORDS
        and text[0] not in "[{"
        and any(c.isalpha() for c in text)
    )


def _refines(fine: list[Any], coarse: list[Any]) -> bool:
    """Whether documents with the same ``fine`` value (or none) always have the same ``coarse`` one."""
    seen: dict[Any, Any] = {}
    return all(seen.setdefault(f, c) == c for f, c in zip(fine, coarse, strict=True))


def _strictly_refines(fine: list[Any], coarse: list[Any]) -> bool:
    return _refines(fine, coarse) and not _refines(coarse, fine)


def _wordiness(values: Iterable[Any]) -> float:
    text = "".join(str(v) for v in values if v is not None)
    return sum(c.isalpha() or c == " " for c in text) / max(1, len(text))
