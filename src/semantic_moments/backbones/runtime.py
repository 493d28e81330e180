"""Running a backbone's network on the CPU with ONNX Runtime or OpenVINO instead of torch.

The network a backbone runs (EfficientNet's folded trunk; a ViT up to the chosen layer) is exported
once to ONNX, into the user's cache (``~/.cache/semantic-moments/onnx``, or ``$XDG_CACHE_HOME``), keyed
by the network's weights and input size, and run by the chosen runtime. Nothing in the cache is trusted
blindly: each export has a SHA-256 beside it (``NAME.onnx.sha256``), and every time it is loaded its
bytes are checked against that hash and what it computes against torch (``MAX_DIFFERENCE``); a file
that is damaged, truncated, foreign or not a file at all is exported again, with a warning
(``CacheRebuilt``), so embeddings made either way are the same (the backbone's identity does not
change). On a GPU torch stays the runtime.

``auto`` (the default on the CPU) is the fastest measured runtime that is installed (docs/speed.md):
OpenVINO, then ONNX Runtime, then torch. OpenVINO's CPU precision is pinned to float32 (its default
may be bfloat16, which changes the tokens); both runtimes' idle threads sleep instead of spinning.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path

import torch

from ..errors import BackboneError, first_line
from .cache import sha256_file

RUNTIMES = ("auto", "torch", "onnxruntime", "openvino")


class CacheRebuilt(UserWarning):
    """A cached export failed its check on load and was made again."""
MAX_DIFFERENCE = 1e-3  # largest |token difference| accepted between an export and torch (seen: ~5e-5)


def cache_folder() -> Path:
    from .cache import cache_root

    return cache_root() / "onnx"


def available(runtime: str) -> bool:
    import importlib.util

    module = {"torch": "torch", "onnxruntime": "onnxruntime", "openvino": "openvino"}[runtime]
    return importlib.util.find_spec(module) is not None


def choose(runtime: str, device: torch.device) -> str:
    """The runtime to use: ``torch`` on a GPU, else ``runtime`` (``auto``: OpenVINO, else ONNX Runtime,
    else torch, whichever is installed first)."""
    if runtime not in RUNTIMES:
        raise BackboneError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if device.type != "cpu":
        if runtime not in ("auto", "torch"):
            raise BackboneError(f"the {runtime} runtime runs on the CPU only; on {device.type} torch runs the backbone")
        return "torch"
    if runtime == "auto":
        return next((name for name in ("openvino", "onnxruntime") if available(name)), "torch")
    if not available(runtime):
        raise BackboneError(f"the {runtime} runtime is not installed: pip install {runtime}")
    return runtime


def _key(module: torch.nn.Module, example: torch.Tensor, name: str) -> str:
    digest = hashlib.blake2b(digest_size=12)
    digest.update(f"{name}|{tuple(example.shape[1:])}|{torch.__version__}".encode())
    for key, value in sorted(module.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def export(module: torch.nn.Module, example: torch.Tensor, name: str) -> Path:
    """The module exported to ONNX in the cache (made now if missing; written atomically), with a
    dynamic batch dimension, checked against torch on ``example``."""
    import numpy as np

    path = cache_folder() / f"{name}-{_key(module, example, name)}.onnx"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".onnx.tmp")
    os.close(handle)
    try:
        import warnings

        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (example,), temporary, input_names=["pixels"], output_names=["features"],
                              dynamic_axes={"pixels": {0: "batch"}, "features": {0: "batch"}}, opset_version=17,
                              dynamo=False)
        session = _OnnxRuntime(Path(temporary), threads=1) if available("onnxruntime") else None
        if session is not None:
            with torch.no_grad():
                expected = module(example).float().numpy()
            difference = float(np.abs(session(example).numpy() - expected).max())
            if difference > MAX_DIFFERENCE:
                raise BackboneError(f"{name}: the ONNX export differs from torch by {difference:.2g}; use runtime=torch")
        _checksum_file(path).write_text(sha256_file(Path(temporary)))  # before the export: never a file without one
        os.replace(temporary, path)
    except Exception as error:  # noqa: BLE001 - any exporter failure: one line, torch still works
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, BackboneError):
            raise
        raise BackboneError(f"{name}: could not export the network to ONNX ({type(error).__name__}: "
                            f"{first_line(error, '')}); use runtime=torch") from None
    return path


class _OnnxRuntime:
    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        # idle threads sleep instead of spinning (as OMP_WAIT_POLICY=PASSIVE does for torch): the decoders and
        # any neighbour get the cores between batches
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        array = pixels.detach().to(torch.float32).contiguous().numpy()
        return _like_torch(torch.from_numpy(self.session.run(None, {"pixels": array})[0]))


class _OpenVino:
    def __init__(self, path: Path, threads: int) -> None:
        import openvino

        core = openvino.Core()
        # float32 throughout: OpenVINO's CPU default may infer in bfloat16, which changes the tokens
        self.model = core.compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                                           "INFERENCE_NUM_THREADS": max(1, threads)})
        self._lock = threading.Lock()  # calling a compiled model uses its one infer request: not shareable

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        array = pixels.detach().to(torch.float32).contiguous().numpy()
        with self._lock:
            return _like_torch(torch.from_numpy(self.model(array)[0].copy()))


def _like_torch(output: torch.Tensor) -> torch.Tensor:
    """Feature maps in the memory layout the torch trunk gives (channels-last), so what follows reads
    them the same way."""
    return output.contiguous(memory_format=torch.channels_last) if output.ndim == 4 else output


def _checksum_file(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _problem(path: Path, run, module: torch.nn.Module, example: torch.Tensor) -> str | None:
    """Why a loaded export cannot be used (what it computes differs from torch), or None."""
    import numpy as np

    with torch.no_grad():
        expected = module(example).float()
        got = run(example).float()
    if got.shape != expected.shape:
        return f"computes another shape ({tuple(got.shape)}, torch gives {tuple(expected.shape)})"
    difference = float(np.abs(got.numpy() - expected.numpy()).max())
    return f"differs from torch by {difference:.2g}" if not difference <= MAX_DIFFERENCE else None


def _remove(path: Path) -> None:
    import shutil

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    _checksum_file(path).unlink(missing_ok=True)


def compiled(module: torch.nn.Module, example: torch.Tensor, name: str, runtime: str):
    """A callable (pixels (N, 3, H, W) float32) -> the module's output, run by ``runtime``
    (``onnxruntime`` or ``openvino``), from the cached export, verified (module doc): a cached file
    that fails is exported again with a CacheRebuilt warning; one that fails again raises
    BackboneError."""
    import warnings

    threads = torch.get_num_threads()
    for attempt in range(2):
        path = export(module, example, name)
        checksum = _checksum_file(path)
        if not path.is_file():
            problem = "is not a file"
        elif not checksum.is_file() or checksum.read_text().strip() != sha256_file(path):
            problem = "does not match its SHA-256" if checksum.is_file() else "has no SHA-256 beside it"
        else:
            try:
                run = _OnnxRuntime(path, threads) if runtime == "onnxruntime" else _OpenVino(path, threads)
                problem = _problem(path, run, module, example)
            except Exception as error:  # noqa: BLE001 - a runtime's loader raises many kinds for a bad file
                problem = f"cannot be loaded ({type(error).__name__})"
        if problem is None:
            return run
        if attempt:
            raise BackboneError(f"{path}: a fresh ONNX export {problem}; use runtime=torch")
        warnings.warn(f"{path}: the cached ONNX export {problem}; exported it again", CacheRebuilt, stacklevel=2)
        _remove(path)
    raise AssertionError("unreachable")


def prepare(module: torch.nn.Module, example: torch.Tensor, name: str, requested: str, device: torch.device,
            exportable: bool = True):
    """(runtime used, callable pixels -> output): ``module`` itself under torch, or its export run by
    the chosen runtime. ``auto`` falls back to torch where the network cannot be exported (an
    operator ONNX lacks) or ``exportable`` is False; a runtime asked for by name raises instead."""
    if requested not in ("auto", "torch") and not exportable:
        raise BackboneError(f"{name}: the {requested} runtime runs float32 image networks with a CLS token only; "
                            "use runtime=torch")
    runtime = choose(requested, device) if exportable else "torch"
    if runtime == "torch":
        return "torch", module
    try:
        return runtime, compiled(module, example, name, runtime)
    except BackboneError:
        if requested != "auto":
            raise
        return "torch", module
