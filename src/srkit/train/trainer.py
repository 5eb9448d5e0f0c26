"""The training loop behind ``srkit train``, the same for every task: resumable bit-exactly,
validating, DDP-ready.

The trainer owns device, DDP, autocast, gradient clipping, the EMA of named networks, whole-state
checkpoints, validation scheduling, the JSONL log, TensorBoard and progress; the task
(:mod:`srkit.train.task`) owns networks, optimizers and the step.

Rule for distributed runs (``torchrun --nproc_per_node=K srkit train ...``): ``data.batch_size``
is the *global* batch, split evenly across the K processes, and the learning rate is unchanged.
A K-process run therefore follows the single-process run (same samples, same averaged
gradients); it only spreads the work.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from rich.console import Console
from torch import nn

from srkit.common.files import atomic_path
from srkit.common.machine import machine_summary
from srkit.common.progress import progress_bar
from srkit.train.batch import collate
from srkit.train.config import ExperimentConfig
from srkit.train.data import BatchKeys, single_threaded_worker
from srkit.train.task import Ema, ExportRecord, Task, TaskContext
from srkit.train.tasks import task_class

CHECKPOINT = "last.ckpt"
LOG = "log.jsonl"
_KILL_ENV = "SRKIT_DEBUG_KILL_AT"  # tests: SIGKILL ourselves right after this checkpoint


@dataclass
class TrainResult:
    out_dir: Path
    model_path: Path  # exported final weights (.safetensors beside its .json manifest)
    best_path: Path | None
    iterations: int
    seconds: float
    validation: list[dict[str, Any]] = field(default_factory=list)


def resolve_device(spec: str, world_size: int = 1, local_rank: int = 0) -> torch.device:
    """``train.device`` -> a torch device with an index for GPUs (under torchrun each process
    takes ``cuda:LOCAL_RANK``); asking for a GPU torch cannot see is an error. ``auto`` takes the
    GPU only when there is one per process."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if spec == "auto":
        spec = "cuda" if gpus >= max(world_size, 1) else "cpu"
    device = torch.device(spec)
    if device.type != "cuda":
        return device
    if not gpus:
        raise ValueError(
            f"train.device={spec}, but this torch sees no GPU "
            f"(torch {torch.__version__}); use train.device=cpu or auto"
        )
    if world_size > 1:
        return torch.device("cuda", local_rank)
    return device if device.index is not None else torch.device("cuda", torch.cuda.current_device())


def save_checkpoint(path: Path, state: dict) -> None:
    """Write atomically: a kill at any moment leaves the previous or the new file, whole."""
    with atomic_path(path, fsync=True) as temporary:
        torch.save(state, temporary)


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _score_text(name: str, scores: dict[str, Any]) -> str:
    """One validation set's line: PSNR / SSIM where there are, else every value (4 decimals)."""
    if "psnr" in scores:
        return f"{name} {scores['psnr']:.3f} dB / {scores['ssim']:.4f}"
    values = (f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in scores.items())
    return f"{name} " + ", ".join(values)


