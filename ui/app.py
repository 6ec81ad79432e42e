"""The supportloop Streamlit app: ``supportloop ui`` runs ``streamlit run ui/app.py``.

One app, two audiences. Customers get the chat page (the default, at ``/``). The support team's
console pages are always registered (so links and reloads work) but only listed once someone is
signed in; each of them checks the sign-in itself (``ui.services.require_user``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run ui/app.py` puts ui/ on sys.path, not the repository root.
ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from ui import services  # noqa: E402

st.set_page_config(page_title="Support", page_icon="💬", layout="centered")

user = services.current_user()
signed_in = user is not None
console = "visible" if signed_in else "hidden"

chat = st.Page("pages/chat.py", title="Chat with support", icon="💬", url_path="chat", default=True)
sign_in = st.Page(
    "pages/sign_in.py",
    title="Team sign-in",
    icon="🔐",
    url_path="sign-in",
    visibility="hidden" if signed_in else "visible",
)
console_pages = [
    st.Page("pages/handoffs.py", title="Live handoffs", icon="🙋", url_path="handoffs", visibility=console),
    st.Page(
        "pages/conversations.py", title="Conversations", icon="🗂️", url_path="conversations", visibility=console
    ),
    st.Page("pages/review.py", title="Review a conversation", icon="🔍", url_path="review", visibility=console),
    st.Page("pages/dashboard.py", title="Dashboard", icon="📈", url_path="dashboard", visibility=console),
    st.Page(
        "pages/training.py",
        title="Training",
        icon="🧪",
        url_path="training",
        visibility="visible" if signed_in and user.role == "admin" else "hidden",
    ),
]
page = st.navigation({"Customers": [chat], "Support team": [sign_in, *console_pages]})

if user is not None:
    with st.sidebar:
        st.caption(f"Signed in as **{user.username}** ({user.role})")
        if st.button("Sign out", icon="🚪", key="sign-out"):
            services.sign_out()
            st.switch_page(chat)

page.run()
