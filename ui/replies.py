"""Customer replies generated outside the page's script run, so that nothing a customer sends is lost.

Invariants:

* **One worker per agent** (``worker_for``), shared by every session of the process. A message is
  checked when it is sent (empty or oversize: ``InputError``, nothing queued) and then queued for
  its conversation; one thread per conversation with work answers its messages in order, each
  through ``Agent.stream``, which logs the customer's message before anything else can fail.
  A second message sent while a reply streams waits in the queue; it is never dropped.
* **The page only follows.** A reload or a closed tab ends the page's script run, not the
  generation: a new session finds the reply in progress here (``progress``) and the finished one
  in the log store. Queued messages live in this process until their turn (a server restart
  loses the queue, not the log).
* Nothing here speaks SQL or knows about Streamlit.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agent import guardrails
from agent.errors import GenerationError, SupportloopError
from agent.types import Reply
from agent.validation import check_identifier

if TYPE_CHECKING:
    from agent.runtime import Agent

FAILED = "Sorry, I couldn't finish that answer ({}). Please try again, or ask for a person."


@dataclass(frozen=True)
class Progress:
    """A conversation's work as a page sees it at one moment."""

    active: str | None = None  # the message being answered
    base: int = 0  # turns in the store before the active message: more means it is logged
    text: str = ""  # the reply so far (only text the agent has cleared)
    queued: tuple[str, ...] = ()  # messages waiting their turn, oldest first
    finished: int = 0  # replies finished so far in this process: a change means "redraw"
    notices: tuple[str, ...] = ()  # failures to tell the customer about

    @property
    def busy(self) -> bool:
        return self.active is not None or bool(self.queued)


@dataclass
class _Work:
    queue: deque[str] = field(default_factory=deque)
    active: str | None = None
    base: int = 0  # turns in the store before the active message was logged
    text: str = ""
    finished: int = 0
    notices: list[str] = field(default_factory=list)
    thread: threading.Thread | None = None


class ReplyWorker:
    """Answers queued customer messages in background threads, one conversation at a time each."""

    def __init__(self, agent: Agent):
        self.agent = agent
        self._lock = threading.Lock()
        self._work: dict[str, _Work] = {}

    def submit(self, conversation_id: str, text: str) -> None:
        """Queue a message; ``InputError`` (nothing queued, nothing logged) when it cannot be sent."""
        check_identifier(conversation_id, "conversation_id")
        text = guardrails.check_input(text, self.agent.config.guardrails.max_input_chars)
        with self._lock:
            work = self._work.setdefault(conversation_id, _Work())
            work.queue.append(text)
            if work.thread is None:
                work.thread = threading.Thread(
                    target=self._run,
                    args=(conversation_id, work),
                    name=f"reply-{conversation_id}",
                    daemon=True,
                )
                work.thread.start()

    def progress(self, conversation_id: str) -> Progress:
        with self._lock:
            work = self._work.get(conversation_id)
            if work is None:
                return Progress()
            return Progress(
                active=work.active,
                base=work.base,
                text=work.text,
                queued=tuple(work.queue),
                finished=work.finished,
                notices=tuple(work.notices),
            )

    def take_notices(self, conversation_id: str) -> list[str]:
        """The failures not yet shown (each is shown once)."""
        with self._lock:
            work = self._work.get(conversation_id)
            if work is None:
                return []
            notices, work.notices = work.notices, []
            return notices

    def wait(self, conversation_id: str, timeout: float) -> bool:
        """Wait until the conversation has no work left; False on timeout (tests, shutdown)."""
        with self._lock:
            work = self._work.get(conversation_id)
            thread = work.thread if work else None
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    # ------------------------------------------------------------------ the thread
    def _run(self, conversation_id: str, work: _Work) -> None:
        while True:
            with self._lock:
                if not work.queue:
                    work.thread = None
                    return
                work.active, work.text = work.queue.popleft(), ""
                work.base = self._turn_count(conversation_id)
            try:
                self._answer(conversation_id, work, work.active)
            except GenerationError as exc:
                self._notice(work, FAILED.format(exc))
            except SupportloopError as exc:  # e.g. the message was refused after all
                self._notice(work, str(exc))
            except Exception as exc:  # a thread must never die with work queued
                self._notice(work, FAILED.format(f"unexpected error: {exc}"))
            with self._lock:
                work.active, work.text = None, ""
                work.finished += 1

    def _answer(self, conversation_id: str, work: _Work, text: str) -> None:
        for item in self.agent.stream(conversation_id, text):
            if isinstance(item, Reply):
                return
            with self._lock:
                work.text += item

    def _notice(self, work: _Work, message: str) -> None:
        with self._lock:
            work.notices.append(message)

    def _turn_count(self, conversation_id: str) -> int:
        from agent.errors import NotFoundError

        try:
            return len(self.agent.store.turns(conversation_id))
        except NotFoundError:
            return 0


_workers: weakref.WeakKeyDictionary[Agent, ReplyWorker] = weakref.WeakKeyDictionary()
_workers_lock = threading.Lock()


def worker_for(agent: Agent) -> ReplyWorker:
    """The process's worker for this agent (created on first use)."""
    with _workers_lock:
        worker = _workers.get(agent)
        if worker is None:
            worker = _workers[agent] = ReplyWorker(agent)
        return worker
