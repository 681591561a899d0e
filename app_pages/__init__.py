"""Streamlit pages of the gridgov app and their shared helpers (not a library)."""
