"""DigitalOcean-style handler in a folder function: main(event, context).

The folder is zipped on deploy, so the helper module beside this file is importable.
"""

from phrases import greeting


def main(event, context):
    name = event.get("name", "stranger")
    print(f"{context.function_name} called for {name}")
    return {"body": greeting(name)}
