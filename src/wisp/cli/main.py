"""The ``wisp`` command group, and the one place errors become ``Error: ...`` lines.

Whatever goes wrong — a usage mistake, an API error, an unexpected exception —
the user sees one line on stderr and a non-zero exit status, never a traceback
(set ``WISP_DEBUG=1`` to see one).
"""

from __future__ import annotations

import errno
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NamedTuple

import click

from wisp import __version__
from wisp.cli.errors import CliError, error_line

USAGE_EXIT = 2
INTERRUPTED_EXIT = 130


class Subcommand(NamedTuple):
    module: str
    attribute: str
    summary: str  # the first paragraph of the command's help, for `wisp --help`


# Each subcommand's module is imported only when that command runs: importing them all
# (with Rich, YAML and the deploy machinery behind them; httpx once) took most of a one-shot
# command's time. tests/cli/test_main.py checks the summaries against the commands.
SUBCOMMANDS = {
    "activations": Subcommand(
        "wisp.cli.activations", "activations", "Activation records: list, get, result, logs."
    ),
    "admin": Subcommand(
        "wisp.cli.admin",
        "admin",
        "Operator commands; they use the store of --data-dir (or WISP_DATABASE_URL).",
    ),
    "context": Subcommand(
        "wisp.cli.context",
        "context",
        "Named contexts (API host and key), as `wisp login` and `wisp server` save them.",
    ),
    "deadletters": Subcommand(
        "wisp.cli.deadletters",
        "deadletters",
        "Dead letters: asynchronous activations out of retries or age; list, get, redrive, purge.",
    ),
    "deploy": Subcommand(
        "wisp.cli.deploy",
        "deploy",
        "Deploy a project: DIRECTORY/project.yml and DIRECTORY/packages/<pkg>/<fn>.",
    ),
    "fn": Subcommand("wisp.cli.fn", "fn", "Invoke and manage functions."),
    "init": Subcommand(
        "wisp.cli.scaffold",
        "init",
        "Create a new project in DIRECTORY (which must be empty or not exist yet).",
    ),
    "login": Subcommand(
        "wisp.cli.credentials",
        "login",
        "Check a key against the server and save it for later commands.",
    ),
    "plan": Subcommand(
        "wisp.cli.deploy",
        "plan",
        "Show what `wisp deploy DIRECTORY` would change, without changing anything.",
    ),
    "route": Subcommand(
        "wisp.cli.route",
        "route",
        "Expose functions as public gateway routes with an access policy.",
    ),
    "runtimes": Subcommand(
        "wisp.cli.runtimes",
        "runtimes",
        "The runtime kinds the server accepts, and the installed one that runs each.",
    ),
    "secret": Subcommand(
        "wisp.cli.secret",
        "secret",
        'Secrets (encrypted at rest): set, list, delete; functions reference {"$secret": NAME}.',
    ),
    "server": Subcommand(
        "wisp.cli.server",
        "server",
        "Run the platform (API, invoker, sandboxes) with embedded defaults.",
    ),
    "triggers": Subcommand(
        "wisp.cli.triggers",
        "triggers",
        "Scheduled and fired triggers, and the rules that run functions.",
    ),
    "watch": Subcommand(
        "wisp.cli.watch",
        "watch",
        "Deploy DIRECTORY, then redeploy the functions you change as you save them.",
    ),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use, listed from :data:`SUBCOMMANDS`."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*SUBCOMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in SUBCOMMANDS:
            entry = SUBCOMMANDS[cmd_name]
            command = getattr(importlib.import_module(entry.module), entry.attribute)
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names))
        rows = []
        for name in names:
            # A bare stand-in shortens the summary as click would the command's own help,
            # through click's public API (its helper in click.utils is deprecated in 8.5).
            command = self.commands.get(name) or click.Command(name, help=SUBCOMMANDS[name].summary)
            summary = command.get_short_help_str(limit)
            rows.append((name, summary))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
# The version is the package's own: reading the installed metadata costs start-up time.
@click.version_option(__version__, prog_name="wisp")
def cli() -> None:
    """Wisp: self-hosted serverless functions, OpenWhisk / DigitalOcean Functions compatible.

    \b
    Start here:
      wisp server                      run the platform on 127.0.0.1:3233
      wisp deploy examples/hello       deploy a project.yml project
      wisp fn invoke hello/hello -p name Ada
      wisp activations logs --last
    """


def _fail(message: str, code: int) -> int:
    click.echo(f"Error: {error_line(message)}", err=True)
    return code


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the exit status."""
    try:
        result = cli.main(args=argv, prog_name="wisp", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.format_message())
        return 0
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        return _fail(exc.format_message() + hint, USAGE_EXIT)
    except click.ClickException as exc:
        return _fail(exc.format_message(), exc.exit_code)
    except CliError as exc:
        return _fail(exc.message, exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        return _fail("interrupted", INTERRUPTED_EXIT)
    except OSError as exc:
        if exc.errno == errno.EPIPE:  # e.g. `wisp activations list | head`
            _silence_stdout()
            return 1
        return _fail(_unexpected(exc), 1)
    except Exception as exc:
        return _fail(_unexpected(exc), 1)
    return result if isinstance(result, int) else 0


def _unexpected(exc: BaseException) -> str:
    if os.environ.get("WISP_DEBUG"):
        import traceback

        traceback.print_exception(exc)
    detail = str(exc)
    return f"unexpected {type(exc).__name__}" + (f": {detail}" if detail else "")


def _silence_stdout() -> None:
    # Python would otherwise report the broken pipe again when flushing at exit.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
