"""``jupyter condasvc --host NAME COMMAND``: the CLI's commands on another host, through :mod:`.remote`.

The spec is built here from the same flags and spec files as locally (paths are resolved on the
remote host, against its home or the bridge's ``--root``); the bridge there does the rest with that
host's own configuration, environments, user manager and journal.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, List, Optional

from .actions import ACTIONS

#: What --host supports this round (the rest says so instead of running locally by mistake).
REMOTE_COMMANDS = ("list", "show", "create", "edit", "delete", "logs", "envs", "runs", "unit", "export-env", *ACTIONS)
#: The commands whose local code runs unchanged with ``ctx.ops`` asking the host (RemoteHost has their reads).
HOST_AWARE = ("envs", "runs", "unit", "export-env")


def hosts_for(ctx: Any) -> Any:
    from .remote import RemoteHosts

    return RemoteHosts(ctx.settings)


async def run(ctx: Any) -> int:
    """Run ``ctx.args.command_name`` on ``ctx.args.host``."""
    from . import cli

    a = ctx.args
    if a.command_name not in REMOTE_COMMANDS:
        works = ", ".join(REMOTE_COMMANDS)
        raise cli.UsageError(f"'{a.command_name}' does not work with --host yet; it works with: {works}.", field="host")
    hosts = hosts_for(ctx)
    host = hosts.get(a.host)
    try:
        if a.command_name in HOST_AWARE:
            ctx.host = host
            return int(await cli.COMMANDS[a.command_name](ctx))
        if a.command_name == "list":
            services = sorted(await host.list(), key=lambda s: s["name"])
            services = [_on(a.host, s) for s in services]

            def human(_: Any) -> None:
                if not services:
                    print(f"No services on {a.host} yet.")
                    return
                print(
                    cli.table(
                        [
                            (
                                a.host,
                                s["name"],
                                s["spec"]["kind"],
                                s["spec"]["env"],
                                cli.state_of(s),
                                s["status"].get("unit_file_state"),
                                s["status"].get("main_pid"),
                                cli.human_bytes(s["status"].get("memory_current")),
                                cli.next_run_of(s),
                            )
                            for s in services
                        ],
                        ("HOST", "NAME", "KIND", "ENV", "STATE", "ENABLED", "PID", "MEMORY", "NEXT RUN"),
                    )
                )

            ctx.emit({"host": a.host, "services": services}, human)
        elif a.command_name == "show":
            if a.unit:
                data = await host.unit_text(a.name)
                ctx.emit(data, lambda d: print(d["unit"] or "", end=""))
            else:
                ctx.emit(_on(a.host, await host.get(a.name, fresh=True)), cli.print_service)
        elif a.command_name == "create":
            spec = cli.build_spec(a, a.command)
            ctx.progress(f"creating {spec['name']} on {a.host}…")
            svc = await host.create(spec)
            if a.start:
                ctx.progress(f"starting {spec['name']} on {a.host}…")
                svc = await host.act(spec["name"], "start")

            def human_created(s: Dict[str, Any]) -> None:
                print(f"Created {s['name']} ({s['unit']}) on {a.host}.")
                cli.print_service(s)

            ctx.emit(_on(a.host, svc), human_created)
        elif a.command_name == "edit":
            svc = await host.update(a.name, _edit_patch(a, (await host.get(a.name))["spec"]))
            ctx.emit(_on(a.host, svc), cli.print_service)
        elif a.command_name == "delete":
            ctx.progress(f"deleting {a.name} on {a.host}…")
            await host.delete(a.name)
            ctx.emit({"deleted": a.name, "host": a.host}, lambda d: print(f"Deleted {a.name} on {a.host}."))
        elif a.command_name == "logs":
            return await _logs(ctx, host)
        else:
            ctx.progress(f"{a.action} {a.name} on {a.host}…")
            svc = await host.act(a.name, a.action)
            ctx.emit(_on(a.host, svc), _print_state(a.host))
        return cli.EXIT_OK
    finally:
        await hosts.close()


def _on(host: str, service: Dict[str, Any]) -> Dict[str, Any]:
    """A service as its host's bridge answered it, which names itself "local", with the host it is on."""
    return {**service, "host": host}


def _print_state(host: str) -> Any:
    from . import cli

    def show(s: Dict[str, Any]) -> None:
        print(f"{host}/{s['name']}: {cli.state_of(s)}, {s['status'].get('unit_file_state') or '-'}")

    return show


