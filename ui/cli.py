"""``supportloop ui`` and ``supportloop users``, registered lazily by ``agent.cli``.

Invariant: importing this module is cheap (click only); Streamlit, SQLAlchemy and the model are
imported inside the commands, so ``supportloop --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

APP = Path(__file__).resolve().parent / "app.py"
SERVER = Path(__file__).resolve().parent / "server.py"  # APP on Streamlit's server, plus our cookie route


def _config_path(ctx: click.Context) -> str | None:
    obj = ctx.find_root().obj
    path = getattr(obj, "config_path", None)
    return str(Path(path).resolve()) if path else None


def _config(ctx: click.Context) -> Any:
    from agent.cli import context_config

    return context_config(ctx)


def _store(ctx: click.Context) -> Any:
    from agent.cli import context_store

    return context_store(ctx)


def streamlit_argv(port: int, host: str, accent: str | None = None) -> list[str]:
    theme = ["--theme.primaryColor", accent] if accent else []
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(SERVER),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        host,
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--client.toolbarMode",
        "minimal",
        *theme,
    ]


@click.command()
@click.option("--port", type=click.IntRange(1, 65535), default=8501, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.pass_context
def ui(ctx: click.Context, port: int, host: str) -> None:
    """Start the Streamlit customer chat and review console."""
    env = dict(os.environ)
    if config_path := _config_path(ctx):
        env["SUPPORTLOOP_CONFIG"] = config_path
    accent = _config(ctx).branding.accent_color
    store = _store(ctx)
    try:
        has_users = bool(store.list_users())
    finally:
        store.close()
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    click.echo(f"supportloop UI: customer chat at http://{shown}:{port}/  ·  review console at /sign-in")
    if not has_users:
        click.echo("No console accounts yet: create one with  supportloop users create NAME --role admin")
    argv = streamlit_argv(port, host, accent)
    if os.name == "nt":  # no exec on Windows
        import subprocess

        sys.exit(subprocess.call(argv, env=env))
    sys.stdout.flush()
    os.execve(sys.executable, argv, env)


@click.group()
def users() -> None:
    """Manage support-console users (admin or reviewer)."""


@users.command("create")
@click.argument("username")
@click.option(
    "--role", type=click.Choice(["admin", "reviewer"]), required=True, help="admin: also runs training."
)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
@click.pass_context
def create_user(ctx: click.Context, username: str, role: str, password_stdin: bool) -> None:
    """Create a console account. The password is stored Argon2id-hashed."""
    if password_stdin:
        password = click.get_text_stream("stdin").readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    store = _store(ctx)
    try:
        user = store.create_user(username, password, role)
    finally:
        store.close()
    click.echo(f"created {user.role} {user.username!r}")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def list_users(ctx: click.Context, as_json: bool) -> None:
    """List console accounts."""
    import json

    store = _store(ctx)
    try:
        accounts = store.list_users()
    finally:
        store.close()
    if not accounts:
        click.echo("no users; create one with: supportloop users create NAME --role admin", err=True)
    for user in accounts:
        if as_json:
            data = {"username": user.username, "role": user.role, "disabled": user.disabled}
            click.echo(
                json.dumps({**data, "created_at": user.created_at.isoformat() if user.created_at else None})
            )
        else:
            state = "  (disabled)" if user.disabled else ""
            click.echo(f"{user.username:<24} {user.role:<9}{state}")


@users.command("disable")
@click.argument("username")
@click.option("--enable", is_flag=True, help="Re-enable the account instead.")
@click.pass_context
def disable_user(ctx: click.Context, username: str, enable: bool) -> None:
    """Disable (or --enable) a console account; its sessions cannot sign in again."""
    store = _store(ctx)
    try:
        store.set_user_disabled(username, not enable)
    finally:
        store.close()
    click.echo(f"{'enabled' if enable else 'disabled'} {username!r}")
