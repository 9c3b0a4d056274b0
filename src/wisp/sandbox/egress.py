"""Egress policy for sandbox uids: the internet yes, this host and private networks no.

Instances share the host's network (functions call external APIs), so the control
plane on loopback and anything on private ranges must be closed to them. An
nftables table matching the sandbox uid range does that for every instance at once,
with no per-instance cost. One table per server process, removed when it stops;
tables left by servers that died are swept at start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import subprocess

log = logging.getLogger("wisp.sandbox")

DENIED_V4 = (
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "100.64.0.0/10",
    "0.0.0.0/8",
)
DENIED_V6 = ("::1/128", "fc00::/7", "fe80::/10", "::ffff:0:0/96")
TABLE_PREFIX = "wisp_"


class EgressFilter:
    def __init__(self, uid_first: int, uid_last: int) -> None:
        self.uid_first = uid_first
        self.uid_last = uid_last
        self.table = f"{TABLE_PREFIX}{os.getpid()}"
        self.active = False

    @staticmethod
    def available() -> bool:
        return os.geteuid() == 0 and shutil.which("nft") is not None

    def install(self) -> bool:
        """Install the rules; False (with a warning) when this host cannot."""
        if self.active:
            return True
        if not self.available():
            return False
        self._sweep_stale()
        uids = f"{self.uid_first}-{self.uid_last}"
        script = "\n".join(
            [
                f"add table inet {self.table}",
                f"add chain inet {self.table} out "
                "{ type filter hook output priority 0; policy accept; }",
                f"add rule inet {self.table} out meta skuid {uids} "
                f"ip daddr {{ {', '.join(DENIED_V4)} }} reject",
                f"add rule inet {self.table} out meta skuid {uids} "
                f"ip6 daddr {{ {', '.join(DENIED_V6)} }} reject",
            ]
        )
        done = subprocess.run(["nft", "-f", "-"], input=script, text=True, capture_output=True)
        if done.returncode != 0:
            log.warning("egress filter not installed: %s", done.stderr.strip())
            return False
        self.active = True
        return True

    def remove(self) -> None:
        if self.active:
            with contextlib.suppress(OSError):
                subprocess.run(["nft", "delete", "table", "inet", self.table], capture_output=True)
            self.active = False

    def _sweep_stale(self) -> None:
        listed = subprocess.run(["nft", "list", "tables"], text=True, capture_output=True)
        for match in re.finditer(rf"table inet {TABLE_PREFIX}(\d+)", listed.stdout):
            pid = int(match.group(1))
            if pid != os.getpid() and not os.path.exists(f"/proc/{pid}"):
                subprocess.run(
                    ["nft", "delete", "table", "inet", f"{TABLE_PREFIX}{pid}"], capture_output=True
                )