def _first_score(scores: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    first = next(iter(scores.values()), None)
    if first is None:
        return None
    value = first.get("score", first.get("psnr"))
    return {**first, "score": value} if value is not None else None


class Trainer:
    def __init__(
        self,
        config: ExperimentConfig,
        out_dir: str | Path,
        *,
        resume: bool = False,
        checkpoint_every: int | None = None,
        show_progress: bool = True,
        recipe: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.out = Path(out_dir)
        self.resume = resume
        self.checkpoint_every = checkpoint_every or config.train.checkpoint_every
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.is_main = self.rank == 0
        self.show_progress = show_progress and self.is_main
        self.recipe = recipe
        self.log_file = None
        self.tensorboard = None

    # logging
    def log(self, record: dict[str, Any]) -> None:
        if not self.is_main:
            return
        if self.log_file is None:
            self.log_file = open(self.out / LOG, "a")  # noqa: SIM115 - kept open
        self.log_file.write(json.dumps(record) + "\n")
        self.log_file.flush()
        if self.tensorboard is not None:
            step = record.get("iter", 0)
            for key, value in record.items():
                if isinstance(value, int | float) and key != "iter":
                    self.tensorboard.add_scalar(key, value, step)

    def _open_tensorboard(self) -> None:
        if not self.is_main:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except Exception:  # tensorboard is optional (srkit[train])
            return
        self.tensorboard = SummaryWriter(log_dir=str(self.out / "tensorboard"))

    def _setup(self) -> torch.device:
        local_rank = int(os.environ.get("LOCAL_RANK", self.rank))
        device = resolve_device(self.config.train.device, self.world_size, local_rank)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        if self.world_size > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return device

    def _state(self, task: Task, emas: dict[str, Ema], extra: dict[str, Any]) -> dict[str, Any]:
        return {
            "networks": {n: net.state_dict() for n, net in task.networks.items()},
            "ema": {n: ema.net.state_dict() for n, ema in emas.items()},
            "optimizers": {n: opt.state_dict() for n, opt in task.optimizers.items()},
            "schedulers": {n: s.state_dict() for n, s in task.schedulers.items()},
            "task": task.state_dict(),
            # data randomness is keyed by (seed, iteration, index): the iteration is the
            # data-order state; torch's generators cover the rest (noise inputs, dropout)
            "rng": {
                "torch": torch.get_rng_state(),
                **({"cuda": torch.cuda.get_rng_state_all()} if torch.cuda.is_available() else {}),
            },
            "config": self.config.to_dict(),
            **extra,
        }

    @staticmethod
    def _restore(task: Task, emas: dict[str, Ema], state: dict[str, Any]) -> None:
        if "networks" not in state:
            raise ValueError(
                "the checkpoint was written by an older srkit, before training tasks; "
                "start this stage afresh (remove last.ckpt) or from its exported weights (init)"
            )
        missing = sorted(set(task.networks) - set(state["networks"]))
        if missing:
            raise ValueError(f"the checkpoint has no state for network(s) {', '.join(missing)}")
        for name, net in task.networks.items():
            net.load_state_dict(state["networks"][name])
        for name, opt in task.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        for name, sched in task.schedulers.items():
            sched.load_state_dict(state["schedulers"][name])
        for name, ema in emas.items():
            if name in state.get("ema", {}):
                ema.net.load_state_dict(state["ema"][name])
        task.load_state_dict(state.get("task", {}))
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])

    def run(self) -> TrainResult:
        config, train_cfg = self.config, self.config.train
        self.out.mkdir(parents=True, exist_ok=True)
        device = self._setup()
        context = TaskContext(
            device=device,
            rank=self.rank,
            world_size=self.world_size,
            precision=train_cfg.precision,
            channels_last=train_cfg.channels_last,
            grad_clip=train_cfg.grad_clip,
            show_progress=self.show_progress,
            log=self.log,
        )
        task = task_class(config.task)(config, context)
        checkpoint_path = self.out / CHECKPOINT
        resuming = self.resume and checkpoint_path.is_file()
        torch.manual_seed(config.seed)  # before the networks: their initialisation draws from it
        task.build(resuming)  # a fresh start (also --resume without a checkpoint) takes init
        context.networks, context.optimizers = task.networks, task.optimizers
        emas = (
            {name: Ema(task.networks[name], train_cfg.ema) for name in train_cfg.ema_of}
            if train_cfg.ema
            else {}
        )
        context.averages = {name: ema.net for name, ema in emas.items()}
        end = train_cfg.end
        start, elapsed = 0, 0.0
        best: dict[str, Any] = {"score": -math.inf, "iter": None}
        history: list[dict[str, Any]] = []
        if resuming:
            state = load_checkpoint(checkpoint_path)
            self._restore(task, emas, state)
            start, elapsed = state["iteration"], state["elapsed"]
            best, history = state["best"], state["history"]
            if self.is_main:
                print(f"resuming {checkpoint_path} at iteration {start}/{end}")
        elif self.resume and self.is_main:
            origin = "from scratch" if config.init is None else f"from {config.init.path}"
            print(f"--resume: no checkpoint in {self.out}, starting at iteration 0 {origin}")
        if start == end and self.is_main:
            # killed after its last checkpoint but before the export: nothing left but that
            print(f"the checkpoint is at the last iteration ({end}): exporting it")
        if start > end:
            raise ValueError(
                f"the checkpoint is at iteration {start}; nothing left of --iters "
                f"{end} (raise --iters to train further)"
            )

        context.models = dict(task.networks)
        if self.world_size > 1:
            for name in task.optimizers:
                context.models[name] = nn.parallel.DistributedDataParallel(
                    task.networks[name],
                    device_ids=[device.index] if device.type == "cuda" else None,
                    find_unused_parameters=getattr(task, "unused_parameters", False),
                )

        dataset = task.dataset()
        sampler = BatchKeys(start, end, config.data.batch_size, self.rank, self.world_size)
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=collate,
            num_workers=config.data.workers,
            worker_init_fn=single_threaded_worker if config.data.workers else None,
            prefetch_factor=4 if config.data.workers else None,
            pin_memory=device.type == "cuda",
            # the loader draws its workers' base seed from this generator, not from torch's
            # global one, which the task's own draws (noise, label smoothing) use and the
            # checkpoint restores; samples are keyed by (seed, iteration, index) anyway
            generator=torch.Generator().manual_seed(config.seed),
        )
        self._open_tensorboard()
        self.log(
            {"start": start, "config": config.to_dict(), "world_size": self.world_size,
             "device": str(device), "task": config.task}
        )  # fmt: skip
        kill_at = int(os.environ.get(_KILL_ENV, "0"))

        progress = _progress(self.show_progress)
        bar = progress.add_task(config.name, total=end, completed=start, loss=0.0, lr=0.0, rate="")
        iteration = start
        tick, tick_iter = time.perf_counter(), start
        run_start = time.perf_counter()
        for net in task.networks.values():
            net.train()
        first_optimizer = next(iter(task.optimizers.values()), None)
        with progress:
            for batch in loader:
                batch = batch.to(device, non_blocking=True)
                logs = task.step(batch, iteration)
                with warnings.catch_warnings():
                    # schedules count iterations, also those in which a network did not step
                    # (a discriminator-only warm-up)
                    warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step")
                    for scheduler in task.schedulers.values():
                        scheduler.step()
                for name, ema in emas.items():
                    ema.update(task.networks[name], iteration)
                iteration += 1
                current_lr = first_optimizer.param_groups[0]["lr"] if first_optimizer else 0.0
                speed = (iteration - start) / max(time.perf_counter() - run_start, 1e-9)
                shown = {}
                if "loss" in logs and (iteration % 10 == 0 or device.type == "cpu"):
                    # reading the loss waits for the GPU: do it only now and then there
                    shown = {"loss": float(logs["loss"]), "lr": current_lr}
                progress.update(bar, advance=1, rate=f"{speed:.2f} it/s", **shown)
                if iteration % train_cfg.log_every == 0 or iteration == end:
                    now = time.perf_counter()
                    rate = (iteration - tick_iter) / max(now - tick, 1e-9)
                    tick, tick_iter = now, iteration
                    lrs = {
                        (f"lr_{n}" if len(task.optimizers) > 1 else "lr"): o.param_groups[0]["lr"]
                        for n, o in task.optimizers.items()
                    }
                    self.log(
                        {"iter": iteration, **{k: float(v) for k, v in logs.items()},
                         **lrs, "it_per_s": rate}
                    )  # fmt: skip
                every = config.val.every
                if self.is_main and ((every and iteration % every == 0) or iteration == end):
                    eval_nets = _judged(task, emas)
                    scores = task.validate(eval_nets, iteration)
                    record = {"iter": iteration, "val": scores}
                    self.log(record)
                    history.append(record)
                    first = _first_score(scores)
                    if first is not None and first["score"] > best["score"]:
                        best = {**first, "iter": iteration}
                        so_far = elapsed + time.perf_counter() - run_start
                        self._export(
                            task, eval_nets, f"{config.name}_best", best, iteration, so_far
                        )
                    if scores:
                        summary = ", ".join(_score_text(k, v) for k, v in scores.items())
                        progress.console.print(f"iter {iteration}: {summary}")
                if iteration % self.checkpoint_every == 0 or iteration == end:
                    total_elapsed = elapsed + time.perf_counter() - run_start
                    if self.is_main:
                        extra = {"iteration": iteration, "elapsed": total_elapsed, "best": best,
                                 "history": history}  # fmt: skip
                        save_checkpoint(checkpoint_path, self._state(task, emas, extra))
                    if self.world_size > 1:
                        dist.barrier()
                    if kill_at and iteration == kill_at:
                        os.kill(os.getpid(), signal.SIGKILL)
        seconds = elapsed + time.perf_counter() - run_start
        if self.world_size > 1:
            self._check_replicas(task)
        final_nets = _judged(task, emas)
        model_path = self.out / f"{config.name}.safetensors"
        best_path = None
        if self.is_main:
            final = _first_score(history[-1]["val"]) if history else None
            self._export(task, final_nets, config.name, final or {}, iteration, seconds)
            candidate = self.out / f"{config.name}_best.safetensors"
            best_path = candidate if candidate.is_file() else None
        if self.log_file is not None:
            self.log_file.close()
        if self.tensorboard is not None:
            self.tensorboard.close()
        return TrainResult(self.out, model_path, best_path, iteration, seconds, history)

    def _export(
        self,
        task: Task,
        nets: dict[str, nn.Module],
        name: str,
        score: dict,
        iteration: int,
        seconds: float,
    ) -> Path:
        record = ExportRecord(
            iterations=iteration,
            seconds=seconds,
            machine={**machine_summary(), "processes": self.world_size},
            recipe=self.recipe,
        )
        return task.export(nets, self.out / f"{name}.safetensors", name, score, record)

    def _check_replicas(self, task: Task) -> None:
        flat = torch.cat(
            [p.detach().reshape(-1) for net in task.networks.values() for p in net.parameters()]
        )
        gathered = [torch.empty_like(flat) for _ in range(self.world_size)]
        dist.all_gather(gathered, flat)
        max_diff = max(float((g - gathered[0]).abs().max()) for g in gathered)
        self.log({"replicas_identical": max_diff == 0.0, "replica_max_diff": max_diff})


