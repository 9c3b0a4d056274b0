"""``wisp watch``: keep a project deployed while you edit it."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from wisp.cli.client import WispClient
from wisp.cli.errors import CliError, error_line
from wisp.cli.output import stderr, stdout
from wisp.deploy.apply import Outcome, apply_plan
from wisp.deploy.desired import Runtimes
from wisp.deploy.errors import DeployError
from wisp.deploy.plan import make_plan
from wisp.deploy.project import load_project
from wisp.deploy.watch import affected_functions, changed_paths, desired_for, snapshot

POLL_SECONDS = 0.2
# Editors save in several steps (write a temporary file, rename, touch): wait this
# long for the directory to settle, so one save is one deploy.
SETTLE_SECONDS = 0.1
PAST = {"create": "created", "update": "updated", "delete": "deleted"}


class Watcher:
    def __init__(self, client: WispClient, directory: Path, env_file: Path | None) -> None:
        self.client = client
        self.directory = directory
        self.env_file = env_file
        self.runtimes: dict[str, Any] = client.api_info().get("runtimes") or {}

    def deploy(self, paths: list[str] | None) -> None:
        """Plan and apply what changed: ``paths`` relative to the directory, or None
        for the whole project. Raises DeployError for a project that does not load."""
        started = time.monotonic()
        project = load_project(self.directory, self.env_file)
        only = None if paths is None else affected_functions(project, paths)
        runtimes = Runtimes(self.runtimes)
        plan = make_plan(desired_for(project, runtimes, only), self.client)
        for warning in [*project.warnings, *runtimes.warnings]:
            stderr.print(f"  [yellow]Warning:[/] {warning}")
        if not plan.has_changes:
            stdout.print("  nothing to deploy: the server is up to date")
            return
        outcomes = apply_plan(plan, self.client)
        elapsed = (time.monotonic() - started) * 1000
        for outcome in outcomes:
            self.report(outcome)
        ok = sum(o.ok for o in outcomes)
        stdout.print(f"  deployed {ok} of {len(outcomes)} changes in {elapsed:.0f} ms")

    def report(self, outcome: Outcome) -> None:
        change = outcome.change
        if not outcome.ok:
            stderr.print(f"  [red]failed[/] {change.label}: {outcome.error}")
            return
        version = f" ({outcome.version})" if outcome.version else ""
        why = f": {', '.join(change.reasons)}" if change.reasons else ""
        stdout.print(f"  {PAST[change.verb]} {change.label}{version}{why}")
        for line in outcome.build_log.rstrip().splitlines():
            stderr.print(f"      {line}", markup=False, highlight=False, style="dim")

    def loop(self) -> None:
        seen = snapshot(self.directory)
        while True:
            time.sleep(POLL_SECONDS)
            now = snapshot(self.directory)
            if now == seen:
                continue
            time.sleep(SETTLE_SECONDS)
            now = snapshot(self.directory)
            paths = changed_paths(seen, now)
            seen = now
            shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
            stdout.print(f"{datetime.now():%H:%M:%S} changed: {shown}", markup=False)
            try:
                self.deploy(paths)
            except (DeployError, CliError, OSError) as exc:
                # A half-written file, a file removed while read, a server restart:
                # say so and keep watching; the next save tries again.
                message = exc.message if isinstance(exc, DeployError | CliError) else str(exc)
                stderr.print(f"  [red]Error:[/] {error_line(message)}", highlight=False)


@click.command("watch")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--env",
    "env_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File of KEY=VALUE lines for ${VAR} in project.yml (default: DIR/.env).",
)
def watch(directory: Path, env_file: Path | None) -> None:
    """Deploy DIRECTORY, then redeploy the functions you change as you save them.

    Only what differs from the server is deployed (the same plan as `wisp deploy`);
    Ctrl-C stops watching.
    """
    with WispClient.from_credentials() as client:
        watcher = Watcher(client, directory, env_file)
        stdout.print(
            f"Watching {directory} for {client.apihost} (namespace {client.namespace()}); "
            "Ctrl-C to stop.",
            markup=False,
        )
        try:
            watcher.deploy(None)
        except DeployError as exc:
            raise CliError(exc.message) from exc
        try:
            watcher.loop()
        except KeyboardInterrupt:
            stdout.print("Stopped watching.")
