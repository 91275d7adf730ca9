"""torchrun: a job of two ranks (gloo, DistributedDataParallel) is one run.

Rank 0 logs the optimizer, the losses and the checkpoint; each rank adds its own
system metrics under ``system/rank_<N>/``; no rank makes a run of its own. Both
ways the ranks find the job's run are covered: a launcher started under the agent
(its root run), and a rendezvous id (``--standalone``) naming the job.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from conftest import clean_env, cli, list_runs, run_python, show_run, write_script

pytest.importorskip("torch")

STEPS = 12

DDP_LOOP = f"""
import json, os
import torch
import torch.distributed as dist
from torch import nn

dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(0)
model = nn.parallel.DistributedDataParallel(nn.Linear(4, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
generator = torch.Generator().manual_seed(rank)
losses = []
for step in range({STEPS}):
    x = torch.randn(8, 4, generator=generator)
    loss = ((model(x) - x.sum(dim=1, keepdim=True)) ** 2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
if rank == 0:
    torch.save(model.module.state_dict(), "model.pt")
json.dump(losses, open(f"losses-{{rank}}.json", "w"))
dist.destroy_process_group()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("launch", ["agent-launcher", "rendezvous-id"])
def test_torchrun_job_is_one_run_with_rank0_training_and_per_rank_system_metrics(
    workdir: Path, launch: str
) -> None:
    script = write_script(workdir, "ddp_loop.py", DDP_LOOP)
    torchrun = ["-m", "torch.distributed.run", "--nproc_per_node=2"]
    if launch == "agent-launcher":  # the launcher runs under the agent; static rendezvous
        args = ["-m", "autologagent", *torchrun, f"--master_port={_free_port()}", str(script)]
        env = clean_env(AUTOLOG_TESTING="1", AUTOLOG_SYSTEM_METRICS_INTERVAL="1")
    else:  # AUTOLOG=1 everywhere; torchrun names the job with a fresh rendezvous id
        args = [*torchrun, "--standalone", str(script)]
        env = clean_env(AUTOLOG="1", AUTOLOG_TESTING="1", AUTOLOG_SYSTEM_METRICS_INTERVAL="1")
    env["OMP_NUM_THREADS"] = "1"
    run_python(args, cwd=workdir, env=env, timeout=240, check=True)

    runs = list_runs(workdir)
    assert [run["name"] for run in runs] == ["ddp_loop.py"], runs
    run = show_run(workdir, runs[0]["run_id"])
    assert run["status"] == "FINISHED"
    assert run["params"]["optimizer_name"] == "Adam"
    assert run["params"]["lr"] == "0.01"
    assert run["artifacts"].count("model.pt") == 1

    # train_loss is rank 0's, once per step (not once per rank).
    rank0 = json.loads((workdir / "losses-0.json").read_text())
    history = cli(workdir, "runs", "history", run["run_id"], "train_loss")
    assert [point["step"] for point in history] == list(range(STEPS))
    assert [point["value"] for point in history] == pytest.approx(rank0, rel=1e-6)

    system = [key for key in run["metrics"] if key.startswith("system/")]
    # Memory is in every sample; CPU needs two readings 50 ms apart, which a rank
    # whose sampler only gets the CPU at exit (a loaded machine) never has.
    for rank in (0, 1):
        assert f"system/rank_{rank}/process_memory_rss_megabytes" in system, system
    assert not any(key.count("/") == 1 for key in system), system  # all under a rank
