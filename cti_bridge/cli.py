"""Commands of the CTI bridge: `eakte cti` (standalone bridge) and `eakte desk` (agent)."""

from __future__ import annotations

import gc
import logging
import threading
import webbrowser
from pathlib import Path
from typing import Annotated, Any

import typer

from eakte.settings import Settings

desk_app = typer.Typer(
    help="The clerk's desktop agent: pop up the caller's file.", invoke_without_command=True
)


class CtiExit:
    """Exit codes of the CTI commands (the same as the rest of the eakte CLI)."""

    INPUT = 2
    UNAVAILABLE = 5


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"eakte: {message}", err=True)
    return typer.Exit(code)


def cti(
    host: Annotated[str | None, typer.Option(help="bind address of the webhook listener")] = None,
    port: Annotated[int | None, typer.Option(help="port of the webhook listener")] = None,
) -> None:
    """Run the CTI bridge alone: webhooks, SSE, the AMI client and the ZeroMQ publisher.

    Set EAKTE_CTI_EMBEDDED=false for `eakte serve` so only this process binds the socket.
    """
    import uvicorn
    import zmq

    from cti_bridge.runtime import attach_bridge
    from eakte.app import create_app

    settings = Settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(settings)
    attach_bridge(app, settings, required=True)
    # The objects of the imported modules and the app live as long as the process: moved out
    # of the collector's generations, a full collection no longer walks them all, which
    # showed as pauses of several milliseconds in the pop-up latency's tail.
    gc.freeze()
    try:
        uvicorn.run(
            app,
            host=host or settings.cti_host,
            port=port or settings.cti_port,
            log_level=settings.log_level.lower(),
            # Every call event is one short request: the C parser and event loop and no
            # access log line per request keep the bridge's own overhead per call small.
            http="httptools",
            loop="uvloop",
            access_log=False,
        )
    except zmq.ZMQError as exc:
        raise _fail(
            f"cannot bind {settings.cti_pub_endpoint}: {exc}", CtiExit.UNAVAILABLE
        ) from None


@desk_app.callback()
def desk(
    ctx: typer.Context,
    extension: Annotated[str | None, typer.Option(help="your phone extension")] = None,
    print_only: Annotated[
        bool, typer.Option("--print", help="print the file's address instead of opening it")
    ] = False,
    desk_dir: Annotated[Path | None, typer.Option(help="where the enrollment is kept")] = None,
) -> None:
    """Wait for calls to your extension and open the caller's file in the browser."""
    if ctx.invoked_subcommand is not None:
        return
    if not extension:
        raise _fail("name your extension: eakte desk --extension 201", CtiExit.INPUT)
    from cti_bridge.desk import DeskAgent, DeskError, describe, load_config

    try:
        config = load_config(desk_dir or Settings().desk_dir)
    except DeskError as exc:
        raise _fail(str(exc), CtiExit.INPUT) from None

    def handle(event: dict[str, Any]) -> None:
        typer.echo(describe(event))
        files = event.get("files") or []
        if files and not print_only:
            webbrowser.open(files[0]["url"])

    agent = DeskAgent(config, extension)
    typer.echo(f"waiting for calls to extension {extension} ({config.endpoint})")
    stop = threading.Event()
    try:
        agent.run(handle, stop)
    except KeyboardInterrupt:
        stop.set()
    finally:
        agent.close()


@desk_app.command("enroll")
def desk_enroll(
    server: Annotated[str, typer.Option(help="address of eakte, e.g. https://akte.example.org")],
    token: Annotated[str, typer.Option(help="your token (as for the API)")],
    name: Annotated[str, typer.Option(help="a name for this desktop")] = "desktop",
    desk_dir: Annotated[Path | None, typer.Option(help="where to keep the enrollment")] = None,
) -> None:
    """Create this desktop's CURVE keypair and register its public key with the bridge."""
    from cti_bridge.desk import DeskError, enroll

    target = desk_dir or Settings().desk_dir
    try:
        config = enroll(server, token, target, name)
    except DeskError as exc:
        raise _fail(str(exc), CtiExit.INPUT) from None
    typer.echo(f"enrolled as {config.desktop_id}; the bridge is {config.endpoint}")


@desk_app.command("list")
def desk_list(
    server: Annotated[str, typer.Option(help="address of eakte, e.g. https://akte.example.org")],
    token: Annotated[str, typer.Option(help="your token (as for the API)")],
) -> None:
    """List the enrolled desktops: your own, or every one with an admin's token."""
    from cti_bridge.desk import DeskError, list_desktops

    try:
        desktops = list_desktops(server, token)
    except DeskError as exc:
        raise _fail(str(exc), CtiExit.INPUT) from None
    for desktop in desktops:
        by = desktop.get("enrolled_by") or "-"
        typer.echo(f"{desktop['id']}\t{by}\t{desktop.get('enrolled_at') or '-'}")


@desk_app.command("withdraw")
def desk_withdraw(
    server: Annotated[str, typer.Option(help="address of eakte, e.g. https://akte.example.org")],
    token: Annotated[str, typer.Option(help="your token (as for the API)")],
    desktop_id: Annotated[
        str | None,
        typer.Argument(metavar="ID", help="the desktop to withdraw; default: this desktop"),
    ] = None,
    desk_dir: Annotated[Path | None, typer.Option(help="where the enrollment is kept")] = None,
) -> None:
    """Withdraw an enrolled desktop (yours, or any with an admin's token).

    The bridge refuses its key from then on, and cuts it off if it is connected.
    Withdrawing this desktop also deletes its local enrollment.
    """
    from cti_bridge.desk import DeskError, load_config, withdraw

    target = desk_dir or Settings().desk_dir
    try:
        if desktop_id is None:
            desktop_id = load_config(target).desktop_id
        withdraw(server, token, desktop_id, target)
    except DeskError as exc:
        raise _fail(str(exc), CtiExit.INPUT) from None
    typer.echo(f"withdrawn {desktop_id}")
