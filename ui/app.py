"""The supportloop Streamlit app: ``supportloop ui`` runs ``streamlit run ui/app.py``.

One app, two audiences. Customers get the chat (the default, at ``/``; ``/widget`` is the same
chat for an iframe) and never see the console: without a sign-in there is no navigation at all.
The support team's console pages are always registered (so links and reloads work) and listed
once someone is signed in at ``/sign-in``; each of them checks the sign-in itself
(``ui.services.require_user``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run ui/app.py` puts ui/ on sys.path, not the repository root.
ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from agent.errors import SupportloopError  # noqa: E402
from ui import services  # noqa: E402

try:
    company = services.config().persona.company
except SupportloopError:  # the chat page says what is wrong with the config
    company = "Customer"
st.set_page_config(page_title=f"{company} support", page_icon="💬")

user = services.current_user()
signed_in = user is not None
console = "visible" if signed_in else "hidden"

chat = st.Page(
    "pages/chat.py", title="Chat with support", icon=":material/chat:", url_path="chat", default=True
)
widget = st.Page(
    "pages/widget.py",
    title="Chat with support",
    icon=":material/chat:",
    url_path="widget",
    visibility="hidden",
)
sign_in = st.Page(
    "pages/sign_in.py",
    title="Team sign-in",
    icon=":material/login:",
    url_path="sign-in",
    visibility="hidden" if signed_in else "visible",
)
console_pages = [
    st.Page(
        "pages/handoffs.py",
        title="Live handoffs",
        icon=":material/support_agent:",
        url_path="handoffs",
        visibility=console,
    ),
    st.Page(
        "pages/conversations.py",
        title="Conversations",
        icon=":material/forum:",
        url_path="conversations",
        visibility=console,
    ),
    st.Page(
        "pages/review.py",
        title="Review a conversation",
        icon=":material/rate_review:",
        url_path="review",
        visibility=console,
    ),
    st.Page(
        "pages/shortcuts.py",
        title="Verified answers",
        icon=":material/verified:",
        url_path="verified",
        visibility=console,
    ),
    st.Page(
        "pages/reasons.py",
        title="Feedback reasons",
        icon=":material/thumb_down:",
        url_path="reasons",
        visibility=console,
    ),
    st.Page("pages/provenance.py", title="Provenance", icon=":material/difference:", visibility=console),
    st.Page(
        "pages/canary.py",
        title="Canary",
        icon=":material/science:",
        url_path="canary",
        visibility=console,
    ),
    st.Page("pages/shadow.py", title="Shadow", icon=":material/visibility:", visibility=console),
    st.Page(
        "pages/dashboard.py",
        title="Dashboard",
        icon=":material/monitoring:",
        url_path="dashboard",
        visibility=console,
    ),
    st.Page(
        "pages/training.py",
        title="Training",
        icon=":material/model_training:",
        url_path="training",
        visibility="visible" if signed_in and user.role == "admin" else "hidden",
    ),
]
page = st.navigation(
    {"Customers": [chat, widget], "Support team": [sign_in, *console_pages]},
    position="sidebar" if signed_in else "hidden",  # customers see the chat only
)
customer_pages = (chat.url_path, widget.url_path, sign_in.url_path)
st.set_page_config(layout="centered" if page.url_path in customer_pages else "wide")

if user is not None:
    with st.sidebar:
        st.caption(f"Signed in as **{user.username}** ({user.role})")
        if st.button("Sign out", icon=":material/logout:", key="sign-out"):
            services.sign_out()
            st.switch_page(chat)

services.write_session_cookie()
page.run()
