"""The customer chat (``/``): see ``ui.chat``."""

from ui.chat import main

main()
