"""supportloop's Streamlit app: the customer chat and the support team's review console.

Start it with ``supportloop ui [--port N]``; ``ui/app.py`` is the entry script. Pages call the
public APIs of ``agent`` and ``training`` only (no SQL here), and nothing imports ``ui``.
"""

__all__: list[str] = []