def _edit_patch(a: Any, current: Dict[str, Any]) -> Dict[str, Any]:
    """The patch of `edit` as the local command builds it: --var adds to the variables, --unset-var removes."""
    from . import cli

    patch: Dict[str, Any] = cli.read_spec_file(a.file) if a.file else {}
    flags = cli.spec_from_flags(a, a.command)
    kind, path = {**current, **patch, **flags}.get("kind"), {**current, **patch, **flags}.get("path")
    if "argv" in flags and (kind in ("script", "notebook") or (path and kind != "command")):
        flags["args"] = [*(flags.get("args") or []), *flags.pop("argv")]  # after '--': a script's arguments
    if "environment" in flags or a.unset_var:
        env = dict(patch.get("environment") or current.get("environment") or {})
        env.update(flags.get("environment", {}))
        for key in a.unset_var or []:
            if key not in env:
                raise cli.UsageError(f"The service has no variable {key}.", field="environment")
            env.pop(key)
        flags["environment"] = env
    if "parameters" in flags:
        flags["parameters"] = {**(current.get("parameters") or {}), **flags["parameters"]}
    patch.update(flags)
    for f in a.unset or []:
        patch[f] = None
    if not patch:
        raise cli.UsageError("Nothing to change: give flags (see `jupyter condasvc edit --help`) or -f PATCH.yaml.")
    return patch


async def _logs(ctx: Any, host: Any) -> int:
    from . import cli

    a = ctx.args
    page = await host.logs(
        a.name, n=a.lines, priority=a.priority, since=a.since, until=a.until, text=a.grep, boot=a.boot
    )

    def out(entries: List[Any]) -> None:
        cli.print_entries(entries, json_lines=ctx.json)

    out(page["entries"])
    if not a.follow:
        return cli.EXIT_OK
    ctx.progress(f"following {a.name} on {a.host} (Ctrl-C ends)…")
    cursor = page["last_cursor"]
    # Like the local follow: after this command's loop, in the main thread, until Ctrl-C (which then exits 0).
    ctx.after = lambda: asyncio.run(_follow(ctx, cursor, out))
    return cli.EXIT_OK


async def _follow(ctx: Any, cursor: Optional[str], out: Callable[[List[Dict[str, Any]]], None]) -> None:
    a = ctx.args
    hosts = hosts_for(ctx)
    stream = hosts.get(a.host).follow(a.name, cursor=cursor, priority=a.priority, text=a.grep)
    try:
        async for event in stream:
            if event.get("type") == "entries":
                out(event["entries"])
            elif event.get("type") == "lost":
                ctx.warn(f"{event['error'].message} (the follow resumes where it stopped)")
            elif event.get("type") == "dropped":
                ctx.warn(event.get("message") or "some entries were dropped")
    finally:
        await stream.aclose()
        await hosts.close()


async def cmd_hosts(ctx: Any) -> int:
    """``jupyter condasvc hosts``: GET hosts' rows, checked now (exit 5 when a host cannot be reached)."""
    from . import cli
    from .hosts import HostsReport, local_report

    hosts = hosts_for(ctx)
    report = HostsReport(lambda: local_report(ctx.services), hosts, max_age=0, wait=None)
    try:
        data = await report.report(refresh=True)
    finally:
        await hosts.close()

    def human(d: Dict[str, Any]) -> None:
        rows = []
        for h in d["hosts"]:
            rep = (h["report"] or {}) if not h["error"] else {}
            host, doctor = rep.get("host") or {}, rep.get("doctor") or {}
            failed = [c["id"] for c in doctor.get("checks", []) if c["ok"] is False]
            rows.append(
                (
                    h["name"],
                    "yes" if h["reachable"] else f"no ({h['error']['kind']})" if h["error"] else "-",
                    host.get("user"),
                    (host.get("manager") or {}).get("version"),
                    None if not host else "on" if host["linger"]["enabled"] else "off",
                    (host.get("journal") or {}).get("state"),
                    None if not doctor else ", ".join(failed) or "none",
                )
            )
        print(cli.table(rows, ("HOST", "REACHABLE", "USER", "SYSTEMD", "LINGER", "JOURNAL", "PROBLEMS")))
        for h in d["hosts"]:
            if h["error"]:
                print(f"\n{h['name']}: {h['error']['message']}")
                if h["error"]["fix"]:
                    print(f"  fix: {h['error']['fix']}")
        if any(r[-1] not in (None, "none") for r in rows):
            print("\n`jupyter condasvc hosts --json` (or `doctor` on that host) shows each problem with its fix.")

    ctx.emit(data, human)
    return cli.EXIT_UNREACHABLE if any(h["error"] for h in data["hosts"]) else cli.EXIT_OK
