"""``wisp init``: a new DigitalOcean-style project that ``wisp deploy`` deploys as is."""

from __future__ import annotations

from pathlib import Path

import click

from wisp.cli.errors import CliError
from wisp.cli.output import stdout

PACKAGE = "sample"
FUNCTION = "hello"

# The same function in each language: a name in, a greeting out, one log line.
SOURCES: dict[str, tuple[str, str]] = {
    "python": (
        ".py",
        '''def main(args):
    """OpenWhisk style: the parameters in, a dictionary out (main(event, context) works too)."""
    name = args.get("name", "stranger")
    print(f"greeting {name}")
    return {"body": f"Hello {name}!"}
''',
    ),
    "nodejs": (
        ".js",
        """function main(args) {
  // OpenWhisk style: the parameters in, an object out (main(event, context) works too).
  const name = args.name || 'stranger';
  console.log('greeting', name);
  return { body: `Hello ${name}!` };
}

exports.main = main;
""",
    ),
    "go": (
        ".go",
        """package main

import "fmt"

// Main is DigitalOcean's Go convention: the parameters in, the result out.
// The server compiles this file when it is deployed.
func Main(args map[string]interface{}) map[string]interface{} {
	name, ok := args["name"].(string)
	if !ok {
		name = "stranger"
	}
	fmt.Println("greeting", name)
	return map[string]interface{}{"body": "Hello " + name + "!"}
}
""",
    ),
    "php": (
        ".php",
        """<?php

// OpenWhisk style: the parameters in, an array out (main($event, $context) works too).
function main(array $args): array
{
    $name = $args['name'] ?? 'stranger';
    echo "greeting $name\\n";
    return ['body' => "Hello $name!"];
}
""",
    ),
}

PROJECT = """\
# Created by `wisp init`. Deploy it with `wisp deploy {directory}`, call it with
# `wisp fn invoke {package}/{function} -p name Ada`, or keep it deployed while you
# edit with `wisp watch {directory}`. ${{VAR}} references are filled from the
# environment or a .env file here.
parameters: {{}}
environment: {{}}
packages:
  - name: {package}
    parameters: {{}}
    environment: {{}}
    functions:
      - name: {function}
        runtime: {runtime}:default
        web: true
        parameters: {{}}
        environment: {{}}
        limits:
          timeout: 3000
          memory: 256
"""

GITIGNORE = ".env\n.deployed/\n__pycache__/\nnode_modules/\n"


@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--runtime",
    type=click.Choice(sorted(SOURCES)),
    default="python",
    show_default=True,
    help="The language of the sample function.",
)
def init(directory: Path, runtime: str) -> None:
    """Create a new project in DIRECTORY (which must be empty or not exist yet)."""
    if directory.is_dir() and any(directory.iterdir()):
        raise CliError(f"{directory} is not empty: wisp init only creates new projects")
    extension, source = SOURCES[runtime]
    function = directory / "packages" / PACKAGE / f"{FUNCTION}{extension}"
    try:
        function.parent.mkdir(parents=True, exist_ok=True)
        function.write_text(source, encoding="utf-8")
        (directory / "project.yml").write_text(
            PROJECT.format(
                directory=directory, package=PACKAGE, function=FUNCTION, runtime=runtime
            ),
            encoding="utf-8",
        )
        (directory / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot create the project in {directory}: {exc.strerror or exc}") from exc
    stdout.print(f"Created a {runtime} project in {directory}:", highlight=False)
    for path in ("project.yml", function.relative_to(directory).as_posix()):
        stdout.print(f"  {path}", highlight=False)
    stdout.print(
        f"Next: wisp deploy {directory} && wisp fn invoke {PACKAGE}/{FUNCTION} -p name Ada",
        highlight=False,
        markup=False,
    )
