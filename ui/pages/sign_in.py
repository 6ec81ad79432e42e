"""Sign-in for the support team; signed-in users go straight to the live handoffs."""

from __future__ import annotations

import streamlit as st

from ui import services

if services.current_user() is not None:
    st.switch_page("pages/handoffs.py")

st.title(":material/login: Support team sign-in")
st.caption("The review console: live handoffs, conversation review, training and the KPI dashboard.")
services.login_form(heading=False)
