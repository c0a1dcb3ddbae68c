"""Cluster environments: where a process learns its rank, the world size and the rendezvous address.

`detect_environment` picks, in order: torchrun (TorchElastic variables), SLURM (`srun`), and otherwise
torchbolt's own launcher variables (`LightningEnvironment`, which also covers a job started by hand
with RANK/WORLD_SIZE/MASTER_ADDR set).
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping


def find_free_port() -> int:
    """A TCP port nobody listens on right now (for MASTER_PORT on one machine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ClusterEnvironment:
    """Interface: rank and rendezvous information of this process."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = os.environ if env is None else env

    @property
    def creates_processes_externally(self) -> bool:
        """True when something outside torchbolt (torchrun, srun, the user) started every rank."""
        return False

    @staticmethod
    def detect(env: Mapping[str, str] | None = None) -> bool:
        """Whether this environment is the one the process runs in."""
        return False

    @property
    def main_address(self) -> str:
        return self._env.get("MASTER_ADDR", "127.0.0.1")

    @property
    def main_port(self) -> int:
        return int(self._env.get("MASTER_PORT", "0"))

    def world_size(self) -> int:
        return int(self._env.get("WORLD_SIZE", "1"))

    def global_rank(self) -> int:
        return int(self._env.get("RANK", "0"))

    def local_rank(self) -> int:
        return int(self._env.get("LOCAL_RANK", "0"))

    def node_rank(self) -> int:
        return int(self._env.get("NODE_RANK", self._env.get("GROUP_RANK", "0")))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class LightningEnvironment(ClusterEnvironment):
    """torchbolt's own launcher (or variables set by hand): RANK, LOCAL_RANK, WORLD_SIZE, NODE_RANK."""

    @property
    def creates_processes_externally(self) -> bool:
        # A process started with LOCAL_RANK set is a child of a launcher (ours or the user's).
        return "LOCAL_RANK" in self._env

    @staticmethod
    def detect(env: Mapping[str, str] | None = None) -> bool:
        return True


class TorchElasticEnvironment(ClusterEnvironment):
    """Processes started by `torchrun` / torch.distributed.elastic."""

    @property
    def creates_processes_externally(self) -> bool:
        return True

    @staticmethod
    def detect(env: Mapping[str, str] | None = None) -> bool:
        env = os.environ if env is None else env
        return all(k in env for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK")) and (
            "TORCHELASTIC_RUN_ID" in env or "GROUP_RANK" in env
        )


class SLURMEnvironment(ClusterEnvironment):
    """Processes started by SLURM's `srun` (one task per device)."""

    @property
    def creates_processes_externally(self) -> bool:
        return True

    @staticmethod
    def detect(env: Mapping[str, str] | None = None) -> bool:
        env = os.environ if env is None else env
        # An interactive allocation (`salloc` then python) is not an srun task layout.
        return "SLURM_NTASKS" in env and "SLURM_PROCID" in env and env.get("SLURM_JOB_NAME") not in (
            "bash", "interactive")

    @property
    def main_address(self) -> str:
        if "MASTER_ADDR" in self._env:
            return self._env["MASTER_ADDR"]
        nodes = self._env.get("SLURM_NODELIST", self._env.get("SLURM_JOB_NODELIST", "127.0.0.1"))
        return _first_slurm_host(nodes)

    @property
    def main_port(self) -> int:
        if "MASTER_PORT" in self._env:
            return int(self._env["MASTER_PORT"])
        # Every task of a job derives the same port from the job id.
        return 15000 + int(self._env.get("SLURM_JOB_ID", "0")[-4:] or 0) % 1000

    def world_size(self) -> int:
        return int(self._env["SLURM_NTASKS"])

    def global_rank(self) -> int:
        return int(self._env["SLURM_PROCID"])

    def local_rank(self) -> int:
        return int(self._env.get("SLURM_LOCALID", "0"))

    def node_rank(self) -> int:
        return int(self._env.get("SLURM_NODEID", "0"))


def _first_slurm_host(nodelist: str) -> str:
    """The first host of a SLURM node list such as 'node[01-04,07],gpu2' -> 'node01'."""
    match = re.match(r"([^,\[]+)(\[([^\]]+)\])?", nodelist.strip())
    if match is None:
        return nodelist
    prefix, _, ranges = match.groups()
    if not ranges:
        return prefix
    first = ranges.split(",")[0].split("-")[0]
    return f"{prefix}{first}"


def detect_environment(env: Mapping[str, str] | None = None) -> ClusterEnvironment:
    """The environment this process runs in (torchrun, SLURM or torchbolt's launcher variables)."""
    for cls in (TorchElasticEnvironment, SLURMEnvironment):
        if cls.detect(env):
            return cls(env)
    return LightningEnvironment(env)
