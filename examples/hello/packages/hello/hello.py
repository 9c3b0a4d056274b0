"""OpenWhisk-style handler: one dict of parameters in, one dict out."""


def main(args):
    name = args.get("name", "stranger")
    greeting = args.get("greeting", "Hello")
    print(f"greeting {name}")
    return {"body": f"{greeting} {name}!"}
