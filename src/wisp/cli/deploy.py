"""``wisp deploy`` and ``wisp plan``: a project directory against the server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from wisp.cli.client import WispClient
from wisp.cli.errors import CliError
from wisp.cli.output import print_json, stderr, stdout
from wisp.deploy.apply import Outcome, apply_plan
from wisp.deploy.desired import Runtimes, desired_state
from wisp.deploy.errors import DeployError
from wisp.deploy.plan import Change, Plan, make_plan
from wisp.deploy.project import Project, load_project

F = TypeVar("F", bound=Callable[..., Any])
SYMBOLS = {"create": "[green]+[/]", "update": "[yellow]~[/]", "delete": "[red]-[/]"}
PAST = {"create": "created", "update": "updated", "delete": "deleted"}


def project_options(command: F) -> F:
    command = click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")(command)
    command = click.option(
        "--prune",
        is_flag=True,
        help="Also delete the functions, packages and routes this project deployed "
        "(marked whisk-managed with its name) that it no longer has.",
    )(command)
    command = click.option(
        "--env",
        "env_file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="File of KEY=VALUE lines for ${VAR} in project.yml (default: DIR/.env).",
    )(command)
    return click.argument(
        "directory", type=click.Path(exists=True, file_okay=False, path_type=Path)
    )(command)


def _prepare(
    client: WispClient, directory: Path, env_file: Path | None, prune: bool
) -> tuple[Project, Plan, str]:
    try:
        with stderr.status(f"Reading {directory}"):
            project = load_project(directory, env_file)
        for warning in project.warnings:
            stderr.print(f"[yellow]Warning:[/] {warning}")
        with stderr.status(f"Comparing with {client.apihost}"):
            namespace = client.namespace()
            runtimes = Runtimes(client.api_info().get("runtimes") or {})
            desired = desired_state(project, runtimes)
            plan = make_plan(desired, client, prune=prune)
        for warning in runtimes.warnings:
            stderr.print(f"[yellow]Warning:[/] {warning}")
    except DeployError as exc:
        raise CliError(exc.message) from exc
    return project, plan, namespace


def _change_line(change: Change) -> str:
    line = f"  {SYMBOLS[change.verb]} {change.label}"
    if change.verb == "update":
        line += f": {', '.join(change.reasons)}"
    return line


def _counts(plan: Plan) -> str:
    packages = sum(1 for c in plan.changes if c.entity == "package" and c.verb != "delete")
    functions = sum(1 for c in plan.changes if c.entity == "function" and c.verb != "delete")
    routes = sum(1 for c in plan.changes if c.entity == "route" and c.verb != "delete")
    counts = (
        f"{packages} package{'s' * (packages != 1)}, {functions} function{'s' * (functions != 1)}"
    )
    return counts + (f", {routes} route{'s' * (routes != 1)}" if routes else "")


def show_plan(plan: Plan) -> None:
    if plan.prune:
        # Say what prune looks at: a user who expects namespace-wide deletes must not
        # think the namespace is clean.
        note = (
            f"Prune: only what project {plan.project!r} deployed (annotation whisk-managed) "
            "is deleted"
        )
        if plan.left_alone:
            shown = ", ".join(plan.left_alone[:5]) + (", ..." * (len(plan.left_alone) > 5))
            note += f"; left alone: {len(plan.left_alone)} not deployed by it ({shown})"
        stderr.print(note + ".", markup=False, highlight=False)
    for change in plan.changes:
        if change.verb != "unchanged":
            stdout.print(_change_line(change))
    if not plan.has_changes:
        stdout.print(f"No changes: {_counts(plan)} up to date.")
        return
    counts = plan.counts()
    stdout.print(
        f"Plan: {counts['create']} to create, {counts['update']} to update, "
        f"{counts['delete']} to delete, {counts['unchanged']} unchanged."
    )


@click.command("plan")
@project_options
def plan(directory: Path, env_file: Path | None, prune: bool, as_json: bool) -> None:
    """Show what `wisp deploy DIRECTORY` would change, without changing anything."""
    with WispClient.from_credentials() as client:
        _, the_plan, namespace = _prepare(client, directory, env_file, prune)
    if as_json:
        print_json({"apihost": client.apihost, "namespace": namespace, **the_plan.to_json()})
        return
    stderr.print(f"Plan for {directory} on {client.apihost} (namespace {namespace}):")
    show_plan(the_plan)


@click.command("deploy")
@project_options
def deploy(directory: Path, env_file: Path | None, prune: bool, as_json: bool) -> None:
    """Deploy a project: DIRECTORY/project.yml and DIRECTORY/packages/<pkg>/<fn>."""
    with WispClient.from_credentials() as client:
        _, the_plan, namespace = _prepare(client, directory, env_file, prune)
        outcomes: list[Outcome] = []
        if the_plan.has_changes:
            if not as_json:
                stdout.print(f"Deploying {directory} to {client.apihost} (namespace {namespace}):")
            total = sum(1 for c in the_plan.changes if c.verb != "unchanged")

            def progress(outcome: Outcome) -> None:
                done = len(outcomes) + 1
                change = outcome.change
                if outcome.ok:
                    version = f" ({outcome.version})" if outcome.version else ""
                    stderr.print(f"  [{done}/{total}] {PAST[change.verb]} {change.label}{version}")
                    for line in outcome.build_log.rstrip().splitlines():
                        stderr.print(f"      {line}", markup=False, highlight=False, style="dim")
                    for key in outcome.api_keys:
                        stderr.print(f"      API key (shown once): {key}", highlight=False)
                else:
                    stderr.print(
                        f"  [{done}/{total}] [red]failed[/] {change.label}: {outcome.error}"
                    )

            def record(outcome: Outcome) -> None:
                progress(outcome)
                outcomes.append(outcome)

            apply_plan(the_plan, client, progress=record)
    failed = [o for o in outcomes if not o.ok]
    if as_json:
        print_json(
            {
                "apihost": client.apihost,
                "namespace": namespace,
                "changed": any(o.ok for o in outcomes),
                **the_plan.to_json(),
                "results": [o.to_json() for o in outcomes],
            }
        )
    else:
        _summary(the_plan, outcomes)
    if failed:
        raise CliError(f"{len(failed)} of {len(outcomes)} changes failed; see above")


def _summary(plan: Plan, outcomes: list[Outcome]) -> None:
    if not plan.has_changes:
        stdout.print(f"Nothing changed: {_counts(plan)} already up to date.")
        return
    for outcome in outcomes:
        if outcome.ok:
            stdout.print(_change_line(outcome.change))
    done = {verb: sum(1 for o in outcomes if o.ok and o.change.verb == verb) for verb in PAST}
    stdout.print(
        f"Deployed: {done['create']} created, {done['update']} updated, "
        f"{done['delete']} deleted, {len(plan.of('unchanged'))} unchanged."
    )
