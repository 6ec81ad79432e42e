"""Configuration: the data home, one optional YAML file, environment-variable overrides.

Precedence, lowest to highest: built-in defaults < ``supportloop.yaml`` < environment.

* The data home is ``$SUPPORTLOOP_HOME`` or ``~/.supportloop``. It holds ``models/`` (converted
  default model, adapters, the registry), ``index/`` (the knowledge index), ``supportloop.db``
  (the log store, unless ``store_url`` names another database) and ``runs/`` (training runs).
* The YAML file is ``$SUPPORTLOOP_CONFIG`` if set, else ``./supportloop.yaml``, else
  ``<home>/supportloop.yaml``. Unknown keys are an error (typos must not be silently ignored).
* Any setting can be overridden by ``SUPPORTLOOP_<SECTION>__<KEY>`` (or ``SUPPORTLOOP_<KEY>``
  for top-level keys), e.g. ``SUPPORTLOOP_MODEL=./my-model`` or
  ``SUPPORTLOOP_RETRIEVAL__K=6``. Values are parsed as YAML scalars (``6`` -> int).
* Every value is checked against its setting's type (pydantic, lax: ``"6"`` is an int, a number
  is a string where a string is expected) when the config loads: a bad one is a ``ConfigError``
  naming the key, the value and what was expected, before anything starts.
* What is shown is masked (``mask_secrets``): passwords in URLs (``store_url``, ``base_url``...),
  query parameters such as ``api_key=``, and settings named like a secret (``guardrails.secrets``)
  print as ``***``. Settings that only *name* a secret (``api_key_env``) print as they are.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent.errors import ConfigError

DEFAULT_MODEL = "smollm2-135m-instruct"
CONFIG_FILENAME = "supportloop.yaml"
ENV_PREFIX = "SUPPORTLOOP_"


@dataclass
class Persona:
    company: str = "Halcyon Home"
    product: str = "Halcyon Aero air purifier"
    agent_name: str = "Aria"
    tone: str = "friendly, concise and accurate"
    system_prompt: str | None = None  # replaces the built-in instructions when set


@dataclass
class GenerationSettings:
    backend: str = "local"  # "local" (transformers) or "openai" (any OpenAI-compatible server)
    # local engine: "auto" (CTranslate2 int8 when installed and the conversion passes its check,
    # else transformers, with the reason logged), "ctranslate2" (or fail) or "transformers"
    engine: str = "auto"
    max_new_tokens: int = 160
    temperature: float = 0.0  # 0 = greedy
    repetition_penalty: float = 1.1
    timeout_s: float = 120.0
    # Context-aware decoding: weigh each next token by how much the passages raise it; 0 = off.
    # The tuned model alone reads its passages better with it, but with the answer check on it
    # added no right answers (`context_decoding` in benchmarks/README.md), at about twice the
    # decode time and on the transformers engine only (the compiled engine has no logits hook):
    # a weight above 0 serves with transformers.
    context_weight: float = 0.0
    context_tokens: int = 2048  # window for history + passages + answer
    device: str = "auto"  # "auto", "cpu", "cuda", "mps"
    base_url: str | None = None  # for backend=openai
    api_key_env: str = "OPENAI_API_KEY"
    remote_model: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.context_weight <= 5:
            raise ConfigError(f"generation.context_weight must be between 0 and 5, not {self.context_weight}")


@dataclass
class RetrievalSettings:
    k: int = 2  # passages shown to the model; a 135M model grounds better on fewer
    embedding_model: str | None = None  # None: the packaged all-MiniLM-L6-v2
    collection: str = "supportloop"
    chroma_url: str | None = None  # a Chroma server instead of the local persistent index
    entity_fields: list[str] = field(default_factory=list)  # tracked in dialogue; []: inferred at ingest
    variants: list[str] = field(default_factory=list)  # compared side by side; []: from the tables
    rerank: bool = False
    # Chunks read to choose the k passages: each is re-scored by its best sentence as an answer to
    # the question (the answer check's ranking), so the chunk of a page that holds the answer (the
    # spec table's price row) is shown rather than the page's opening. 0 (or <= k): the
    # retriever's k best documents, one chunk each, as it ranks them.
    candidates: int = 10
    # With ``candidates``: each page is shown once, by its best re-ranked chunk, as the shipped
    # model was trained (one chunk a page). Showing two chunks of one page lifted the dev set and
    # sank the held-out one: the 135M model, shown two chunks of one topic, was thrown more often
    # than helped (docs/experiments/2026-12-04-table-chunks.md, 2026-12-05-one-chunk-a-page.md).
    one_per_page: bool = True
    # With ``candidates``: the retriever's own best chunks, up to this many, are shown as well,
    # after the k re-ranked ones, where the re-rank left them out, so the re-rank can add a chunk
    # but not drop the one the retriever put first (often the first page's second chunk: "Refund
    # Timing" after "The 30-Day Return Window"). With 2, the sample's fresh questions had every key
    # fact in their passages 0.75 -> 0.85 of the time, but the shipped 135M model, shown a third
    # passage, got no more answers right (docs/experiments/2026-12-07-keep-retrieved.md): for a
    # model that reads more (``generation.backend: openai``), not for the default. 0: off.
    keep_retrieved: int = 0
    # What scores the candidate chunks' sentences when they are re-ranked (``agent.ranker``): a
    # LoRA adapter on the embedding model, tuned on past conversations by `supportloop train
    # ranker`. auto: the one that comes with the production model (the shipped default has one);
    # none: the index's own embedding model; or a ranker directory.
    ranker: str = "auto"
    ingest_sample: bool = True  # first chat/ask/ui on an empty index ingests the shipped sample

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ConfigError(f"retrieval.k must be a whole number of 1 or more, not {self.k!r}")
        if not isinstance(self.one_per_page, bool):
            raise ConfigError(f"retrieval.one_per_page must be true or false, not {self.one_per_page!r}")
        if not isinstance(self.ranker, str) or not self.ranker.strip():
            raise ConfigError(
                f"retrieval.ranker must be auto, none or a ranker directory, not {self.ranker!r}"
            )
        for name in ("candidates", "keep_retrieved"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"retrieval.{name} must be a whole number of 0 or more, not {value!r}")


@dataclass
class EscalationSettings:
    # Best passage relevance (0-1) under this -> hand off. A chunk is compared whole, then, when it
    # falls short, its closest sentence (a table row), as the answer check reads it.
    min_relevance: float = 0.3
    unhelpful_turns: int = 2  # consecutive unhelpful agent turns before handing off


@dataclass
class GuardrailSettings:
    max_input_chars: int = 2000
    refuse_off_topic: bool = True
    secrets: list[str] = field(default_factory=list)  # strings a reply must never contain


@dataclass
class GroundingSettings:
    enabled: bool = True  # check every answer against its passages before it is shown
    fallback: str = "extractive"  # an answer that fails: "extractive" (quote the passage) or "decline"
    # A question that names none of the models the documents compare ("How loud is it on Sleep?"
    # beside columns for the Aero 300 and the Aero 500) gets each one's value and "Which one do you
    # have?" instead of a guess (``agent.which``); the customer's answer gets that one's value.
    ask_which: bool = True
    # A message that points at a thing it never names ("What are the services offered by this state
    # library?"), first in a conversation or later about something new (also "the actor", a kind
    # with a name of its own that no earlier turn said), is asked back which one
    # ("Which state library do you mean?") instead of answered for whatever page retrieval finds
    # (``agent.referents``); "this purifier" (the persona's product) and "this morning" are not
    # asked about. The customer's answer is checked against the first question with it.
    ask_unnamed: bool = True
    min_support: float = 0.5  # share of a sentence's content words that must be in the sources
    # Figures must come from the passage sentences that best match the question (0: from any),
    # as the knowledge base's embedding model ranks them: "$69" is in the passages, but the row
    # the question asks about says "$10.49".
    evidence_sentences: int = 2
    # The extractive fallback quotes only when its best sentence matches the question at least this
    # well (the ranking's score by meaning: cosine + 0.3 x shared rare words); below, the agent
    # says it does not know and offers a person. 0: always quote. On the dev set every quote below
    # 0.5 was beside the question (the unanswerable ones among them).
    min_quote_score: float = 0.5
    # Of what a sentence adds (its content words the conversation did not say), the share the
    # answering sentences must have; 0: off. "The red blinking light means the filter is reset"
    # adds "filter" and "reset", and the answering sentence ("Blinking red: filter life is at 0%.
    # Replace it now.") has only one. Chosen on the dev set (docs/experiments).
    new_word_support: float = 0.5
    # Whether the model's own "I don't know" is a judgement to keep. false (the default): it
    # counts for no more than an answer that failed the check, so the fallback answers it: the
    # passage sentences that clear min_quote_score are quoted, or the agent declines. The shipped
    # 135M model declines answerable questions about as often as unanswerable ones (sessions
    # 16-32: its decline separates them at chance), and on questions written after the check
    # (agent/sample/fresh2.jsonl) trusting it cost 8 right answers of 32 for 1 honest decline of 8.
    # true: the decline stands unless a quote clears quote_over_decline (below).
    trust_declines: bool = False
    # With trust_declines: when the model says it does not know but a passage sentence answers (it
    # scores at least this well and, with its section's title, has at least half of the
    # question's words, or a fifth when it scores 0.7 or more and the question is not a yes-or-no
    # one: grounding.QUOTE_SURE_SCORE), the quote is sent instead; 0: the model's own decline
    # always stands. A quote that gives the kind of amount the question asks for ("how long":
    # "takes 15 minutes") needs only grounding.ASKED_QUOTE_SCORE (0.55) when that is lower.
    quote_over_decline: float = 0.6
    # The answer must give what the question asks for: "How much does it weigh?" wants a weight,
    # "What time ...?" a time of day. One that gives none is held, and a passage sentence that
    # gives it is quoted instead (or the agent declines). A question naming what no passage has
    # ("the Aero 700", beside passages on the Aero 300 and 500) is declined without an answer.
    # A "Yes" to a yes-or-no question a passage answers no ("It cannot join a 5 GHz network")
    # fails, so does a "No" that no passage backs and that goes on to say the passage's "yes",
    # and so does a sentence read from the one about another model than the one asked;
    # a quote keeps to the list item whose label the question names ("blinking orange"). A "Yes"
    # is held until it gives the limit its passage sets ("within 14 days"); one that never does
    # fails.
    match_question: bool = True
    # An amount must belong to what the answer says it is about: "You can return it within 14
    # days" fails where "within 30 days of delivery" is the return window and "14 days" the
    # deadline for sending back a defective unit (another sentence with an amount of the same
    # kind shares more of the answer's and the question's words). "free" counts as a price, and
    # "every 2 weeks" and "monthly" are both how often. The question's thing must be named where
    # the amount is: "The replacement cover is $9" fails where $9 is what a sleeve costs.
    bind_amounts: bool = True
    # A quote stays on the point: a second sentence from another page that the ranking (by
    # meaning) puts far below the best is left out, unless it gives what the best lacks. "When
    # does live chat open on Saturdays?" gets the chat hours, not also when orders ship.
    focused_quotes: bool = True
    # A question that asks for every item of a kind ("Which colors can the light ring show?",
    # "What payment methods do you accept?") gets every item of the list or table that its pages
    # name by that kind (a section title, a lead-in, a first column's heading): the chunk that
    # holds it is shown first, an answer is held until it has named every item, and the fallback
    # quotes the list whole instead of the two items closest to the question.
    whole_lists: bool = True
    # A message typed as customers type ("whats the return window", "what does e4 mean", "can i use
    # both codes") is read as the help pages would write it ("What's the return window?", "E4",
    # "Can I ...?": ``agent.written``) by retrieval, the model and the check; the log keeps the
    # customer's words. false: read as typed (the question rules then miss codes typed in lower
    # case and yes-or-no questions with no "?").
    read_as_written: bool = True

    def __post_init__(self) -> None:
        if self.fallback not in ("extractive", "decline"):
            raise ConfigError(f"grounding.fallback must be extractive or decline, not {self.fallback!r}")
        if not 0 <= self.min_support <= 1:
            raise ConfigError(f"grounding.min_support must be between 0 and 1, not {self.min_support}")
        if self.evidence_sentences < 0:
            raise ConfigError(
                f"grounding.evidence_sentences must be 0 or more, not {self.evidence_sentences}"
            )
        if not 0 <= self.min_quote_score <= 2:
            raise ConfigError(
                f"grounding.min_quote_score must be between 0 and 2, not {self.min_quote_score}"
            )
        for name in (
            "match_question",
            "bind_amounts",
            "focused_quotes",
            "trust_declines",
            "whole_lists",
            "ask_which",
            "ask_unnamed",
            "read_as_written",
        ):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"grounding.{name} must be true or false, not {getattr(self, name)!r}")
        if not 0 <= self.quote_over_decline <= 2:
            raise ConfigError(
                f"grounding.quote_over_decline must be between 0 and 2, not {self.quote_over_decline}"
            )
        if not 0 <= self.new_word_support <= 1:
            raise ConfigError(
                f"grounding.new_word_support must be between 0 and 1, not {self.new_word_support}"
            )


HALCYON_SUGGESTIONS = [
    "How often should I replace the filter?",
    "What does a red blinking light mean?",
    "How do I connect the purifier to Wi-Fi?",
]
_HEX_COLOUR = re.compile(r"#[0-9A-Fa-f]{6}")
MIN_CONTRAST = 4.5  # WCAG 2.1 AA for normal text: the accent carries white button labels and links


@dataclass
class Branding:
    """How the customer chat looks; the company and assistant names come from ``persona``."""

    logo: str | None = None  # an image file or https URL beside the company name; None: an icon
    accent_color: str = "#1F5F99"  # buttons, links and focus rings; needs 4.5:1 against white
    welcome: str = (
        "Hi! I'm {agent_name}. Ask me anything about your {product}: "
        "filters, lights and error codes, Wi-Fi, orders, warranty."
    )  # placeholders: {agent_name}, {company}, {product}
    suggestions: list[str] = field(default_factory=lambda: list(HALCYON_SUGGESTIONS))
    source_url: str | None = None  # e.g. "https://help.example.com/{doc_id}": each source links there

    def __post_init__(self) -> None:
        if not isinstance(self.accent_color, str) or not _HEX_COLOUR.fullmatch(self.accent_color):
            raise ConfigError(
                f"branding.accent_color must be a colour like #1F5F99, not {self.accent_color!r}"
            )
        if (ratio := contrast_ratio(self.accent_color, "#FFFFFF")) < MIN_CONTRAST:
            raise ConfigError(
                f"branding.accent_color {self.accent_color} has a contrast of {ratio:.1f}:1 against "
                f"white; WCAG AA needs {MIN_CONTRAST}:1 for the white text on buttons: choose a darker colour"
            )
        try:
            self.welcome.format(agent_name="", company="", product="")
        except (KeyError, IndexError, ValueError, AttributeError) as exc:
            raise ConfigError(
                f"branding.welcome: bad placeholder {exc}; use {{agent_name}}, {{company}} or {{product}}"
            ) from exc
        if not isinstance(self.suggestions, list) or not all(isinstance(q, str) for q in self.suggestions):
            raise ConfigError("branding.suggestions must be a list of questions")
        if self.source_url is not None and (
            not re.match(r"https?://", self.source_url) or "{doc_id}" not in self.source_url
        ):
            raise ConfigError(
                f"branding.source_url must be an http(s) URL containing {{doc_id}}, not {self.source_url!r}"
            )


def contrast_ratio(first: str, second: str) -> float:
    """The WCAG 2.1 contrast ratio of two ``#RRGGBB`` colours (1 to 21)."""

    def luminance(colour: str) -> float:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@dataclass
