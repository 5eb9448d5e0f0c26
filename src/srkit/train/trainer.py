"""The training loop behind ``srkit train``: resumable bit-exactly, validating, DDP-ready.

Rule for distributed runs (``torchrun --nproc_per_node=K srkit train ...``): ``data.batch_size``
is the *global* batch, split evenly across the K processes, and the learning rate is unchanged.
A K-process run therefore follows the single-process run (same samples, same averaged
gradients); it only spreads the work.
"""

from __future__ import annotations

import copy
import json
import math
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from srkit.archs import InputConvention, build, get_spec
from srkit.bench.machine import machine_summary
from srkit.config import to_dict
from srkit.data.degrade import Degradation, DegradationConfig
from srkit.image.color import rgb_to_y
from srkit.losses import WeightedLoss
from srkit.metrics.sr import crop_border
from srkit.train.config import ExperimentConfig, ScheduleConfig
from srkit.train.data import BatchKeys, ImageCache, PatchDataset, single_threaded_worker

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


# --- pieces -------------------------------------------------------------------------------


def lr_factor(schedule: ScheduleConfig, total: int):
    """Multiplier of the base learning rate at iteration ``it`` (0-based)."""

    def factor(it: int) -> float:
        value = 1.0
        if schedule.name == "step" and schedule.step_size > 0:
            value = schedule.gamma ** (it // schedule.step_size)
        elif schedule.name == "multistep":
            value = schedule.gamma ** sum(it >= m for m in schedule.milestones)
        elif schedule.name == "cosine":
            span = max(1, total - schedule.warmup)
            progress = min(1.0, max(0.0, (it - schedule.warmup) / span))
            value = 0.5 * (1 + math.cos(math.pi * progress))
        if schedule.warmup and it < schedule.warmup:
            value *= (it + 1) / schedule.warmup
        return value

    return factor


def make_optimizer(config: ExperimentConfig, params) -> torch.optim.Optimizer:
    opt = config.train.optimizer
    if opt.name == "adam":
        return torch.optim.Adam(
            params, lr=opt.lr, betas=tuple(opt.betas), weight_decay=opt.weight_decay
        )
    if opt.name == "adamw":
        return torch.optim.AdamW(
            params, lr=opt.lr, betas=tuple(opt.betas), weight_decay=opt.weight_decay
        )
    return torch.optim.SGD(params, lr=opt.lr, momentum=opt.momentum, weight_decay=opt.weight_decay)


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


def make_degradation(spec: str | dict | None) -> Degradation:
    from srkit.config import from_dict

    if spec is None:
        return Degradation()
    if isinstance(spec, str):
        return Degradation.from_yaml(spec)
    return Degradation.from_config(from_dict(DegradationConfig, spec, where="data.degradation"))


def network_channels(x: torch.Tensor, convention: InputConvention) -> torch.Tensor:
    """RGB in [0, 1] -> the network's channels (Y for Y-only networks), still in [0, 1]."""
    return rgb_to_y(x) if convention.channels == "y" else x


class Ema:
    """Exponential moving average of a network's parameters (buffers are copied)."""

    def __init__(self, net: nn.Module, decay: float) -> None:
        self.decay = decay
        self.net = copy.deepcopy(net).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)

    def decay_at(self, step: int) -> float:
        """Warm-up: ``min(decay, (1 + step) / (10 + step))``, so the average forgets the starting
        weights quickly (a randomly initialised layer of an x2 -> x4 transfer would otherwise
        still weigh 0.999^4000 = 1.8% after 4000 iterations)."""
        return min(self.decay, (1.0 + step) / (10.0 + step))

    @torch.no_grad()
    def update(self, net: nn.Module, step: int) -> None:
        weight = 1.0 - self.decay_at(step)
        for ema_p, p in zip(self.net.parameters(), net.parameters(), strict=True):
            ema_p.lerp_(p.detach(), weight)
        for ema_b, b in zip(self.net.buffers(), net.buffers(), strict=True):
            ema_b.copy_(b)


def transfer_weights(net: nn.Module, path: str) -> tuple[list[str], list[str]]:
    """Copy the tensors of ``path`` whose names and shapes match; returns (loaded, skipped)."""
    from srkit.weights import load_network

    source, *_ = load_network(path)
    theirs = source.state_dict()
    ours = net.state_dict()
    loaded, skipped = [], []
    for key, value in theirs.items():
        if key in ours and ours[key].shape == value.shape:
            ours[key] = value.clone()
            loaded.append(key)
        else:
            found = tuple(value.shape)
            expected = tuple(ours[key].shape) if key in ours else "absent"
            skipped.append(f"{key} {found} (ours: {expected})")
    skipped += [f"{key} (not in {Path(path).name})" for key in ours if key not in theirs]
    net.load_state_dict(ours)
    return loaded, skipped


