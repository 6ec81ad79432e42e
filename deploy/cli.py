"""``supportloop serve`` and ``supportloop keys``, registered lazily by ``agent.cli``.

Invariant: importing this module is cheap (click only); uvicorn, FastAPI and the agent are
imported inside the commands. ``keys create`` prints the new secret on its last line and nowhere
else ever again (the store keeps only its SHA-256).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click


def _config(ctx: click.Context) -> Any:
    from agent.cli import context_config

    return context_config(ctx)


def _store(ctx: click.Context) -> Any:
    from agent.cli import context_store

    return context_store(ctx)


# ---------------------------------------------------------------------------------- serve


@click.command()
@click.option(
    "--host", default=None, help="Interface to bind [env SUPPORTLOOP_API__HOST; default 127.0.0.1]."
)
@click.option("--port", type=int, default=None, help="Port [env SUPPORTLOOP_API__PORT; default 8000].")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes [env SUPPORTLOOP_API__WORKERS; default 1]. Each loads its own model: "
    "prefer 1 with a local model, more with a remote (vLLM) backend and PostgreSQL.",
)
@click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"])
)
@click.pass_context
def serve(
    ctx: click.Context, host: str | None, port: int | None, workers: int | None, log_level: str
) -> None:
    """Start the OpenAI-compatible HTTP API (settings: SUPPORTLOOP_* and SUPPORTLOOP_API__* variables)."""
    from deploy.settings import load_settings

    config = _config(ctx)  # fail here, with one line, on a bad configuration
    settings = load_settings(host=host, port=port, workers=workers)
    if config.source:  # the workers load the configuration again: point them at the same file
        os.environ["SUPPORTLOOP_CONFIG"] = str(Path(config.source).resolve())
    os.environ["SUPPORTLOOP_HOME"] = str(Path(config.home).resolve())
    import uvicorn

    from deploy.metrics import prepare_multiprocess, remove_multiprocess

    metrics_dir = prepare_multiprocess(settings.workers, Path(config.home))  # before workers start
    click.echo(
        f"supportloop API on http://{settings.host}:{settings.port}/v1 ({settings.workers} worker(s), "
        f"log store {config.database_url.split('://')[0]}, model {config.model})",
        err=True,
    )
    uvicorn.run(
        "deploy.server:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=log_level,
        timeout_graceful_shutdown=30,
    )
    remove_multiprocess(metrics_dir)


# ----------------------------------------------------------------------------------- keys


@click.group()
def keys() -> None:
    """Create, list and revoke API keys for the HTTP API."""


@keys.command("create")
@click.option("--name", required=True, help="Who or what the key is for (e.g. the app's name).")
@click.option(
    "--scope",
    type=click.Choice(["customer", "admin"]),
    default="customer",
    show_default=True,
    help="customer: chat, feedback and its own conversations; admin: everything.",
)
@click.pass_context
def keys_create(ctx: click.Context, name: str, scope: str) -> None:
    """Create a key; its secret is printed once, on the last line."""
    store = _store(ctx)
    try:
        key, secret = store.create_api_key(name, scope)
    finally:
        store.close()
    click.echo(f"created {key.scope} key {key.name!r} (id {key.id}); store it now, it is not shown again:")
    click.echo(secret)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
@click.pass_context
def keys_list(ctx: click.Context, as_json: bool) -> None:
    """List keys (never their secrets)."""
    store = _store(ctx)
    try:
        rows = [
            {
                "id": k.id,
                "name": k.name,
                "scope": k.scope,
                "prefix": k.prefix,
                "revoked": k.revoked,
                "created_at": k.created_at.isoformat() if k.created_at else None,
            }
            for k in store.list_api_keys()
        ]
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        state = "revoked" if row["revoked"] else "active"
        click.echo(f"{row['id']}  {row['scope']:<8}  {state:<7}  {row['prefix']}...  {row['name']}")
    if not rows:
        click.echo("no API keys yet: supportloop keys create --name NAME --scope customer|admin")


@keys.command("revoke")
@click.argument("key_id")
@click.pass_context
def keys_revoke(ctx: click.Context, key_id: str) -> None:
    """Revoke the key with id KEY_ID (running servers notice within SUPPORTLOOP_API__AUTH_CACHE_S)."""
    store = _store(ctx)
    try:
        store.revoke_api_key(key_id)
    finally:
        store.close()
    click.echo(f"revoked {key_id}")
