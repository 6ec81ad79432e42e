"""The Agent: the one place that orchestrates a turn.

A turn, top to bottom (``Agent.stream``):

1. check the message (empty/oversize -> ``InputError``, nothing logged);
2. **log the customer's message** (committed before anything else can fail);
3. if a person already handles the conversation, say so and stop;
4. hand off when the customer asks for a person;
5. refuse injection attempts, abuse and off-topic requests; answer with a reviewer's verified
   answer when one matches (``agent.verified``); answer small talk (a greeting, thanks,
   goodbye, "are you a bot?") on brand, without retrieval;
6. retrieve passages with the conversation as context; hand off when none is relevant enough;
7. generate, streaming only text the output guard has cleared;
8. derive citations from the passages the answer used; hand off after N unhelpful turns;
9. log the agent's turn (model version, chunks and scores, passages, latency, tokens);
10. offer the turn to the running shadow, if any (``agent.shadow``): a candidate answers it
    silently on a background thread, never delaying or changing the reply.

One ``Agent`` serves many conversations from many threads: the store and the knowledge base are
thread-safe, and the local generator runs one generation at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from agent import (
    escalation,
    feedback_reasons,
    grounding,
    guardrails,
    referents,
    shadow,
    verified,
    which,
    written,
)
from agent.citations import says_unknown, used_passages
from agent.config import AgentConfig, load_config
from agent.errors import GenerationError
from agent.generator import GenerationOptions, Generator, Usage, build_generator, metered
from agent.prompt import Passage, build_messages, cut_at_stop, stop_prefix_length, system_message
from agent.types import Citation, Feedback, Reply, RetrievedChunk, Turn
from agent.validation import check_identifier, check_turn_limits

if TYPE_CHECKING:
    from agent.store import LogStore
    from knowledge import KnowledgeBase

HANDOFF = {
    "customer_request": "Of course. I'm connecting you with a member of the {company} support team; "
    "they'll reply right here as soon as they can.",
    "low_confidence": "I'm not sure about that one, so I've asked a member of the {company} support team "
    "to join. They'll reply right here as soon as they can.",
    "unhelpful_streak": "I'm sorry I haven't been able to help. I've asked a member of the {company} support "
    "team to take over; they'll reply right here.",
}
log = logging.getLogger(__name__)  # decisions only: never the customer's text at INFO
WITH_PERSON = "A member of our support team has your conversation and will reply here shortly."


class Agent:
    """Answers customers with a model plus retrieved passages, and logs every turn."""

    def __init__(
        self,
        model: Generator,
        knowledge: KnowledgeBase | None = None,
        store: LogStore | None = None,
        config: AgentConfig | None = None,
        *,
        shadow_runner: shadow.ShadowRunner | bool = True,
    ):
        """``shadow_runner``: how turns reach a running shadow (True: this process's worker, the
        candidate loaded like production; False: never shadowed, as in evaluations)."""
        from agent.store import LogStore

        self.config = config or load_config()
        self.shadow = shadow.ShadowRunner() if shadow_runner is True else shadow_runner or None
        self.generator = model
        self.knowledge = knowledge
        self.store = store or LogStore.from_config(self.config)
        self.verified = verified.VerifiedIndex(self.store, getattr(knowledge, "embed", None))
        if self.config.retrieval.ranker not in ("auto", "none"):  # a named ranker: checked up front
            from agent.ranker import check_ranker

            check_ranker(self.config.retrieval.ranker)
        self._cancels: dict[str, threading.Event] = {}
        self._cancels_lock = threading.Lock()

    @classmethod
    def from_config(
        cls, config: AgentConfig | None = None, *, model: str | None = None, progress: bool = False
    ) -> Agent:
        """The agent a config describes: the production model unless ``model`` names another."""
        from agent.knowledge import open_knowledge
        from agent.store import LogStore

        config = config or load_config()
        knowledge = open_knowledge(config, progress=progress)
        return cls(build_generator(config, model), knowledge, LogStore.from_config(config), config)

    # ------------------------------------------------------------------ public API
    def reply(self, conversation_id: str, text: str, **limits: Any) -> Reply:
        """Answer one customer message; see ``stream`` for the steps and the ``limits``."""
        for item in self.stream(conversation_id, text, **limits):
            if isinstance(item, Reply):
                return item
        raise GenerationError("the turn ended without a reply")  # pragma: no cover - invariant

    def stream(
        self,
        conversation_id: str,
        text: str,
        *,
        max_tokens: int | None = None,
        stop: Sequence[str] = (),
        temperature: float | None = None,
        timeout_s: float | None = None,
    ) -> Iterator[str | Reply]:
        """Yield text deltas as they are cleared, then the complete ``Reply``. A caller's
        ``max_tokens`` lowers the configured limit for this turn; the answer ends before the first
        of its ``stop`` sequences (neither is ever sent); ``temperature`` and ``timeout_s`` replace
        the configured ones for this turn."""
        started = time.perf_counter()
        check_identifier(conversation_id, "conversation_id")  # before anything is written
        limits = check_turn_limits(max_tokens, stop, temperature, timeout_s)
        message = guardrails.check_input(text, self.config.guardrails.max_input_chars)
        conversation = self.store.ensure_conversation(conversation_id)
        history = [(t.role, t.text) for t in conversation.turns if t.role != "system"]
        self.store.add_turn(conversation_id, "customer", message)
        persona = self.config.persona

        if conversation.status == "escalated":
            log.info("conversation %s: with a person, the agent does not answer", conversation_id)
            yield WITH_PERSON
            yield self._note(conversation_id, WITH_PERSON, started, escalated=True)
            return
        if escalation.wants_human(message):
            log.info("conversation %s: hand-off, the customer asked for a person", conversation_id)
            handoff = self._handoff(conversation_id, "customer_request", started)
            yield handoff.text
            yield handoff
            return
        verdict = guardrails.classify_input(message, self.config.guardrails.refuse_off_topic)
        if not verdict.ok:
            log.info("conversation %s: input refused by the guardrails (%s)", conversation_id, verdict.kind)
            answer = guardrails.refusal(verdict.kind, persona.company, persona.product)
            yield answer
            yield self._log_reply(conversation_id, answer, started, refused=verdict.kind)
            return
        if (shortcut := self.verified.match(message)) is not None:
            reply = self._verified_reply(conversation_id, shortcut, started)
            yield reply.text
            yield reply
            return
        if kind := guardrails.small_talk(message, (persona.agent_name, persona.company)):
            log.info("conversation %s: small talk (%s), answered without retrieval", conversation_id, kind)
            answer = guardrails.small_talk_reply(kind, persona.company, persona.product, persona.agent_name)
            yield answer
            unchecked = grounding.Grounding(passed=True, checked=False).to_dict()  # its own source
            yield self._log_reply(
                conversation_id, answer, started, extra={"small_talk": kind, "grounding": unchecked}
            )
            return

        # "whats the return window" is read as "What's the return window?" (``agent.written``), and
        # so are the customer's earlier messages: by retrieval, the model and the check. The log
        # keeps the customer's own words.
        if self.config.grounding.read_as_written:
            cased = self._cased()
            message = written.as_written(message, cased)
            history = [
                (role, written.as_written(text, cased) if role == "customer" else text)
                for role, text in history
            ]
        if (asked_back := self._which(conversation_id, message, conversation.turns, started)) is not None:
            yield asked_back.text
            yield asked_back
            return
        if (asked_back := self._unnamed(conversation_id, message, history, started)) is not None:
            yield asked_back.text
            yield asked_back
            return

        # "How much is a new one?" after "Can I wash the filter?" is read as "... a new filter?"
        # (``referents.one_meant``) by retrieval, the model and the check; the log keeps the words.
        read = (
            referents.one_meant(message, history, self._words()) if self.config.grounding.enabled else message
        )
        asked_as = self._asked_as(read, history)
        hits = self._retrieve(read, history)
        passages = [p for p in (self._passage(h) for h in hits) if p.text]
        best = max((h.relevance for h in hits), default=None)
        log.debug(
            "conversation %s: retrieved %d passages, best relevance %s", conversation_id, len(hits), best
        )
        threshold = self.config.escalation.min_relevance
        embed = self._sentence_embed()
        if escalation.low_confidence(best, threshold) and passages and embed is not None:
            # A chunk is compared whole; the row or sentence in it that answers may be far closer.
            closest = grounding.sentence_relevance(read, [p.text for p in passages], embed)
            if closest is not None and closest >= threshold:
                log.debug("conversation %s: a passage sentence is close (%.3f)", conversation_id, closest)
                best = closest
        if escalation.low_confidence(best, threshold):
            log.info(
                "conversation %s: hand-off, low confidence (best relevance %s < %s)",
                conversation_id,
                best,
                self.config.escalation.min_relevance,
            )
            handoff = self._handoff(conversation_id, "low_confidence", started, hits=hits)
            yield handoff.text
            yield handoff
            return

        messages = self._messages(read, passages, history, self.generator)
        guard = self._guard(message, history, passages)
        if max_tokens is not None:
            limits["max_tokens"] = max(1, min(max_tokens, self.config.generation.max_new_tokens))
        state: dict[str, Any] = {"gate": self._gate(asked_as, history, passages), **limits}
        yield from self._generate(conversation_id, messages, guard, state)
        answer = state["text"]
        if (closing := self._closing(asked_as, passages, state)) is not None:
            answer = closing
            yield "\n" + answer if state.get("violation") and state.get("sent") else answer
        judged = state["grounding"]
        log.info(
            "conversation %s: grounding checked=%s passed=%s action=%s, %d unsupported sentences%s",
            conversation_id,
            judged.checked,
            judged.passed,
            judged.action,
            len(judged.unsupported),
            ", output refused by the guard" if state.get("violation") else "",
        )
        cited = used_passages(grounding.strip_lead(answer), passages)
        citations = [self._citation(passages[n - 1], n) for n in cited]
        unhelpful = says_unknown(answer) or not answer
        reply = self._log_reply(
            conversation_id,
            answer,
            started,
            hits=hits,
            passages=passages,
            citations=citations,
            unhelpful=unhelpful,
            refused="output" if state.get("violation") else None,
            ttft=state.get("ttft"),
            usage=state.get("usage"),
            extra={
                "grounding": state["grounding"].to_dict(),
                "violation": state.get("violation"),
                "timed_out": state.get("timed_out"),
                "cancelled": state.get("cancelled"),
            },
        )
        if self.shadow is not None:  # sent and logged: the shadow answers off the customer's path
            turn = shadow.ShadowTurn(
                turn_id=reply.turn_id,
                conversation_id=conversation_id,
                version=self.generator.version,
                message=message,
                history=tuple(history),
                passages=tuple(passages),
                prompt=tuple(messages),
                limits=limits,
                answer=answer,
                grounding=judged,
            )
            self.shadow.offer(self, turn)
        if unhelpful and self._unhelpful_streak(conversation_id):
            log.info("conversation %s: hand-off after an unhelpful streak", conversation_id)
            self.store.escalate(conversation_id, "unhelpful_streak", turn_id=reply.turn_id)
            note = HANDOFF["unhelpful_streak"].format(company=persona.company)
            yield "\n\n" + note
            reply = _replace(reply, text=f"{reply.text}\n\n{note}", escalated=True, reason="unhelpful_streak")
        yield reply

    def shadow_answer(
        self, generator: Generator, turn: shadow.ShadowTurn
    ) -> tuple[str, grounding.Grounding, Usage]:
        """What ``generator`` would have answered on a turn production answered: the same
        passages, conversation and limits, its own prompt budget, the same output guard,
        grounding check and fallback; nothing is sent or logged (``agent.shadow``)."""
        history = list(turn.history)
        passages = list(turn.passages)
        messages = self._messages(turn.message, passages, history, generator)
        guard = self._guard(turn.message, history, passages)
        state: dict[str, Any] = {"gate": self._gate(turn.message, history, passages), **turn.limits}
        for _ in self._stream(generator, messages, guard, state, threading.Event()):
            pass
        for _ in self._settle(guard, state):
            pass
        closing = self._closing(turn.message, passages, state)
        return (state["text"] if closing is None else closing), state["grounding"], state["usage"]

    def cancel(self, conversation_id: str) -> bool:
        """Stop the generation in flight for a conversation; True if there was one."""
        with self._cancels_lock:
            event = self._cancels.get(conversation_id)
        if event is None:
            return False
        event.set()
        return True

    def feedback(
        self,
        turn_id: str,
        *,
        thumbs: int | None = None,
        rating: int | None = None,
        comment: str | None = None,
        correction: str | None = None,
        labels: tuple[str, ...] | list[str] = (),
        reviewer: str | None = None,
        mark_for_training: bool = False,
        reason: str | None = None,
    ) -> Feedback:
        """Record feedback; ``reason`` (``agent.feedback_reasons``) is stored as a label and
        routes in the console; "personal_data" also redacts the turn."""
        labels = (*labels, *feedback_reasons.labels_for(reason))
        saved = self.store.add_feedback(
            turn_id,
            thumbs=thumbs,
            rating=rating,
            comment=comment,
            correction=correction,
            labels=tuple(labels),
            reviewer=reviewer,
            mark_for_training=mark_for_training,
        )
        if reason == "personal_data":
            self.store.redact_turn(turn_id)
        return saved

    def escalate(self, conversation_id: str, reason: str = "customer_request") -> Reply:
        """Hand a conversation to a person on the customer's request (the UI's button)."""
        self.store.ensure_conversation(conversation_id)
        return self._handoff(conversation_id, reason, time.perf_counter())

    def human_reply(self, conversation_id: str, text: str, *, author: str) -> Turn:
        """A support-team member answers in the conversation (live handoff); logged as ``human``."""
        message = guardrails.check_input(text, max(self.config.guardrails.max_input_chars, 10_000))
        self.store.get_conversation(conversation_id)
        return self.store.add_turn(conversation_id, "human", message, author=author)

    def resolve(self, conversation_id: str, *, by: str | None = None, note: str | None = None) -> None:
        """Close a handoff: the conversation is resolved and the agent may answer again."""
        conversation = self.store.get_conversation(conversation_id)
        if conversation.status == "escalated":
            self.store.resolve_escalation(conversation_id, resolved_by=by, note=note)
        else:
            self.store.set_status(conversation_id, "resolved")

    def close(self) -> None:
        self.store.close()

    # ------------------------------------------------------------------ steps
    def _retrieve(self, message: str, history: list[tuple[str, str]]) -> list[Any]:
        if self.knowledge is None:
            return []
        from agent.knowledge import ranked_search
        from knowledge import KnowledgeBase

        settings = self.config.retrieval
        if not isinstance(self.knowledge, KnowledgeBase):  # a caller's own retriever: as it ranks
            return list(self.knowledge.search(message, k=settings.k, history=history))
        return ranked_search(
            self.knowledge,
            message,
            history,
            k=settings.k,
            candidates=settings.candidates,
            embed=self._ranker_embed(),
            one_per_page=settings.one_per_page,
            whole_lists=self.config.grounding.whole_lists,
            keep_retrieved=settings.keep_retrieved,
        )

    @staticmethod
    def _passage(hit: Any) -> Passage:
        return Passage(
            doc_id=hit.doc_id,
            source=hit.source,
            text=guardrails.clean_passage(hit.text),
            title=getattr(hit, "title", None),
            score=float(hit.score),
            chunk_id=hit.chunk_id,
        )

    @staticmethod
    def _citation(passage: Passage, number: int) -> Citation:
        snippet = " ".join(passage.text.split())
        return Citation(
            doc_id=passage.doc_id,
            source=passage.source,
            snippet=snippet[:300] + (" ..." if len(snippet) > 300 else ""),
            index=number,
            score=passage.score,
            chunk_id=passage.chunk_id,
        )

    def _messages(
        self, message: str, passages: list[Passage], history: list[tuple[str, str]], generator: Generator
    ) -> list[dict[str, str]]:
        settings = self.config.generation
        return build_messages(
            message,
            passages,
            self.config.persona,
            history,
            budget_tokens=settings.context_tokens - settings.max_new_tokens,
            count_tokens=generator.count_tokens,
        )

    def _guard(
        self, message: str, history: list[tuple[str, str]], passages: list[Passage]
    ) -> guardrails.OutputGuard:
        persona = self.config.persona
        return guardrails.OutputGuard(
            [system_message(persona)],
            secrets=self.config.guardrails.secrets,
            allowed=[
                message,
                *(t for _, t in history),
                *(p.text for p in passages),
                *_public_phrases(persona),
            ],
        )

    def _generate(
        self,
        conversation_id: str,
        messages: list[dict[str, str]],
        guard: guardrails.OutputGuard,
        state: dict[str, Any],
    ) -> Iterator[str]:
        cancel = threading.Event()
        with self._cancels_lock:
            self._cancels[conversation_id] = cancel
        try:
            yield from self._stream(self.generator, messages, guard, state, cancel)
        except GenerationError as exc:
            self.store.add_turn(conversation_id, "system", f"generation failed: {exc}")
            raise
        finally:
            with self._cancels_lock:
                self._cancels.pop(conversation_id, None)
        yield from self._settle(guard, state)

    def _stream(
        self,
        generator: Generator,
        messages: list[dict[str, str]],
        guard: guardrails.OutputGuard,
        state: dict[str, Any],
        cancel: threading.Event,
    ) -> Iterator[str]:
        """Generate, yielding only text the output guard and the sentence gate have cleared."""
        settings = self.config.generation
        options = GenerationOptions(
            max_new_tokens=state.get("max_tokens", settings.max_new_tokens),
            temperature=state.get("temperature", settings.temperature),
            repetition_penalty=settings.repetition_penalty,
            timeout_s=state.get("timeout_s", settings.timeout_s),
            context_weight=settings.context_weight,
        )
        state.update(options=options, started=time.perf_counter())
        gate: grounding.SentenceGate | None = state["gate"]
        text, sent = "", 0
        stream = metered(generator, messages, options, cancel)
        for delta in stream:
            text += delta
            cut = cut_at_stop(text, state["stop"])
            if cut is not None:
                text = text[:cut]
            if violation := guard.violation(text):
                state["violation"] = violation
                cancel.set()
                break
            safe = guard.safe_prefix_length(text, final=cut is not None)
            if cut is None:
                safe = min(safe, len(text) - stop_prefix_length(text, state["stop"]))
            if gate is not None:
                if cut is not None:
                    gate.cut_by_client()
                safe = min(safe, gate.feed(text, final=cut is not None))
            if safe > sent:
                state.setdefault("ttft", (time.perf_counter() - state["started"]) * 1000)
                yield text[sent:safe]
                sent = safe
            if cut is not None or (gate is not None and gate.failed):
                break  # closing the stream below stops the generation
        stream.close()
        usage = stream.usage  # the call's own counts, whichever thread stepped the stream
        state.update(text=text, sent=sent, usage=usage, timed_out=usage.timed_out, cancelled=usage.cancelled)

    def _settle(self, guard: guardrails.OutputGuard, state: dict[str, Any]) -> Iterator[str]:
        """After the generation: the final checks, the last cleared text, the verdict in
        ``state["grounding"]`` and the answer in ``state["text"]``."""
        text, sent, usage, options = state["text"], state["sent"], state["usage"], state["options"]
        gate: grounding.SentenceGate | None = state["gate"]
        if not state.get("violation") and (violation := guard.violation(text)):
            state["violation"] = violation
        end = len(text)  # offsets stay those of the streamed text: `sent` counts from its start
        if gate is not None and not state.get("violation"):
            limited = usage.timed_out or usage.completion_tokens >= options.max_new_tokens
            end = self._checked(text, gate, limited and not usage.cancelled, state)
        else:
            state["grounding"] = grounding.Grounding(passed=True, checked=False)
        end = len(text[:end].rstrip())
        if not state.get("violation") and end > sent:
            state.setdefault("ttft", (time.perf_counter() - state["started"]) * 1000)
            yield text[sent:end]
        text = text[:end].strip()
        if not text and usage.timed_out and state["grounding"].action == grounding.SENT:
            raise GenerationError(f"the model did not answer within {options.timeout_s:.0f} s")
        state["text"] = text

    def _closing(self, message: str, passages: list[Passage], state: dict[str, Any]) -> str | None:
        """What replaces the generated answer, or None when it stands: the refusal after an
        output-guard violation, the fallback when nothing the model wrote passed the check."""
        if state.get("violation"):
            persona = self.config.persona
            return guardrails.refusal("output", persona.company, persona.product)
        if not state["text"] and state["grounding"].action != grounding.SENT:
            return self._fallback(message, passages, state)
        return None

    def _gate(self, message: str, history: list[tuple[str, str]], passages: list[Passage]) -> Any:
        """The sentence gate for this turn, or None when the check is off or has nothing to read."""
        if not self.config.grounding.enabled or not passages:
            return None
        return grounding.turn_gate(
            message,
            history,
            passages,
            self.config.grounding,
            self.config.persona,
            self._sentence_embed(),
            vocabulary=self._words(),
        )

    def _words(self) -> frozenset[str] | None:
        """Every word the help pages have (``KnowledgeBase.words``), or None for another retriever."""
        words = getattr(self.knowledge, "words", None)
        return words() if callable(words) else None

    def _cased(self) -> dict[str, str] | None:
        """The names the help pages write (``KnowledgeBase.cased``), or None for another retriever."""
        cased = getattr(self.knowledge, "cased", None)
        return cased() if callable(cased) else None

    def _ranker_embed(self) -> grounding.CachedEmbed | None:
        """What re-ranks the candidate chunks: the production model's ranker (``agent.ranker``), or
        the knowledge base's embedding model when there is none."""
        from agent.ranker import load_ranker, ranker_for

        key = (
            self.config.retrieval.ranker,
            getattr(self.generator, "version", None),
            getattr(self.generator, "adapter", None),
        )
        cached = getattr(self, "_cached_ranker", None)
        if cached is None or cached[0] != key:  # resolved once per model served, not per turn
            path = ranker_for(*key)
            cached = (key, grounding.CachedEmbed(load_ranker(str(path))) if path is not None else None)
            self._cached_ranker = cached
        return cached[1] if cached[1] is not None else self._sentence_embed()

    def _sentence_embed(self) -> grounding.CachedEmbed | None:
        """The knowledge base's embedding model, caching passage sentences across turns."""
        embed = getattr(self.knowledge, "embed", None)
        if embed is None:
            return None
        cached = getattr(self, "_cached_embed", None)
        if cached is None or cached[0] is not self.knowledge:
            cached = (self.knowledge, grounding.CachedEmbed(embed))
            self._cached_embed = cached
        return cached[1]

    @staticmethod
    def _checked(text: str, gate: grounding.SentenceGate, limited: bool, state: dict[str, Any]) -> int:
        """How much of ``text`` passed the check; the verdict goes to ``state["grounding"]``."""
        cleared = gate.feed(text, final=not limited)
        kept = text[:cleared].strip()
        dropped_tail = limited and cleared < len(text) and not gate.failed
        if gate.held_decline:  # the model declined where a passage answers: _fallback quotes it
            verdict = grounding.Grounding(passed=True, action=grounding.EXTRACTIVE)
        elif kept:
            verdict = grounding.Grounding(
                passed=not gate.failed, unsupported=tuple(gate.failed), dropped_tail=dropped_tail
            )
        else:
            action = grounding.EXTRACTIVE  # refined by _fallback
            verdict = grounding.Grounding(
                passed=False, action=action, unsupported=tuple(gate.failed), dropped_tail=dropped_tail
            )
        state["grounding"] = verdict
        return cleared

    def _fallback(self, message: str, passages: list[Passage], state: dict[str, Any]) -> str:
        """The answer sent when nothing the model wrote passed the check."""
        import dataclasses

        gate = state.get("gate")
        if gate is not None and gate.held_decline and gate.quote:
            return gate.quote
        text, action = grounding.fallback_answer(
            message,
            [p.text for p in passages],
            self.config.grounding,
            self.config.persona.company,
            ranked=gate.ranked if gate is not None else None,
            embed=self._sentence_embed(),
            gate=gate,
        )
        state["grounding"] = dataclasses.replace(state["grounding"], action=action)
        return text

    def _which(
        self, conversation_id: str, message: str, turns: Sequence[Turn], started: float
    ) -> Reply | None:
        """Asking back which model (``agent.which``), or the answer for the model the customer
        has said (in reply to the question, or earlier); None: the turn goes on as usual."""
        variants = getattr(self.knowledge, "variants", None)
        settings = self.config.grounding
        embed = self._sentence_embed()
        if not (settings.enabled and settings.ask_which) or variants is None or embed is None:
            return None
        known = tuple(variants())
        if len(known) < 2 or which.names_another(message, known):
            return None
        last = next((t for t in reversed(turns) if t.role == "agent"), None)
        pending = last.metadata.get("asked_which") if last is not None else None
        if isinstance(pending, dict) and (
            reply := self._which_answer(conversation_id, message, pending, started)
        ):
            return reply
        said = [t.text for t in turns if t.role == "customer"]
        earlier = which.earlier_choice(message, said, known)
        if earlier is None and which.named_already(message, said, known):
            return None  # the message names a model, or the customer named both: the usual way
        probe = which.probe(message, known)
        hits = self._retrieve(probe, [])
        passages = [p for p in (self._passage(h) for h in hits) if p.text]
        ranked = grounding.rank_sentences(message, [p.text for p in passages], embed)
        found = which.best_split(message, ranked, known)
        if found is None:
            return None
        page = passages[found.passage - 1]
        others = [p.text for p in map(self._passage, self._retrieve(message, [])) if p.doc_id != page.doc_id]
        elsewhere = grounding.rank_sentences(message, others, embed)
        names = (self.config.persona.company, self.config.persona.product)
        if which.about_another(message, found, elsewhere, known, grounding.heading(page.text), names):
            return None  # "How much is express shipping?": the shipping table's, not the purifier's price
        if earlier is not None:  # "How heavy is it?" after "I have the Aero 500"
            if earlier not in found.values:
                return None
            log.info("conversation %s: answered for the %s named earlier", conversation_id, earlier)
            return self._log_reply(
                conversation_id,
                which.answer_for(found.values, found.label, earlier, found.passage),
                started,
                hits=hits,
                passages=passages,
                citations=[self._citation(passages[found.passage - 1], found.passage)],
                extra={
                    "grounding": grounding.Grounding(passed=True, action=grounding.EXTRACTIVE).to_dict(),
                    "which_answered": earlier,
                },
            )
        log.info("conversation %s: asked back which of %s", conversation_id, ", ".join(found.values))
        checked = grounding.Grounding(passed=True, action=grounding.EXTRACTIVE).to_dict()
        pending = {"question": message, "variants": list(found.values), "values": found.values,
                   "label": found.label, "passage": found.passage}  # fmt: skip
        return self._log_reply(
            conversation_id,
            which.which_text(found),
            started,
            hits=hits,
            passages=passages,
            citations=[self._citation(passages[found.passage - 1], found.passage)],
            extra={"grounding": {**checked, "asked_which": list(found.values)}, "asked_which": pending},
        )

    def _unnamed(
        self, conversation_id: str, message: str, history: list[tuple[str, str]], started: float
    ) -> Reply | None:
        """Asking back which thing a message means by "this state library" (``agent.referents``:
        an opening message, or a later one about something new); None: the turn goes on as usual."""
        settings, persona = self.config.grounding, self.config.persona
        if not (settings.enabled and settings.ask_unnamed):
            return None
        earlier = [text for _, text in history]
        thing = referents.unnamed(
            message, earlier, (persona.product, persona.company), self._sentence_embed()
        )
        if thing is None:
            return None
        log.info("conversation %s: asked back which %s", conversation_id, thing)
        unchecked = grounding.Grounding(passed=True, checked=False).to_dict()  # a question back: no claim
        return self._log_reply(
            conversation_id,
            referents.ask_text(thing),
            started,
            extra={"grounding": {**unchecked, "asked_unnamed": thing}, "asked_unnamed": thing},
        )

    def _asked_as(self, message: str, history: list[tuple[str, str]]) -> str:
        """What the answer check reads as the question (``referents.asked_as``): the customer's
        answer to "Which filter do you mean?" with their first question. Retrieval and the model
        read the conversation as it is."""
        if not (self.config.grounding.enabled and self.config.grounding.ask_unnamed):
            return message
        return referents.asked_as(message, history)

    def _which_answer(
        self, conversation_id: str, message: str, pending: dict[str, Any], started: float
    ) -> Reply | None:
        """The value for the variant the customer names after being asked which (the passages
        retrieved again for the first question, as they were then); None: the reply is not such a
        choice (``which.chosen``), and the turn goes on as usual."""
        choice = which.chosen(message, list(pending.get("variants") or []))
        values = pending.get("values") or {}
        number = pending.get("passage")
        if choice is None or choice not in values or not isinstance(number, int):
            return None
        hits = self._retrieve(which.probe(str(pending.get("question", "")), list(values)), [])
        passages = [p for p in (self._passage(h) for h in hits) if p.text]
        value = str(values[choice])
        said = 0 < number <= len(passages) and any(
            value.rstrip(".") in sentence
            for sentence in grounding.passage_sentences(passages[number - 1].text)
        )
        if not said:  # the documents changed since (a re-ingest): the turn goes on as usual
            return None
        text = which.answer_for(values, str(pending.get("label") or ""), choice, number)
        checked = grounding.Grounding(passed=True, action=grounding.EXTRACTIVE).to_dict()
        return self._log_reply(
            conversation_id,
            text,
            started,
            hits=hits,
            passages=passages,
            citations=[self._citation(passages[number - 1], number)],
            extra={"grounding": checked, "which_answered": choice},
        )

    def _handoff(self, conversation_id: str, reason: str, started: float, hits: list[Any] = ()) -> Reply:  # type: ignore[assignment]
        text = HANDOFF[reason].format(company=self.config.persona.company)
        reply = self._log_reply(conversation_id, text, started, hits=list(hits), escalation_reason=reason)
        self.store.escalate(conversation_id, reason, turn_id=reply.turn_id)
        return reply

    def _verified_reply(self, conversation_id: str, match: verified.Match, started: float) -> Reply:
        """A reviewer's verified answer, verbatim: no retrieval, no model call."""
        answer = match.answer
        extra = {
            "grounding": verified.grounding(),
            "verified": {"id": answer.id, "similarity": match.similarity},
        }
        reply = self._log_reply(
            conversation_id, answer.answer, started, citations=[verified.citation(match)], extra=extra
        )
        self.store.count_verified_hit(str(answer.id))
        return reply

    def _note(self, conversation_id: str, text: str, started: float, escalated: bool) -> Reply:
        turn = self.store.add_turn(conversation_id, "system", text)
        return Reply(
            text=text,
            conversation_id=conversation_id,
            turn_id=str(turn.id),
            escalated=escalated,
            escalation_reason="with_person",
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    def _log_reply(
        self,
        conversation_id: str,
        text: str,
        started: float,
        *,
        hits: list[Any] | None = None,
        passages: list[Passage] | None = None,
        citations: list[Citation] | None = None,
        unhelpful: bool = False,
        refused: str | None = None,
        escalation_reason: str | None = None,
        ttft: float | None = None,
        usage: Usage | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Reply:
        generated = passages is not None
        usage = usage or (Usage() if generated else None)
        latency = (time.perf_counter() - started) * 1000
        metadata: dict[str, Any] = {
            "unhelpful": unhelpful,
            "refused": refused,
            "escalation_reason": escalation_reason,
            "passages": [
                {"doc_id": p.doc_id, "source": p.source, "title": p.title, "text": p.text}
                | ({"chunk_id": p.chunk_id} if p.chunk_id else {})
                for p in passages or []
            ],
            **{k: v for k, v in (extra or {}).items() if v},
        }
        turn: Turn = self.store.add_turn(
            conversation_id,
            "agent",
            text,
            model_version=self.generator.version if generated else None,
            adapter=self.generator.adapter if generated else None,
            retrieved=[
                RetrievedChunk(chunk_id=h.chunk_id, doc_id=h.doc_id, score=float(h.score), source=h.source)
                for h in hits or []
            ],
            citations=citations or [],
            latency_ms=latency,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            metadata=metadata,
        )
        return Reply(
            text=text,
            conversation_id=conversation_id,
            turn_id=str(turn.id),
            citations=tuple(citations or ()),
            escalated=escalation_reason is not None,
            escalation_reason=escalation_reason,
            refused=refused is not None,
            model_version=self.generator.version if generated else "",
            latency_ms=latency,
            time_to_first_token_ms=ttft,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            grounding=(extra or {}).get("grounding"),
        )

    def _unhelpful_streak(self, conversation_id: str) -> bool:
        turns = [t for t in self.store.turns(conversation_id) if t.role == "agent"]
        down = {f.turn_id for f in self.store.feedback_for_conversation(conversation_id) if f.thumbs == -1}
        flags = [bool(t.metadata.get("unhelpful")) or t.id in down for t in turns]
        return escalation.unhelpful_streak(flags, self.config.escalation.unhelpful_turns)


def _public_phrases(persona: Any) -> list[str]:
    """What the agent says to customers anyway: a model that declines in these words ("I can
    connect you with a member of the support team") quotes no secret, however close the system
    prompt's own wording is."""
    declines = [grounding.decline_text(persona.company), grounding.decline_text("").replace("  ", " ")]
    return [*declines, *(text.format(company=persona.company) for text in HANDOFF.values()), WITH_PERSON]


def _replace(reply: Reply, *, text: str, escalated: bool, reason: str) -> Reply:
    import dataclasses

    return dataclasses.replace(reply, text=text, escalated=escalated, escalation_reason=reason)
