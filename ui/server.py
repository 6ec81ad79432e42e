"""The web app as Streamlit serves it (``supportloop ui`` runs ``streamlit run ui/server.py``):
Streamlit's own ASGI server (``st.App``) for ``app.py``, plus the one route of ours that sets the
console session cookie as ``HttpOnly`` (``ui.session_cookie``)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui.session_cookie import routes

app = st.App(str(Path(__file__).resolve().parent / "app.py"), routes=routes())