class AgentConfig:
    home: Path = field(default_factory=lambda: default_home())
    model: str = "production"  # a registry version, "production", a directory or a hub id
    store_url: str | None = None  # SQLAlchemy URL; None: SQLite in the data home
    persona: Persona = field(default_factory=Persona)
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    escalation: EscalationSettings = field(default_factory=EscalationSettings)
    guardrails: GuardrailSettings = field(default_factory=GuardrailSettings)
    grounding: GroundingSettings = field(default_factory=GroundingSettings)
    branding: Branding = field(default_factory=Branding)
    source: str | None = None  # the YAML file this came from, if any

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def database_url(self) -> str:
        return self.store_url or f"sqlite:///{self.home / 'supportloop.db'}"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["home"] = str(self.home)
        data["database_url"] = self.database_url
        return data


MASK = "***"
_SECRET_NAME = re.compile(r"(?:password|passwd|secret|token|api_?key|credential)s?$", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^/?#@\s:]*:)[^/?#\s]*(@)")  # to the last @
_URL_SECRET_PARAM = re.compile(
    r"([?&](?:password|passwd|secret|token|access_token|api[_-]?key|key|sig|signature)=)[^&#\s]*",
    re.IGNORECASE,
)


def mask_secrets(value: Any, name: str = "") -> Any:
    """``value`` (a config's ``to_dict()`` or any part of it) with secrets replaced by ``***``:
    values of settings named like a secret, URL passwords and secret-looking URL parameters."""
    if isinstance(value, Mapping):
        return {key: mask_secrets(item, str(key)) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_secrets(item, name) for item in value]
    if isinstance(value, str) and _SECRET_NAME.search(name) and value:
        return MASK
    if isinstance(value, str):
        return _URL_SECRET_PARAM.sub(rf"\1{MASK}", _URL_PASSWORD.sub(rf"\1{MASK}\2", value))
    return value


def default_home(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("SUPPORTLOOP_HOME") or Path.home() / ".supportloop").expanduser()


def find_config_file(env: Mapping[str, str], home: Path) -> Path | None:
    explicit = env.get("SUPPORTLOOP_CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"SUPPORTLOOP_CONFIG points to {path}, which is not a file")
        return path
    for candidate in (Path.cwd() / CONFIG_FILENAME, home / CONFIG_FILENAME):
        if candidate.is_file():
            return candidate
    return None


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> AgentConfig:
    """The effective configuration: defaults, then the YAML file, then the environment."""
    env = os.environ if env is None else env
    home = default_home(env)
    file = Path(path) if path is not None else find_config_file(env, home)
    data: dict[str, Any] = {}
    if file is not None:
        data = _read_yaml(file)
    _apply_env(data, env)
    if "home" in data:
        data["home"] = Path(str(data["home"])).expanduser()
    else:
        data["home"] = home
    config = _build(AgentConfig, data, where=str(file) if file else "environment")
    config.source = str(file) if file else None
    return config


def _read_yaml(file: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read config: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{file}{line}: invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{file}: the top level must be a mapping of settings")
    return loaded


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    sections = {f.name for f in dataclasses.fields(AgentConfig) if dataclasses.is_dataclass(f.type)}
    sections |= {"persona", "generation", "retrieval", "escalation", "guardrails", "branding"}
    for key, raw in env.items():
        if not key.startswith(ENV_PREFIX) or key in ("SUPPORTLOOP_CONFIG",):
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name == "home":
            continue  # already resolved by default_home
        value = yaml.safe_load(raw) if raw.strip() else None
        if "__" in name:
            section, sub = name.split("__", 1)
            if section not in sections:
                continue
            node = data.setdefault(section, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{key}: section {section!r} in the config file is not a mapping")
            node[sub] = value
        elif name in {f.name for f in dataclasses.fields(AgentConfig)}:
            data[name] = value


def _typed(hint: Any, value: Any, name: str, expected: Any, where: str) -> Any:
    """``value`` checked (and coerced, leniently) against the setting's type; else ``ConfigError``."""
    import pydantic

    try:
        return _adapter(hint).validate_python(value)
    except pydantic.ValidationError as exc:
        problem = exc.errors()[0]["msg"]
        key = f"{where.split(': ', 1)[1]}.{name}" if ": " in where else name
        source = where.split(": ", 1)[0]
        env = f"{ENV_PREFIX}{key.replace('.', '__').upper()}"
        raise ConfigError(
            f"{source}: {key} = {value!r} is not valid: {problem} (expected {expected}; "
            f"set in the config file or as {env})"
        ) from None


@functools.cache
def _adapter(hint: Any) -> Any:
    import pydantic

    return pydantic.TypeAdapter(hint, config=pydantic.ConfigDict(coerce_numbers_to_str=True))


def _build(cls: Any, data: Mapping[str, Any], where: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping for {cls.__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where}: unknown setting(s) {', '.join(unknown)} for {cls.__name__}; "
            f"known: {', '.join(sorted(fields))}"
        )
    kwargs: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for name, value in data.items():
        default = fields[name].default_factory  # type: ignore[misc]
        sub_cls = type(default()) if callable(default) else None
        if sub_cls is not None and dataclasses.is_dataclass(sub_cls):
            kwargs[name] = _build(sub_cls, value or {}, where=f"{where}: {name}")
        else:
            kwargs[name] = _typed(hints[name], value, name, fields[name].type, where)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