def _judged(task: Task, emas: dict[str, Ema]) -> dict[str, nn.Module]:
    """The networks validation and export see: each one's EMA where it has one."""
    return {n: (emas[n].net if n in emas else net) for n, net in task.networks.items()}


def _progress(enabled: bool):
    return progress_bar(
        "loss {task.fields[loss]:.4f}  lr {task.fields[lr]:.2e}  {task.fields[rate]}",
        enabled=enabled,
        remaining=True,
        transient=False,
        console=Console(),
    )


def train(
    config: ExperimentConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    checkpoint_every: int | None = None,
    show_progress: bool = True,
    recipe: dict[str, Any] | None = None,
) -> TrainResult:
    """Train ``config`` into ``out_dir`` (see :class:`Trainer`)."""
    return Trainer(
        config,
        out_dir,
        resume=resume,
        checkpoint_every=checkpoint_every,
        show_progress=show_progress,
        recipe=recipe,
    ).run()


def train_to_file(
    raw: dict[str, Any],
    run_dir: str | Path,
    output: str | Path,
    check: Callable[[ExperimentConfig], None] | None = None,
) -> TrainResult:
    """A command's own training run: check the stage mapping ``raw`` (and its files, and
    ``check``), write it to ``run_dir/config.yaml`` (so ``srkit train RUN/config.yaml`` repeats
    it), train (resuming from ``run_dir/last.ckpt`` when there is one) and copy the exported
    model to ``output`` (``.safetensors`` + ``.json``). Errors are ``ConfigError``,
    ``ValueError`` or ``OSError``; nothing is copied unless the run finished."""
    import shutil

    import yaml

    from srkit.train.experiment import check_paths, experiment_from_dict

    experiment = experiment_from_dict(raw)
    check_paths(experiment)
    if check is not None:
        check(experiment)
    run_dir, output = Path(run_dir), Path(output)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    result = train(experiment, run_dir, resume=(run_dir / "last.ckpt").is_file())
    output.parent.mkdir(parents=True, exist_ok=True)
    for suffix in (".safetensors", ".json"):
        shutil.copyfile(result.model_path.with_suffix(suffix), output.with_suffix(suffix))
    return result
