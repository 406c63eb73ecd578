"""Throughput of encoding video files: decoding, the model alone, and the full pipeline.

On synthetic 224x224 H.264 videos and a small random-weight VideoMAE (transformers),
measures frames decoded per second (one decoding thread), windows encoded per second by the
full pipeline (decoding threads ahead of the model, windows batched across videos), the
fraction of the pipeline's time the model waited for data, and the model's own forward on
the same preprocessed batch, alone. Target: the pipeline reaches at least 80% of the
model-alone throughput (the GPU case, with ``--device cuda``: VideoMAE-Base-shaped weights
in bf16; on a CPU, decoding competes with the model for the same cores).

Writes ``benchmarks/results/bench_encode.json`` (``bench_encode_cuda.json`` on CUDA).

    python benchmarks/bench_encode.py            # this machine's CPU, about a minute
    python benchmarks/bench_encode.py --device cuda
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_dtw import machine

from sktdtw import TSESlidingEncoder
from sktdtw.encoders import HuggingFaceVideoEncoder
from sktdtw.video import VideoReader, write_video
from sktdtw.video._pipeline import EncodeStats, iter_encoded

HERE = Path(__file__).resolve().parent
SIZE = 224


def synthetic_video(n_frames, rng):
    """A textured background with a moving bright square: compresses like real footage."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    base = (96 + 60 * np.sin(xx / rng.uniform(6, 20)) * np.cos(yy / rng.uniform(6, 20)))
    frames = np.repeat(base[None, :, :, None], n_frames, axis=0).repeat(3, axis=3)
    for t in range(n_frames):
        x = int((t * 3) % (SIZE - 40))
        frames[t, 60:100, x:x + 40] = 250
    return frames.clip(0, 255).astype(np.uint8)


def checkpoint(path, gpu):
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification
    from transformers.models.videomae.image_processing_pil_videomae import VideoMAEImageProcessorPil

    shape = (dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                  intermediate_size=3072, num_frames=16) if gpu else
             dict(hidden_size=192, num_hidden_layers=4, num_attention_heads=3,
                  intermediate_size=768, num_frames=8))
    config = VideoMAEConfig(image_size=SIZE, patch_size=16, tubelet_size=2, num_labels=51,
                            **shape)
    torch.manual_seed(0)
    VideoMAEForVideoClassification(config).save_pretrained(path)
    VideoMAEImageProcessorPil(size={"shortest_edge": SIZE},
                              crop_size={"height": SIZE, "width": SIZE}).save_pretrained(path)
    return shape["num_frames"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    folder = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(0)
    paths = []
    for i in range(args.videos):
        paths.append(str(folder / f"{i}.mp4"))
        write_video(paths[-1], synthetic_video(args.frames, rng), crf=23)
    num_frames = checkpoint(folder / "ckpt", gpu)
    encoder = HuggingFaceVideoEncoder(folder / "ckpt").to(device)

    start = time.perf_counter()
    decoded = 0
    for path in paths:
        reader = VideoReader(path)
        every = [np.arange(reader.n_frames)[:, None]]  # one-frame windows: every frame
        decoded += sum(1 for _ in reader.windows(every))
    decode_fps = decoded / (time.perf_counter() - start)

    tse = TSESlidingEncoder(encoder, window=16, stride=8, clip_length=num_frames,
                            batch_size=args.batch_size, device=device)
    settings = (tse._window_settings()[:2]) + ("valid", num_frames)
    stats = EncodeStats()
    for _ in iter_encoded(paths, encoder, settings, batch_size=args.batch_size, device=device,
                          n_workers=args.workers, bf16=gpu, stats=stats):
        pass
    pipeline_wps = stats.windows / stats.total_seconds

    clips = np.stack([synthetic_video(num_frames, rng) for _ in range(args.batch_size)])
    pixels = encoder.preprocess(clips).to(device)
    with torch.inference_mode(), torch.autocast(device.type, torch.bfloat16, enabled=gpu):
        encoder.embed(pixels)  # warm-up
        if gpu:
            torch.cuda.synchronize()
        start = time.perf_counter()
        n_batches = max(2, stats.windows // args.batch_size)
        for _ in range(n_batches):
            encoder.embed(pixels)
        if gpu:
            torch.cuda.synchronize()
        model_wps = n_batches * args.batch_size / (time.perf_counter() - start)

    result = {
        "benchmark": "bench_encode", "machine": machine(device),
        "setup": {"videos": args.videos, "frames_per_video": args.frames, "frame_size": SIZE,
                  "model": f"VideoMAE random weights, num_frames={num_frames}, "
                           f"n_features={encoder.n_features}",
                  "window": 16, "stride": 8, "batch_size": args.batch_size,
                  "decoding_threads": args.workers, "bf16": gpu},
        "frames_decoded_per_s": round(decode_fps, 1),
        "pipeline_windows_per_s": round(pipeline_wps, 2),
        "model_alone_windows_per_s": round(model_wps, 2),
        "pipeline_over_model_alone": round(pipeline_wps / model_wps, 3),
        "model_wait_fraction": round(stats.wait_fraction, 3),
        "pipeline_windows": stats.windows,
        "pipeline_seconds": round(stats.total_seconds, 2),
        "target": "pipeline_over_model_alone >= 0.8",
    }
    out = HERE / "results" / ("bench_encode_cuda.json" if gpu else "bench_encode.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
