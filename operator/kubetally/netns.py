"""A network namespace wired like a Pod's network, so a local process can stand where a Pod would.

Why: kube-apiserver refuses loopback addresses in Endpoints, so an APIService (aggregated API) can
not be routed to a process listening on 127.0.0.1. A real Pod has an address of its own, reached over
a veth pair from the node. `pod_network()` makes the same on this machine: a network namespace, a
veth pair with one end in it, and a /30 between them:

    host side  10.231.X.1/30  (in the root namespace: kube-apiserver and Prometheus bind here)
    pod side   10.231.X.2/30  (inside the namespace: the operator listens here; Endpoints name it)

X is random in 0..255 among the /24s of 10.231.0.0/16 that no address of this host (`ip -o addr`)
uses; the choice and the creation happen under a file lock, so two runs on one machine never pick
the same X. Names hold our pid and X (netns `kt-<pid>-<X>`, veths `kt<pid>h<X>` and `kt<pid>p<X>`,
at most 15 characters as Linux requires). There is no default route in the namespace: a process in
it reaches only the host side address (and its own loopback), nothing else.

`PodNetwork.wrap(argv)` is the command line that runs `argv` inside the namespace
(`ip netns exec`). On exit the namespace is deleted, which destroys the veth pair with it; a
namespace left by a run that died (its pid is gone) is deleted when the next one starts. Creating
namespaces needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2's `ip`; without them
`pod_network` raises RuntimeError saying so, and callers (the demo) fall back to loopback.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import random
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

SUBNET = ipaddress.ip_network("10.231.0.0/16")
IP_TIMEOUT = 10.0  # seconds for one `ip` command
_MAX_LINK_NAME = 15  # IFNAMSIZ - 1
_LOCK = Path(tempfile.gettempdir()) / "kubetally-netns.lock"


@dataclass(frozen=True)
class PodNetwork:
    """A network namespace `name` reached from the host at `pod_ip`; it reaches the host at `host_ip`."""

    name: str
    host_ip: str
    pod_ip: str
    host_link: str  # the veth end in the root namespace (holds host_ip)

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """The command line that runs `argv` inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `ip ARGS` with a deadline; with `check`, a failure raises RuntimeError with its message."""
    try:
        result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False, timeout=IP_TIMEOUT)
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(f"`ip {' '.join(args)}` did not finish within {IP_TIMEOUT:.0f} s") from error
    if check and result.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(args)}` failed (exit {result.returncode}): {result.stderr.strip()}")
    return result


def _used_blocks() -> set[int]:
    """The X of every 10.231.X.0/24 that holds an address of this host."""
    used: set[int] = set()
    for address in re.findall(r"\binet (\d+\.\d+\.\d+\.\d+)", _ip("-o", "-4", "addr", "show").stdout):
        parsed = ipaddress.ip_address(address)
        if parsed in SUBNET:
            used.add(int(parsed.packed[2]))
    return used


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(prefix: str) -> None:
    """Delete namespaces `<prefix>-<pid>-<X>` whose pid is gone (left by a run that was killed)."""
    pattern = re.compile(rf"^{re.escape(prefix)}-(\d+)-(\d+)$")
    for line in _ip("netns", "list").stdout.splitlines():
        match = pattern.match(line.split(" ")[0]) if line.strip() else None
        if match and not _pid_alive(int(match.group(1))):
            _ip("netns", "delete", match.group(0), check=False)
            _ip("link", "delete", f"{prefix}{match.group(1)}h{match.group(2)}", check=False)


def _preflight() -> None:
    if shutil.which("ip") is None:
        raise RuntimeError("a network namespace needs iproute2's `ip` command, which is not on PATH "
                           "(Debian: apt-get install iproute2)")
    if os.geteuid() != 0:
        raise RuntimeError("a network namespace needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN); this process is "
                           f"uid {os.geteuid()}")


def _delete(network: PodNetwork) -> None:
    """Delete the namespace (its veth end goes with it, and the peer with that) and, if a half-made
    setup left it, the host end."""
    _ip("netns", "delete", network.name, check=False)
    if _ip("link", "show", network.host_link, check=False).returncode == 0:
        _ip("link", "delete", network.host_link, check=False)


@contextmanager
def pod_network(prefix: str = "kt") -> Iterator[PodNetwork]:
    """A fresh network namespace with a veth pair to the host, deleted on exit (see the module doc).

    Stop the processes started inside before the context exits (enter their contexts inside this
    one): a namespace lives on, with its addresses, while a process is still in it. Raises
    RuntimeError when not root, without `ip`, or when a step fails (its message included)."""
    _preflight()
    pid = os.getpid()
    if not re.fullmatch(r"[a-z][a-z0-9]*", prefix) or len(f"{prefix}{pid}h255") > _MAX_LINK_NAME:
        raise ValueError(f"prefix {prefix!r}: use lowercase letters and digits, short enough for "
                         f"{_MAX_LINK_NAME}-character link names with the pid {pid}")
    with ExitStack() as stack:
        lock = stack.enter_context(_LOCK.open("a"))
        fcntl.flock(lock, fcntl.LOCK_EX)  # held while choosing X and adding the address
        _remove_stale(prefix)
        free = sorted(set(range(256)) - _used_blocks())
        if not free:
            raise RuntimeError(f"every /24 of {SUBNET} already holds an address of this host")
        block = random.SystemRandom().choice(free)
        base = SUBNET.network_address + (block << 8)
        network = PodNetwork(name=f"{prefix}-{pid}-{block}", host_ip=str(base + 1), pod_ip=str(base + 2),
                             host_link=f"{prefix}{pid}h{block}")
        pod_link = f"{prefix}{pid}p{block}"
        stack.callback(_delete, network)
        _ip("netns", "add", network.name)
        _ip("link", "add", network.host_link, "type", "veth", "peer", "name", pod_link)
        _ip("link", "set", pod_link, "netns", network.name)
        _ip("addr", "add", f"{network.host_ip}/30", "dev", network.host_link)
        _ip("link", "set", network.host_link, "up")
        fcntl.flock(lock, fcntl.LOCK_UN)
        _ip("-n", network.name, "addr", "add", f"{network.pod_ip}/30", "dev", pod_link)
        _ip("-n", network.name, "link", "set", pod_link, "up")
        _ip("-n", network.name, "link", "set", "lo", "up")
        yield network
