"""The arm64 side of :class:`edgekit.arm64.Arm64Worker`: runs in the arm64 Python.

Reads JSON requests line by line on stdin and answers each with one JSON line:
``{"op": "features"}`` -> the CPU features the runtimes see and their versions;
``{"op": "run", "format", "model", "inputs", "outputs", "threads"}`` -> runs the model on
every input (one invoke per sample, batch 1 as a phone does) and saves the first output
of each as an (N, k) float32 ``.npy``; ``{"op": "time", "models": {name: {format, model}},
"inputs", "rounds", "threads"}`` -> median invoke milliseconds of each (emulator time: only
ratios between models mean anything). Imports numpy and the runtimes only.
"""

from __future__ import annotations

import json
import struct
import sys
import time
from typing import Any

import numpy as np

# bits of the kernel's AT_HWCAP / AT_HWCAP2 words on arm64 (Linux's uapi asm/hwcap.h)
_HWCAP = {"asimd": 1, "asimddp": 20, "sve": 22, "asimdfhm": 23}
_HWCAP2 = {"sve2": 1, "svei8mm": 9, "svebf16": 12, "i8mm": 13, "bf16": 14, "sme": 23}


def hwcaps(auxv: bytes) -> dict[str, bool]:
    """Named CPU features from the bytes of ``/proc/self/auxv`` (pairs of little-endian u64)."""
    words: dict[int, int] = {}
    for i in range(0, len(auxv) - 15, 16):
        key, value = struct.unpack_from("<QQ", auxv, i)
        words[key] = value
    hw, hw2 = words.get(16, 0), words.get(26, 0)  # AT_HWCAP, AT_HWCAP2
    found = {name: bool(hw >> bit & 1) for name, bit in _HWCAP.items()}
    found.update({name: bool(hw2 >> bit & 1) for name, bit in _HWCAP2.items()})
    return found


def features() -> dict[str, Any]:
    """What this process's runtimes can see of the CPU."""
    import ctypes
    import platform
    from importlib import metadata

    with open("/proc/self/auxv", "rb") as fh:
        caps = hwcaps(fh.read())
    try:  # PR_SVE_GET_VL: the low 16 bits are the vector length in bytes
        vl = int(ctypes.CDLL(None).prctl(51, 0, 0, 0, 0)) & 0xFFFF if caps["sve"] else 0
    except OSError:
        vl = 0
    versions = {}
    for name in ("numpy", "ai-edge-litert", "onnxruntime"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {"ok": True, "machine": platform.machine(), "features": caps, "sve_vector_bits": vl * 8,
            "versions": versions}  # fmt: skip


def _runner(fmt: str, model: str, threads: int) -> Any:
    if fmt == "onnx":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads, opts.log_severity_level = threads, 1, 3
        sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        dtype = np.float16 if sess.get_inputs()[0].type == "tensor(float16)" else np.float32
        return lambda x: sess.run(None, {name: x.astype(dtype)})[0]
    if fmt == "tflite":
        from ai_edge_litert.interpreter import Interpreter

        interp = Interpreter(model_path=model, num_threads=threads)
        interp.allocate_tensors()
        inp, out = interp.get_input_details()[0], interp.get_output_details()[0]

        def infer(x: np.ndarray) -> np.ndarray:
            if inp["dtype"] != np.float32:  # integer input: quantize as the host does
                scale, zero = inp["quantization"]
                info = np.iinfo(inp["dtype"])
                x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(inp["dtype"])
            interp.set_tensor(inp["index"], x)
            interp.invoke()
            y = interp.get_tensor(out["index"])
            if out["dtype"] != np.float32:
                scale, zero = out["quantization"]
                y = (y.astype(np.float32) - zero) * scale
            return np.asarray(y)

        return infer
    raise ValueError(f"no arm64 runtime for {fmt!r} files here (tflite and onnx are installed)")


def run(request: dict[str, Any]) -> dict[str, Any]:
    """Carry out one ``run`` request."""
    start = time.perf_counter()
    infer = _runner(str(request["format"]), str(request["model"]), int(request.get("threads", 1)))
    loaded = time.perf_counter()
    x = np.load(str(request["inputs"]), allow_pickle=False)
    outs = [np.asarray(infer(x[i : i + 1]), dtype=np.float32).reshape(1, -1) for i in range(len(x))]
    y = np.concatenate(outs) if outs else np.zeros((0, 1), np.float32)
    np.save(str(request["outputs"]), y, allow_pickle=False)
    return {"ok": True, "load_s": loaded - start, "run_s": time.perf_counter() - loaded}


def time_models(request: dict[str, Any]) -> dict[str, Any]:
    """Median invoke time of each model on one input, the models interleaved round by round (drift in
    the emulator hits every model alike), and each model's first output."""
    x = np.load(str(request["inputs"]), allow_pickle=False)[:1]
    threads = int(request.get("threads", 1))
    runners = {
        name: _runner(str(m["format"]), str(m["model"]), threads) for name, m in request["models"].items()
    }
    first = {name: np.asarray(infer(x), dtype=np.float32).ravel().tolist() for name, infer in runners.items()}
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(int(request.get("rounds", 5))):
        for name, infer in runners.items():
            start = time.perf_counter()
            infer(x)
            times[name].append(time.perf_counter() - start)
    return {"ok": True, "ms": {n: 1e3 * sorted(t)[len(t) // 2] for n, t in times.items()}, "outputs": first}


def invoke(fmt: str, model: str, inputs: str, times: int) -> None:
    """Load ``model`` and run it ``times`` times on the first input, nothing else: the process whose
    guest instructions :meth:`edgekit.arm64.Arm64Env.count_instructions` counts."""
    import gc

    infer = _runner(fmt, model, 1)
    x = np.load(inputs, allow_pickle=False)[:1]
    gc.collect()
    gc.disable()  # a collection in one process and not the other is ~1e5 instructions of noise
    for _ in range(times):
        infer(x)


def main() -> None:
    """Answer requests until stdin closes (``invoke FMT MODEL INPUTS N``: run N times and exit)."""
    if len(sys.argv) == 6 and sys.argv[1] == "invoke":
        invoke(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    ops = {"features": lambda _r: features(), "run": run, "time": time_models}
    for line in sys.stdin:
        try:
            request = json.loads(line)
            reply = ops[str(request.get("op"))](request)
        except Exception as exc:  # every failure is an answer, never a dead worker
            reply = {
                "ok": False,
                "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            }
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
