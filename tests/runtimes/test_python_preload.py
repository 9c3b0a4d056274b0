"""The curated packages the Python zygote imports before it forks (runtimes.PRELOADED)."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

import pytest
import requests

from tests.runtimes.conftest import Invoke, make_target, make_zip
from wisp.models import SUCCESS
from wisp.runtimes import PRELOADED, preload_paths

KIND = f"python:{sys.version_info.major}.{sys.version_info.minor}"
NAMES = ("requests", "urllib3", "idna", "certifi", "charset_normalizer")

INLINE = """
import sys
BEFORE = [n for n in NAMES_HERE if n in sys.modules]
import certifi, charset_normalizer, requests, urllib3

def main(args):
    with open(certifi.where()) as bundle:
        pem = bundle.read()
    return {
        "before": BEFORE,
        "requests": requests.__version__,
        "urllib3": urllib3.__version__,
        "from": requests.__file__,
        "pem": "BEGIN CERTIFICATE" in pem,
        "detected": charset_normalizer.from_bytes("héllo wörld".encode("utf-8")).best().encoding,
        "url": requests.Request("GET", "http://example.test/a b", params={"q": 1}).prepare().url,
    }
""".replace("NAMES_HERE", repr(NAMES))


def test_the_curated_distributions_are_installed_with_wisp() -> None:
    for name in PRELOADED:
        importlib.metadata.distribution(name)  # raises when missing
    requires = importlib.metadata.requires("wisp") or []
    assert any(r.startswith("requests") for r in requires), requires


def test_preload_paths_are_the_distributions_top_level_packages() -> None:
    paths = preload_paths(("requests", "no-such-distribution-here"))
    assert paths == (Path(requests.__file__).resolve().parent,)
    every = {p.name.split(".")[0] for p in preload_paths(PRELOADED)}
    assert set(NAMES) <= every


async def test_preloaded_packages_are_imported_before_the_code_runs(invoke: Invoke) -> None:
    record = await invoke(make_target(KIND, INLINE))
    assert record.status_code == SUCCESS, (record.result, record.logs)
    result = record.result
    assert result["before"] == list(NAMES)  # in sys.modules before the code's imports
    assert result["requests"] == requests.__version__
    assert result["from"] == requests.__file__
    assert result["pem"] is True  # certifi's bundle is readable inside the sandbox
    assert result["detected"] == "utf_8"  # charset_normalizer's compiled helpers load
    assert result["url"] == "http://example.test/a%20b?q=1"


@pytest.mark.parametrize("name", ["yaml", "starlette", "wisp", "sqlalchemy"])
async def test_the_rest_of_the_servers_packages_stays_out_of_reach(
    invoke: Invoke, name: str
) -> None:
    code = f"def main(args):\n    import {name}\n    return {{}}\n"
    record = await invoke(make_target(KIND, code, name=f"no-{name}"))
    assert record.result == {"error": f"ModuleNotFoundError: No module named '{name}'"}


async def test_a_bundles_own_copy_wins_and_the_others_stay_available(invoke: Invoke) -> None:
    bundle = make_zip(
        {
            "__main__.py": (
                "import requests, urllib3\n"
                "def main(args):\n"
                "    return {'requests': requests.__version__, 'urllib3': urllib3.__version__}\n"
            ),
            "requests/__init__.py": "__version__ = '0.0.0-bundled'\n",
        }
    )
    record = await invoke(make_target(KIND, bundle, name="bundled"))
    assert record.status_code == SUCCESS, (record.result, record.logs)
    import urllib3

    assert record.result == {"requests": "0.0.0-bundled", "urllib3": urllib3.__version__}


async def test_a_bundled_dependency_of_a_preloaded_package_drops_them_all(invoke: Invoke) -> None:
    site = f"virtualenv/lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"
    bundle = make_zip(
        {
            "__main__.py": (
                "import sys\n"
                "LEFT = [n for n in ('requests', 'urllib3') if n in sys.modules]\n"
                "import idna, requests\n"
                "def main(args):\n"
                "    return {'left': LEFT, 'idna': idna.__version__,\n"
                "            'requests': requests.__version__}\n"
            ),
            f"{site}/idna/__init__.py": "__version__ = '0.0.0-bundled'\n",
        }
    )
    record = await invoke(make_target(KIND, bundle, name="bundled-idna"))
    assert record.status_code == SUCCESS, (record.result, record.logs)
    # requests is imported afresh (from the preloaded files) next to the bundle's idna.
    assert record.result == {
        "left": [],
        "idna": "0.0.0-bundled",
        "requests": requests.__version__,
    }