def transfer_record(path: str, loaded: int, skipped: list[str]) -> dict[str, Any]:
    """What ``initialised_from`` holds for a run whose ``init.path`` was loaded."""
    return {"path": path, "loaded": loaded, "skipped": len(skipped)}


def init_record_from_log(log: Path) -> dict[str, Any] | None:
    """The weight transfer of the latest fresh start (``{"start": 0}``) in a run's
    ``log.jsonl``, None if it had none or there is no log: for checkpoints and manifests written
    before runs recorded ``initialised_from`` themselves. The log is appended to by every attempt,
    so a transfer logged by an earlier attempt that died before its first checkpoint does not
    count for a later one that started from scratch."""
    if not log.is_file():
        return None
    pending, found = None, None
    for line in log.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a kill
            continue
        if "init" in record and "loaded" in record:
            pending = transfer_record(record["init"], record["loaded"], record.get("skipped", []))
        elif "start" in record:
            if record["start"] == 0:
                found = pending
            pending = None
    return found


def cpu_copy(net: nn.Module) -> nn.Module:
    """A float32, NCHW copy on the CPU, where validation and export run whatever the device."""
    return copy.deepcopy(net).float().cpu().to(memory_format=torch.contiguous_format)


def save_checkpoint(path: Path, state: dict) -> None:
    """Write atomically: a kill at any moment leaves the previous or the new file, whole."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(state, temporary)
    with open(temporary, "rb") as stream:
        os.fsync(stream.fileno())
    os.replace(temporary, path)


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


# --- the run ------------------------------------------------------------------------------


class Trainer:
    def __init__(
        self,
        config: ExperimentConfig,
        out_dir: str | Path,
        *,
        resume: bool = False,
        checkpoint_every: int | None = None,
        show_progress: bool = True,
    ) -> None:
        self.config = config
        self.out = Path(out_dir)
        self.resume = resume
        self.checkpoint_every = checkpoint_every or config.train.checkpoint_every
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.is_main = self.rank == 0
        self.show_progress = show_progress and self.is_main
        self.spec = get_spec(config.arch)
        self.convention = self.spec.convention
        self.log_file = None
        self.tensorboard = None
        # what init.path really gave this run (None: from scratch); kept in checkpoints and
        # written into the manifest, so a recipe never claims a transfer that did not happen
        self.initialised_from: dict[str, Any] | None = None

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

    def validate(self, net: nn.Module, iteration: int) -> dict[str, Any]:
        from srkit.archs.adapter import NetworkModel
        from srkit.bench import evaluate_model

        model = NetworkModel(
            cpu_copy(net),
            self.config.scale,
            self.convention,
            self.config.name,
        )
        scores = {}
        for spec in self.config.val.data:
            result = evaluate_model(
                model, spec, self.config.scale, convention=self.config.val.convention
            )
            scores[result.dataset] = {"psnr": result.psnr, "ssim": result.ssim, "n": result.n}
        record = {"iter": iteration, "val": scores}
        self.log(record)
        return record

    def run(self) -> TrainResult:
        config = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        local_rank = int(os.environ.get("LOCAL_RANK", self.rank))
        device = resolve_device(config.train.device, self.world_size, local_rank)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        if self.world_size > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        torch.manual_seed(config.seed)
        net = build(config.arch, scale=config.scale, **config.arch_options)
        checkpoint_path = self.out / CHECKPOINT
        resuming = self.resume and checkpoint_path.is_file()
        # --resume without a checkpoint is a fresh start, and a fresh start takes init.path
        if config.init is not None and not resuming:
            loaded, skipped = transfer_weights(net, config.init.path)
            if config.init.strict and skipped:
                raise ValueError(f"init.strict: {len(skipped)} tensors did not match: {skipped}")
            self.log({"init": config.init.path, "loaded": len(loaded), "skipped": skipped})
            self.initialised_from = transfer_record(config.init.path, len(loaded), skipped)
            if self.is_main and skipped:
                print(f"weight transfer: {len(loaded)} tensors loaded, skipped: {skipped}")
        train_cfg = config.train
        net = net.to(device)
        if train_cfg.channels_last:
            net = net.to(memory_format=torch.channels_last)
        optimizer = make_optimizer(config, net.parameters())
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lr_factor(train_cfg.schedule, train_cfg.iters)
        )
        ema = Ema(net, train_cfg.ema) if train_cfg.ema else None
        crop = train_cfg.loss_crop
        criterion = WeightedLoss(config.losses)
        teacher = None
        if config.teacher is not None:
            from srkit.weights import load

            teacher = load(
                config.teacher.model, scale=config.scale, arch=config.teacher.arch,
                device=str(device),
            )  # fmt: skip

        start, elapsed = 0, 0.0
        best: dict[str, Any] = {"psnr": -math.inf, "iter": None}
        history: list[dict[str, Any]] = []
        if resuming:
            state = load_checkpoint(checkpoint_path)
            net.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            if ema is not None and state.get("ema") is not None:
                ema.net.load_state_dict(state["ema"])
            start, elapsed = state["iteration"], state["elapsed"]
            best, history = state["best"], state["history"]
            self.initialised_from = (
                state["initialised_from"]
                if "initialised_from" in state
                else init_record_from_log(self.out / LOG)
            )
            torch.set_rng_state(state["rng"]["torch"])
            if self.is_main:
                print(f"resuming {checkpoint_path} at iteration {start}/{train_cfg.iters}")
        elif self.resume and self.is_main:
            origin = "from scratch" if config.init is None else f"from {config.init.path}"
            print(f"--resume: no checkpoint in {self.out}, starting at iteration 0 {origin}")
        if start >= train_cfg.iters:
            raise ValueError(
                f"the checkpoint is at iteration {start}; nothing left of --iters "
                f"{train_cfg.iters} (raise --iters to train further)"
            )

        model: nn.Module = net
        if self.world_size > 1:
            model = nn.parallel.DistributedDataParallel(
                net, device_ids=[device.index] if device.type == "cuda" else None
            )

        cache = ImageCache.load(
            config.data.train,
            min_side=max(config.data.lr_patch * config.scale, config.data.min_size),
            show_progress=self.show_progress,
            rescale=config.data.rescale,
        )
        dataset = PatchDataset(
            cache,
            config.scale,
            config.data.lr_patch,
            make_degradation(config.data.degradation),
            config.seed,
            flip=config.data.flip,
            rot90=config.data.rot90,
        )
        sampler = BatchKeys(
            start, train_cfg.iters, config.data.batch_size, self.rank, self.world_size
        )
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_sampler=sampler,
            num_workers=config.data.workers,
            worker_init_fn=single_threaded_worker if config.data.workers else None,
            prefetch_factor=4 if config.data.workers else None,
            pin_memory=device.type == "cuda",
        )
        self._open_tensorboard()
        self.log(
            {"start": start, "config": to_dict(config), "world_size": self.world_size,
             "device": str(device)}
        )  # fmt: skip
        autocast = torch.autocast(
            device.type, dtype=torch.bfloat16, enabled=train_cfg.precision == "bf16"
        )
        kill_at = int(os.environ.get(_KILL_ENV, "0"))
        memory = torch.channels_last if train_cfg.channels_last else torch.contiguous_format

        progress = _progress(self.show_progress)
        task = progress.add_task(
            config.name, total=train_cfg.iters, completed=start, loss=0.0, lr=0.0, rate=""
        )
        iteration = start
        tick, tick_iter = time.perf_counter(), start
        run_start = time.perf_counter()
        net.train()
        with progress:
            for lr_batch, hr_batch in loader:
                lr_batch = lr_batch.to(device, non_blocking=True)
                hr_batch = hr_batch.to(device, non_blocking=True)
                x = self.convention.to_network(network_channels(lr_batch, self.convention))
                x = x.contiguous(memory_format=memory)
                target = network_channels(hr_batch, self.convention)
                with autocast:
                    out = crop_border(self.convention.from_network(model(x).float()), crop)
                    target = crop_border(target, crop)
                    loss, parts = criterion(out, target)
                    if teacher is not None:
                        teacher_out = network_channels(teacher(lr_batch).clone(), self.convention)
                        teacher_out = crop_border(teacher_out, crop)
                        kd_loss, _ = criterion(out, teacher_out)
                        weight = config.teacher.weight
                        loss = (1 - weight) * loss + weight * kd_loss
                        parts["distill"] = kd_loss.detach()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if train_cfg.grad_clip:
                    nn.utils.clip_grad_norm_(net.parameters(), train_cfg.grad_clip)
                optimizer.step()
                scheduler.step()
                if ema is not None:
                    ema.update(net, iteration)
                iteration += 1
                current_lr = optimizer.param_groups[0]["lr"]
                speed = (iteration - start) / max(time.perf_counter() - run_start, 1e-9)
                shown = {}
                if iteration % 10 == 0 or device.type == "cpu":
                    # reading the loss waits for the GPU: do it only now and then there
                    shown = {"loss": float(loss.detach()), "lr": current_lr}
                progress.update(task, advance=1, rate=f"{speed:.2f} it/s", **shown)
                if iteration % train_cfg.log_every == 0 or iteration == train_cfg.iters:
                    now = time.perf_counter()
                    rate = (iteration - tick_iter) / max(now - tick, 1e-9)
                    tick, tick_iter = now, iteration
                    self.log(
                        {"iter": iteration, "loss": float(loss.detach()),
                         **{name: float(value) for name, value in parts.items()},
                         "lr": current_lr, "it_per_s": rate}
                    )  # fmt: skip
                eval_net = ema.net if ema is not None else net
                every = config.val.every
                if self.is_main and (
                    (every and iteration % every == 0) or iteration == train_cfg.iters
                ):
                    record = self.validate(eval_net, iteration)
                    history.append(record)
                    first = next(iter(record["val"].values()))
                    if first["psnr"] > best["psnr"]:
                        best = {"psnr": first["psnr"], "ssim": first["ssim"], "iter": iteration}
                        so_far = elapsed + time.perf_counter() - run_start
                        self._export(eval_net, f"{config.name}_best", best, iteration, so_far)
                    summary = ", ".join(
                        f"{k} {v['psnr']:.3f} dB / {v['ssim']:.4f}"
                        for k, v in record["val"].items()
                    )
                    progress.console.print(f"iter {iteration}: {summary}")
                if iteration % self.checkpoint_every == 0 or iteration == train_cfg.iters:
                    total_elapsed = elapsed + time.perf_counter() - run_start
                    if self.is_main:
                        save_checkpoint(
                            checkpoint_path,
                            {
                                "iteration": iteration,
                                "elapsed": total_elapsed,
                                "model": net.state_dict(),
                                "ema": ema.net.state_dict() if ema is not None else None,
                                "optimizer": optimizer.state_dict(),
                                "scheduler": scheduler.state_dict(),
                                "best": best,
                                "history": history,
                                "initialised_from": self.initialised_from,
                                # data randomness is keyed by (seed, iteration, index): the
                                # iteration is the data-order state; torch's covers the rest
                                "rng": {"torch": torch.get_rng_state()},
                                "config": to_dict(config),
                            },
                        )
                    if self.world_size > 1:
                        dist.barrier()
                    if kill_at and iteration == kill_at:
                        os.kill(os.getpid(), signal.SIGKILL)
        seconds = elapsed + time.perf_counter() - run_start
        if self.world_size > 1:
            self._check_replicas(net)
        final_net = ema.net if ema is not None else net
        model_path = self.out / f"{config.name}.safetensors"
        best_path = None
        if self.is_main:
            scores = history[-1]["val"] if history else {}
            first = next(iter(scores.values()), None)
            final = {"psnr": first["psnr"], "ssim": first["ssim"]} if first else {}
            self._export(final_net, config.name, final, iteration, seconds)
            candidate = self.out / f"{config.name}_best.safetensors"
            best_path = candidate if candidate.is_file() else None
        if self.log_file is not None:
            self.log_file.close()
        if self.tensorboard is not None:
            self.tensorboard.close()
        return TrainResult(self.out, model_path, best_path, iteration, seconds, history)

    def _export(
        self, net: nn.Module, name: str, score: dict, iteration: int, seconds: float
    ) -> Path:
        from srkit.weights import save_model

        config = self.config
        recipe = {
            "config": to_dict(config),
            "iterations": iteration,
            "wall_seconds": round(seconds, 1),
            "machine": {**machine_summary(), "processes": self.world_size},
            "training_data": list(config.data.train),
            "distilled_from": config.teacher.model if config.teacher else None,
            "initialised_from": self.initialised_from,
        }
        scores = {}
        if score:
            scores["validation"] = {
                "data": list(config.val.data),
                "convention": config.val.convention,
                "psnr": score.get("psnr"),
                "ssim": score.get("ssim"),
            }
        export_net = cpu_copy(net)
        options = dict(config.arch_options)
        if callable(getattr(export_net, "fuse", None)):
            # re-parameterised nets ship in their inference form (plain convolutions)
            export_net.fuse()
            options["fused"] = True
        return save_model(
            export_net,
            self.out / f"{name}.safetensors",
            arch=config.arch,
            scale=config.scale,
            options=options,
            training_recipe=recipe,
            scores=scores,
            name=name,
        )

    def _check_replicas(self, net: nn.Module) -> None:
        flat = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
        gathered = [torch.empty_like(flat) for _ in range(self.world_size)]
        dist.all_gather(gathered, flat)
        max_diff = max(float((g - gathered[0]).abs().max()) for g in gathered)
        self.log({"replicas_identical": max_diff == 0.0, "replica_max_diff": max_diff})


def _progress(enabled: bool):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}  lr {task.fields[lr]:.2e}  {task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
    )


def train(
    config: ExperimentConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    checkpoint_every: int | None = None,
    show_progress: bool = True,
) -> TrainResult:
    """Train ``config`` into ``out_dir`` (see :class:`Trainer`)."""
    return Trainer(
        config,
        out_dir,
        resume=resume,
        checkpoint_every=checkpoint_every,
        show_progress=show_progress,
    ).run()
