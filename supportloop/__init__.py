"""The distribution's own name as a module, so ``python -m supportloop`` runs the ``supportloop``
command (``agent.cli``) where the console script is not on ``PATH``. The libraries are ``agent``,
``knowledge``, ``training``, ``ui`` and ``deploy``; nothing is exported from here."""

__all__: list[str] = []
