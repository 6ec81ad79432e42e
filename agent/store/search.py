"""Full-text search over the turns of the log.

Invariant: **full-text search is ranked, never ``LIKE``**: FTS5 + bm25 (porter stemming) on SQLite,
``tsvector`` + ``ts_rank`` (English stemming) on PostgreSQL, over the indexes that
``migrations.m001_initial`` keeps in step with ``turns`` inside every writing transaction (so a
committed turn is searchable at once). Queries take web-search syntax (terms are ANDed,
``"a phrase"``, ``or``, ``-term``) and no user input can make a query raise. Ranks are "higher is
better" but not comparable between backends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from agent.store.checks import check_page
from agent.store.engine import Database
from agent.store.rows import plain

SNIPPET_MARK = "**"  # around matched terms in search snippets (bold in the console's Markdown)


@dataclass(frozen=True)
class SearchResult:
    conversation_id: str
    turn_id: str
    role: str
    snippet: str  # matched terms between SNIPPET_MARKs
    rank: float  # higher is better; comparable within one backend only

    def to_dict(self) -> dict[str, Any]:
        return plain(self)  # type: ignore[no-any-return]


class FullTextSearch:
    """``search``; ``LogStore`` provides ``_db``."""

    _db: Database

    def search(self, query: str, *, limit: int = 20, owner: str | None = None) -> list[SearchResult]:
        """Turns matching ``query``, best first (see the module docstring for the syntax)."""
        check_page(limit, 0)
        query = query.replace("\x00", " ")
        match = fts5_query(query)
        if match is None:  # nothing but stop words or exclusions: no results on either backend
            return []
        owner_join = "JOIN conversations c ON c.id = t.conversation_id AND c.owner = :owner" if owner else ""
        params: dict[str, Any] = {"limit": limit, "owner": owner}
        if self._db.dialect == "sqlite":
            params["match"] = match
            sql = _sqlite_search(owner_join)
        else:
            params["q"] = query
            sql = _postgres_search(owner_join)

        def work(conn: Connection) -> list[SearchResult]:
            rows = conn.execute(text(sql), params)
            return [
                SearchResult(r.conversation_id, r.turn_id, r.role, r.snippet, float(r.rank)) for r in rows
            ]

        return self._db.run(work)


def _sqlite_search(owner_join: str) -> str:
    return (
        "SELECT t.conversation_id, t.id AS turn_id, t.role, "
        f"snippet(turns_fts, 0, '{SNIPPET_MARK}', '{SNIPPET_MARK}', '…', 16) AS snippet, "
        "-bm25(turns_fts) AS rank "
        f"FROM turns_fts JOIN turns t ON t.pk = turns_fts.rowid {owner_join} "
        "WHERE turns_fts MATCH :match ORDER BY bm25(turns_fts), t.pk DESC LIMIT :limit"
    )


def _postgres_search(owner_join: str) -> str:
    # Rank and limit first, then build headlines only for the rows returned.
    return (
        "SELECT m.conversation_id, m.turn_id, m.role, ts_headline('english', m.text, m.q, "
        f"'StartSel={SNIPPET_MARK}, StopSel={SNIPPET_MARK}, MaxWords=24, MinWords=8') AS snippet, "
        "m.rank FROM (SELECT t.conversation_id, t.id AS turn_id, t.role, t.text, t.pk, q.q, "
        "ts_rank(t.text_tsv, q.q, 1) AS rank "
        "FROM turns t CROSS JOIN websearch_to_tsquery('english', :q) AS q(q) "
        f"{owner_join} WHERE t.text_tsv @@ q.q ORDER BY rank DESC, t.pk DESC LIMIT :limit) m "
        "ORDER BY m.rank DESC, m.pk DESC"
    )


# -- web-search syntax -> FTS5 (SQLite) ----------------------------------------------------------

_WORD = re.compile(r"\w+")
_QUERY_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
# PostgreSQL's English stop words (Snowball): dropped from SQLite queries so both backends match
# the same documents for "how do I reset the filter".
_STOPWORDS_TEXT = """
    i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she
    her hers herself it its itself they them their theirs themselves what which who whom this that
    these those am is are was were be been being have has had having do does did doing a an the and
    but if or because as until while of at by for with about against between into through during
    before after above below to from up down in out on off over under again further then once here
    there when where why how all any both each few more most other some such no nor not only own
    same so than too very s t can will just don should now"""
_STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


def fts5_query(query: str) -> str | None:
    """Web-search syntax -> an FTS5 MATCH expression, or None when nothing is searchable.

    Every term or phrase becomes a double-quoted FTS5 string of word characters only, so no
    input can inject FTS5 syntax or make MATCH raise."""
    groups: list[list[str]] = []  # ANDed groups of ORed alternatives
    negated: list[str] = []
    pending_or = False
    for match in _QUERY_TOKEN.finditer(query):
        sign, phrase, bare = match.groups()
        if bare is not None and bare.lower() == "or":
            pending_or = bool(groups)
            continue
        negative = bool(sign) if bare is None else bare.startswith("-")
        words = [w.lower() for w in _WORD.findall(phrase if bare is None else bare)]
        if bare is not None and len(words) == 1 and words[0] in _STOPWORDS:
            words = []
        if not words:
            continue
        term = '"' + " ".join(words) + '"'
        if negative:
            negated.append(term)
        elif pending_or:
            groups[-1].append(term)
        else:
            groups.append([term])
        pending_or = False
    if not groups:  # FTS5 has no "everything except"
        return None
    expr = " AND ".join("(" + " OR ".join(alts) + ")" for alts in groups)
    return expr + "".join(f" NOT {term}" for term in negated)
