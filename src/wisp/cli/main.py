"""The ``wisp`` command group, and the one place errors become ``Error: ...`` lines.

Whatever goes wrong — a usage mistake, an API error, an unexpected exception —
the user sees one line on stderr and a non-zero exit status, never a traceback
(set ``WISP_DEBUG=1`` to see one).
"""

from __future__ import annotations

import errno
import os
import sys
import traceback
from collections.abc import Sequence

import click

from wisp.cli.activations import activations
from wisp.cli.admin import admin
from wisp.cli.credentials import login
from wisp.cli.deploy import deploy, plan
from wisp.cli.errors import CliError
from wisp.cli.fn import fn
from wisp.cli.output import error_line
from wisp.cli.route import route
from wisp.cli.scaffold import init
from wisp.cli.server import server
from wisp.cli.triggers import triggers
from wisp.cli.watch import watch

USAGE_EXIT = 2
INTERRUPTED_EXIT = 130


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="wisp", prog_name="wisp")
def cli() -> None:
    """Wisp: self-hosted serverless functions, OpenWhisk / DigitalOcean Functions compatible.

    \b
    Start here:
      wisp server                      run the platform on 127.0.0.1:3233
      wisp deploy examples/hello       deploy a project.yml project
      wisp fn invoke hello/hello -p name Ada
      wisp activations logs --last
    """


cli.add_command(server)
cli.add_command(login)
cli.add_command(deploy)
cli.add_command(plan)
cli.add_command(fn)
cli.add_command(activations)
cli.add_command(admin)
cli.add_command(route)
cli.add_command(triggers)
cli.add_command(init)
cli.add_command(watch)


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
