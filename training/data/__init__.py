"""The dataset compiler: past conversations and reviewed logs -> TRL training files.

``compile_dataset`` reads conversation files (JSON Lines with ``turns``, HF ``messages``, CSV with
one row per turn, mtrag-style rated responses, or rows already in TRL format) and the reviewed
conversations of the log store, and builds three kinds of rows in TRL's conversational formats:

* SFT (prompt-completion): ``{"prompt": [messages], "completion": [assistant message],
  "conversation_id", "turn_index", "provenance"}``, one per agent answer;
* preference: ``{"prompt", "chosen", "rejected", "conversation_id"}``: a reviewer's correction over
  the original reply, or the higher-rated of two alternative responses (ties dropped);
* unpaired (KTO): ``{"prompt", "completion", "label", "conversation_id"}``: thumbs up/down, or,
  without thumbs, a rating >= 4 (true) / <= 2 (false).

Every row's ``provenance`` lists the passages of its prompt: document, index chunk id and text hash
(``passages.provenance``).

Invariants:

* **Same prompt as serving.** Every prompt is ``agent.prompt.build_messages(question, passages,
  persona, history)`` with the history the runtime passes (all earlier customer/agent/human turns),
  so the model is tuned on exactly the prompt it is served with.
* **PII never reaches a row.** Every text (turns, passages, corrections, alternative responses,
  conversation ids) is redacted with ``training.pii`` before rows are built. The one exception is
  a value the company itself publishes in ``docs`` (its support line or address): it is kept, and
  listed in the manifest, unless ``keep_public=False``.
* **No leak between splits.** A conversation's side is a stable hash of its (original) id, so all
  its rows land on one side, in every run, whatever the other inputs.
* **Nothing is skipped silently.** Malformed input raises ``DataError`` naming ``path:line``; with
  ``skip_invalid`` the line is skipped and reported in the manifest. Dropped duplicates, ties,
  negative answers left out of SFT and unresolved doc ids are counted there too.
* **No stale quote.** From the log store, an answer whose passages quote a document the knowledge
  index no longer holds (changed or removed) gives no row until a reviewer re-reviews it; the
  manifest counts the rows left out and names the documents (``provenance``).
* **One way in.** Trainers and the evaluation get their rows through ``read_rows`` (any file,
  a ``CompiledDataset`` or rows), which compiles with this package whatever is not rows already.

The stages, one module each: ``records`` (what readers yield), ``readers`` (files, the log store,
documents), ``redact``, ``passages`` (which passages each answer is shown, and in which order they
are looked for), ``provenance`` (which logged answers quote text the index no longer holds), ``rows`` (which answers are SFT targets, pairs, labels, dedupe, split) and
``compile`` (the orchestration, the compiled dataset and ``read_rows``).
"""

from training.data.compile import (
    COLUMNS,
    SPLIT_FILES,
    CompiledDataset,
    TrainingData,
    compile_dataset,
    read_rows,
    training_rows,
    write_rows,
)
from training.data.passages import as_served, focus_passage, passage_hash, provenance, resolve_passages
from training.data.provenance import (
    RE_REVIEWED,
    FlaggedAnswer,
    IndexState,
    StaleCheck,
    check_store,
    current_index,
    flagged_answers,
    leave_out_stale,
    re_review,
    stale_reason,
)
from training.data.readers import (
    FORMATS,
    detect_format,
    from_store,
    load_docs,
    load_rows,
    merge_feedback,
    read_source,
    response_score,
)
from training.data.records import (
    Alternative,
    PassThroughRow,
    Retriever,
    Row,
    SourceConversation,
    TurnFeedback,
    question_and_history,
)
from training.data.redact import Redactor, public_values
from training.data.rows import (
    PromptOptions,
    dedupe,
    is_validation,
    kto_label,
    kto_rows,
    preference_pairs,
    preference_rows,
    prompt_for,
    sft_rows,
    sft_target,
)

__all__ = [
    "COLUMNS",
    "FORMATS",
    "RE_REVIEWED",
    "SPLIT_FILES",
    "Alternative",
    "CompiledDataset",
    "FlaggedAnswer",
    "IndexState",
    "PassThroughRow",
    "PromptOptions",
    "Redactor",
    "Retriever",
    "Row",
    "SourceConversation",
    "StaleCheck",
    "TrainingData",
    "TurnFeedback",
    "as_served",
    "check_store",
    "compile_dataset",
    "current_index",
    "dedupe",
    "detect_format",
    "flagged_answers",
    "focus_passage",
    "from_store",
    "is_validation",
    "kto_label",
    "kto_rows",
    "leave_out_stale",
    "load_docs",
    "load_rows",
    "merge_feedback",
    "passage_hash",
    "preference_pairs",
    "preference_rows",
    "prompt_for",
    "provenance",
    "public_values",
    "question_and_history",
    "re_review",
    "read_rows",
    "read_source",
    "resolve_passages",
    "response_score",
    "sft_rows",
    "sft_target",
    "stale_reason",
    "training_rows",
    "write_rows",
]
