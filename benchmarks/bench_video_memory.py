"""Peak memory of encoding one real-size video file with the default settings.

Writes H.264 files of 720p and 1080p, 5 s and 60 s (30 fps, a moving gradient, with PyAV,
frame by frame), then encodes each in its own process with
``TSESlidingEncoder(RandomConv3dEncoder()).fit_transform([path])`` and records the peak
resident set size (``VmHWM`` of ``/proc/self/status``, Linux) of that process, the
resident size after the imports (torch, PyAV, sktdtw) and the wall time. Besides the
defaults, rows at the native size (``RandomConv3dEncoder(frame_size=None)``) with
``clip_length=16`` and 2048 MiB of working memory show the budget holding without
resizing; and a window too large for the budget shows its error.

``--package-dir DIR --label L`` measures another copy of the package (a directory holding
``sktdtw/`` with its compiled ``_core``, e.g. an older commit built by hand) under a
``--limit-gib`` address-space cap, so that a version without the budget fails instead of
exhausting the machine. Results are merged into
``benchmarks/results/bench_video_memory.json`` with the machine, versions and commit.

Usage::

    python benchmarks/bench_video_memory.py [--only 720p-5s ...] [--package-dir DIR --label L]
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from bench_dtw import machine

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "bench_video_memory.json"
FPS = 30
VIDEOS = {"720p-5s": (720, 1280, 5), "720p-60s": (720, 1280, 60),
          "1080p-5s": (1080, 1920, 5), "1080p-60s": (1080, 1920, 60)}
# name: (keyword arguments of RandomConv3dEncoder, of TSESlidingEncoder), as source text
SETTINGS = {
    "defaults": ("", ""),
    "native size, clip_length=16, working_memory=2048": (
        "frame_size=None", "clip_length=16, working_memory=2048"),
    "native size, defaults otherwise": ("frame_size=None", ""),
}

_CHILD = r"""
import json, sys, time
package_dir, path, encoder_kwargs, tse_kwargs = sys.argv[1:]
if package_dir:
    # An editable install's import hook would load the installed sktdtw: use the copy.
    sys.meta_path[:] = [f for f in sys.meta_path
                        if not type(f).__module__.startswith("_editable_skbc_")]
    sys.path.insert(0, package_dir)
import av, torch
import sktdtw
from sktdtw import TSESlidingEncoder
from sktdtw.encoders import RandomConv3dEncoder
def status_mib(field):
    # VmHWM, this process's peak, not ru_maxrss: that one carries the parent's resident
    # size at the fork across the exec.
    with open("/proc/self/status") as fp:
        line = next(line for line in fp if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024
after_imports = status_mib("VmRSS")
start = time.perf_counter()
try:
    encoder = eval(f"TSESlidingEncoder(RandomConv3dEncoder({encoder_kwargs}), {tse_kwargs})")
    tse = encoder.fit_transform([path])[0]
    outcome = {"tse_shape": list(tse.shape)}
except Exception as exc:
    outcome = {"error": f"{type(exc).__name__}: {exc}"}
seconds = time.perf_counter() - start
print(json.dumps({"peak_rss_mib": status_mib("VmHWM"), "rss_after_imports_mib": after_imports,
                  "seconds": seconds, "sktdtw_file": sktdtw.__file__, **outcome}))
"""


def write_gradient_video(path, height, width, seconds):
    """An H.264 file of a gradient moving across the frame, written frame by frame."""
    import av

    rows = np.arange(height, dtype=np.int32)[:, None, None]
    cols = np.arange(width, dtype=np.int32)[None, :, None]
    channel = np.arange(3, dtype=np.int32) * 60
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast"}
        for t in range(FPS * seconds):
            image = ((rows // 4 + cols // 4 + 5 * t + channel) % 256).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def measure(package_dir, path, encoder_kwargs, tse_kwargs, limit_gib):
    def cap():
        import resource

        limit = int(limit_gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    out = subprocess.run(
        [sys.executable, "-c", _CHILD, package_dir or "", str(path), encoder_kwargs, tse_kwargs],
        capture_output=True, text=True, preexec_fn=cap if package_dir else None,
    )
    lines = out.stdout.strip().splitlines()
    if out.returncode or not lines:
        return {"error": f"exit status {out.returncode}: {out.stderr.strip()[-300:]}"}
    return json.loads(lines[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(VIDEOS), default=sorted(VIDEOS))
    parser.add_argument("--settings", nargs="*", choices=sorted(SETTINGS), default=None)
    parser.add_argument("--package-dir", default=None)
    parser.add_argument("--label", default="this commit")
    parser.add_argument("--limit-gib", type=float, default=20.0)
    args = parser.parse_args()
    settings = args.settings or (["defaults"] if args.package_dir else list(SETTINGS))
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["machine"] = machine(torch.device("cpu"))
    results["videos"] = {name: {"height": h, "width": w, "seconds": s, "fps": FPS,
                                "codec": "libx264 crf 23"} for name, (h, w, s) in VIDEOS.items()}
    runs = results.setdefault("runs", {}).setdefault(args.label, {})
    with tempfile.TemporaryDirectory() as folder:
        for name in args.only:
            height, width, seconds = VIDEOS[name]
            path = Path(folder) / f"{name}.mp4"
            write_gradient_video(path, height, width, seconds)
            for setting in settings:
                if setting != "defaults" and name.endswith("60s"):
                    continue  # the native-size rows are about the bound, shown on 5 s
                run = measure(args.package_dir, path, *SETTINGS[setting], args.limit_gib)
                runs.setdefault(name, {})[setting] = run
                outcome = run.get("error") or f"TSE {run['tse_shape']}"
                print(f"{args.label}, {name}, {setting}: peak RSS "
                      f"{run.get('peak_rss_mib', float('nan')):.0f} MiB, "
                      f"{run.get('seconds', float('nan')):.1f} s, {outcome[:160]}", flush=True)
                RESULTS.parent.mkdir(exist_ok=True)
                RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
