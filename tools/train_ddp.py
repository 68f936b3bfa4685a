"""Train the course's MNIST CNN with one-cycle SGD, on one process or, under torchrun, on several (DDP).

    .venv/bin/torchrun --standalone --nproc_per_node 2 tools/train_ddp.py --epochs 1   # 2 processes, this machine
    .venv/bin/python tools/train_ddp.py --epochs 1                                     # 1 process
    torchrun --nnodes 2 --node_rank 0 --nproc_per_node 8 --master_addr 10.0.0.1 --master_port 29500 \\
        tools/train_ddp.py --epochs 5 --save cnn.pt                                     # machine 0 of 2 (1: --node_rank 1)

torchrun starts one process per GPU (or CPU core) and describes the job to each in environment variables; each
process joins the process group (NCCL on GPUs, Gloo on CPUs) and trains on its share of every batch with
notebook 10's `DistributedCallback`. Only rank 0 prints the per-epoch table and the final line, and saves.
Exit code: 0 trained, 2 a usage mistake (one line on stderr).
"""
import io, os
from contextlib import nullcontext
from pathlib import Path

import torch

import cli  # tools/ is on sys.path: this script's folder
from exp.nb_10 import check_world_size, fit_mnist_cnn, get_device, is_main_process, process_group, write_atomic


def save_weights(weights, path):
    "torch.save `weights` to `path` with nb_00's `write_atomic`: a crash never leaves half a file."
    buf = io.BytesIO()
    torch.save(weights, buf)
    write_atomic(path, buf.getvalue())


def check_options(epochs, bs, lr_max, n_train, n_valid, timeout, save):
    "Raise a UsageError for an option no training could use."
    for name, value in dict(epochs=epochs, bs=bs).items():
        if not isinstance(value, int) or value < 1: raise cli.UsageError(f"--{name} {value!r}: give a whole number >= 1")
    for name, value in dict(n_train=n_train, n_valid=n_valid).items():
        if value is not None and (not isinstance(value, int) or value < 1):
            raise cli.UsageError(f"--{name} {value!r}: give a whole number of images >= 1 (or leave it out: all of them)")
    if not isinstance(lr_max, (int, float)) or lr_max <= 0: raise cli.UsageError(f"--lr_max {lr_max!r}: give a number > 0")
    if not isinstance(timeout, (int, float)) or timeout <= 0: raise cli.UsageError(f"--timeout {timeout!r}: give seconds > 0")
    if save is not None and not Path(str(save)).parent.is_dir():
        raise cli.UsageError(f"--save {save}: the folder {Path(str(save)).parent} does not exist")


def main(epochs=1, bs=64, lr_max=0.4, n_train=None, n_valid=None, seed=1, device=None, timeout=60, save=None,
         progress=False):
    """Train notebook 10's MNIST CNN with one-cycle SGD; under torchrun, on one process per GPU or CPU core.

    Args:
        epochs: epochs to train (default 1)
        bs: images per process in each batch; the global batch is bs times the number of processes (default 64)
        lr_max: the peak learning rate of the one-cycle schedule (default 0.4)
        n_train: train on the first n_train training images only (default: all 50,000)
        n_valid: validate on the first n_valid validation images only (default: all 10,000)
        seed: seed of the initial weights and of the shuffling (default 1)
        device: cpu or cuda (default: $EXP_DEVICE, else cuda when torch sees a GPU); under torchrun each
            process takes GPU number LOCAL_RANK
        timeout: seconds a process waits for the others in a collective operation before it fails (default 60)
        save: write the trained weights (a state dict) to this file, from rank 0 only
        progress: draw progress bars (rank 0 only)
    """
    check_options(epochs, bs, lr_max, n_train, n_valid, timeout, save)
    try: device = get_device(device and str(device))
    except RuntimeError as e: raise cli.UsageError(str(e))
    distributed = 'RANK' in os.environ   # torchrun describes the job in RANK, WORLD_SIZE, LOCAL_RANK, ...
    if distributed:
        try: check_world_size(int(os.environ.get('LOCAL_WORLD_SIZE', 1)), device)
        except ValueError as e: raise cli.UsageError(f"torchrun --nproc_per_node: {e}")
    with process_group(device, timeout) if distributed else nullcontext(device) as rank_device:
        res = fit_mnist_cnn(rank_device, epochs, bs, lr_max, n_train=n_train, n_valid=n_valid, seed=seed,
                            progress=progress)
        if is_main_process():   # asked inside the group: after leaving it, every process would think it is rank 0
            world = int(os.environ.get('WORLD_SIZE', 1)) if distributed else 1
            (train_loss, train_acc), (valid_loss, valid_acc) = res['train'], res['valid']
            print(f"trained on {world} process(es), {rank_device}: train_loss {train_loss:.4f}, "
                  f"valid_loss {valid_loss:.4f}, valid_accuracy {valid_acc:.4f}, fit {res['seconds']:.1f} s", flush=True)
            if save is not None:
                save_weights(res['weights'], save)
                print(f"saved the weights to {save}")
    return 0


if __name__ == '__main__': cli.run(main, prog='train_ddp')
