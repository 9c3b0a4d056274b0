import os


def greeting(name):
    return f"Greetings, {name}{os.environ.get('GREET_PUNCTUATION', '.')}"
