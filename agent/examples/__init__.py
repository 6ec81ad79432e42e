"""Runnable examples of embedding the agent in another Python application."""
