#!/usr/bin/env python3
"""Video goldens from transformers 5.23's Qwen3VLProcessor (and qwen-vl-utils 0.0.14) on the committed test videos.

Offline fixture generation only (CI never runs this). Needs torchcodec (the decoder transformers' processor uses for
video files: `pip install torchcodec==0.17.0`, loading Debian's FFmpeg 5.1 libraries). Writes
tests/fixtures/goldens/videos/:
  index.json  - per case: the decoder's metadata (frame count, fps), sampled frame indices, video_grid_thw, the
                `<t.t seconds>` stamps, the full prompt text and input ids (real tokenizer from
                tests/fixtures/tokenizer/qwen3, chat template of tests/fixtures/models/tiny-realtok-bf16), and the
                CRC32 of pixel_values_videos (float32 bytes) where our frames can be the reference decoder's.
  *.frames.png - the reference decoder's RGB frames at the sampled indices, stacked vertically (one PNG per video),
                so the C++ test can feed the processor exactly these frames and measure its own decoder against them.
  model/      - tiny-fp32-tied end to end for a one-video prompt and for video + image + video (see dump_model_cases).

Processor settings: the released video_preprocessor_config.json (size shortest 4096 / longest 25165824, fps 2,
frames 4..768, cap_pixels_per_frame unset = False in 5.23) unless a case overrides them.
Usage:  $VENV/bin/python scripts/reference/dump_video_goldens.py
"""
from __future__ import annotations

import json
import sys
import warnings
import zlib
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image
from transformers import AutoTokenizer, Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor
from transformers.video_utils import VideoMetadata

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dump_text_goldens import to_json  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
VIDEOS = REPO / "tests" / "fixtures" / "videos"
OUT = REPO / "tests" / "fixtures" / "goldens" / "videos"
TOKENIZER = REPO / "tests" / "fixtures" / "tokenizer" / "qwen3"
TEMPLATE = REPO / "tests" / "fixtures" / "models" / "tiny-realtok-bf16" / "chat_template.json"
RELEASED = {"size": {"longest_edge": 25165824, "shortest_edge": 4096}, "patch_size": 16, "temporal_patch_size": 2,
            "merge_size": 2, "fps": 2, "min_frames": 4, "max_frames": 768, "image_mean": [0.5, 0.5, 0.5],
            "image_std": [0.5, 0.5, 0.5], "do_sample_frames": True}
DEFAULT_VIDEOS = ["cfr24_3s.mp4", "cfr25_10s.mkv", "cfr30_40s.webm", "ntsc2997_7s.mov", "size100x60_5s.avi",
                  "odd5_2.5s.gif", "vfr_4s.mp4"]
PROMPT = "Describe this video."


def crc32_f32(t: torch.Tensor) -> int:
    return zlib.crc32(np.ascontiguousarray(t.detach().to(torch.float32).numpy(), dtype="<f4").tobytes())


def torchcodec_frames(path: Path, indices) -> np.ndarray:
    """The frames transformers' read_video_torchcodec returns: [T, H, W, 3] uint8."""
    from torchcodec.decoders import VideoDecoder
    decoder = VideoDecoder(str(path), seek_mode="exact", num_ffmpeg_threads=0, device="cpu")
    return decoder.get_frames_at(indices=[int(i) for i in indices]).data.permute(0, 2, 3, 1).contiguous().numpy()


def save_strip(name: str, frames: np.ndarray) -> str:
    t, h, w, _ = frames.shape
    Image.fromarray(frames.reshape(t * h, w, 3)).save(OUT / name, optimize=True)
    return name


def stamps(text: str) -> list[str]:
    import re
    return re.findall(r"<\d+\.\d seconds>", text)


def run_processor(proc, tok, content, videos, images=None, **kwargs):
    msgs = [{"role": "user", "content": content + [{"type": "text", "text": PROMPT}]}]
    text = proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    out = proc(text=[text], videos=videos, images=images, return_tensors="pt", return_metadata=True, **kwargs)
    ids = out["input_ids"][0].tolist()
    prompt = tok.decode(ids, skip_special_tokens=False)
    assert tok(prompt, add_special_tokens=False)["input_ids"] == ids, "decode/encode round trip"
    return out, prompt, ids


def video_entry(out, k: int) -> dict:
    md = out["video_metadata"][k]
    return {"total_num_frames": int(md.total_num_frames), "fps": float(md.fps),
            "frames_indices": [int(i) if float(i).is_integer() else float(i) for i in md.frames_indices],
            "video_grid_thw": out["video_grid_thw"][k].tolist()}


@torch.no_grad()
def dump_model_cases() -> None:
    """tiny-fp32-tied end to end: the video processor as AutoVideoProcessor loads it from the checkpoint directory
    (no video_preprocessor_config.json there, so preprocessor_config.json's size is the video budget too), fed the
    reference decoder's frames; prompts built from ids (the tiny vocabulary has no tokenizer): random text ids, and
    per frame pair a few random "timestamp" ids before <|vision_start|> <|video_pad|> x n <|vision_end|>, inside the
    outer <|vision_start|> ... <|vision_end|> that transformers 5.23 leaves around a video. Captured: pixel CRCs,
    grids, position ids, rope delta, the embeddings of every visual row and the DeepStack rows joined in sequence
    order (what the decoder receives), decoder layer outputs, final norm, logits of the last 8 rows, 32 greedy ids."""
    from dump_moe_goldens import load_model
    from dump_text_goldens import random_ids, special_ids, write_bin
    ckpt = "tiny-fp32-tied"
    mdir = REPO / "tests" / "fixtures" / "models" / ckpt
    out_dir = OUT / "model"
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*"):
        old.unlink()
    model = load_model(mdir)
    cfg = model.config
    vproc = Qwen3VLVideoProcessor.from_pretrained(str(mdir))
    iproc = Qwen2VLImageProcessor.from_pretrained(str(mdir))
    avoid = special_ids(cfg)
    merge = cfg.vision_config.spatial_merge_size

    def video_inputs(video: str):
        path = VIDEOS / video
        proc_out = vproc(videos=[str(path)], return_metadata=True, return_tensors="pt")
        md = proc_out["video_metadata"][0]
        frames = torchcodec_frames(path, md.frames_indices)
        again = vproc(videos=[frames], video_metadata=[VideoMetadata(total_num_frames=md.total_num_frames,
                      fps=md.fps, frames_indices=md.frames_indices)], do_sample_frames=False, return_tensors="pt")
        assert torch.equal(again["pixel_values_videos"], proc_out["pixel_values_videos"])
        return proc_out, md

    cases = []
    for name, items, seed in [("one_video", [("video", "cfr24_3s.mp4")], 11),
                              ("two_videos_image", [("video", "cfr24_3s.mp4"), ("image", "shapes_150x97.png"),
                                                    ("video", "ntsc2997_7s.mov")], 12)]:
        text = random_ids(200, cfg.text_config.vocab_size, avoid, seed)
        cursor = 0

        def take(n):
            nonlocal cursor
            cursor += n
            return text[cursor - n:cursor]

        ids = take(4)
        videos, video_grids, images, image_grids, entries = [], [], [], [], []
        for kind, file in items:
            if kind == "image":
                img = Image.open(REPO / "tests" / "fixtures" / "multimodal" / "images" / file).convert("RGB")
                pi = iproc(images=[img], return_tensors="pt")
                images.append(pi["pixel_values"])
                image_grids.append(pi["image_grid_thw"])
                g = pi["image_grid_thw"][0].tolist()
                ids += [cfg.vision_start_token_id] + [cfg.image_token_id] * (g[0] * g[1] * g[2] // merge ** 2)
                ids += [cfg.vision_end_token_id]
                entries.append({"kind": "image", "file": file, "grid": g,
                                "pixel_values_crc32": crc32_f32(pi["pixel_values"])})
            else:
                pv, md = video_inputs(file)
                videos.append(pv["pixel_values_videos"])
                video_grids.append(pv["video_grid_thw"])
                g = pv["video_grid_thw"][0].tolist()
                ids += [cfg.vision_start_token_id]
                for _ in range(g[0]):
                    ids += take(3) + [cfg.vision_start_token_id]
                    ids += [cfg.video_token_id] * (g[1] * g[2] // merge ** 2) + [cfg.vision_end_token_id]
                ids += [cfg.vision_end_token_id]
                entries.append({"kind": "video", "file": file, "grid": g, "fps": float(md.fps),
                                "frames_indices": [int(i) for i in md.frames_indices],
                                "frames_png": f"{file}.frames.png",
                                "pixel_values_crc32": crc32_f32(pv["pixel_values_videos"])})
            ids += take(4)
        input_ids = torch.tensor([ids])
        mm = torch.zeros_like(input_ids)
        mm[input_ids == cfg.image_token_id] = 1
        mm[input_ids == cfg.video_token_id] = 2
        kwargs = {"mm_token_type_ids": mm}
        if images:
            kwargs.update(pixel_values=torch.cat(images), image_grid_thw=torch.cat(image_grids))
        if videos:
            kwargs.update(pixel_values_videos=torch.cat(videos), video_grid_thw=torch.cat(video_grids))

        captured = {}
        lm = model.model.language_model
        pre = lm.register_forward_pre_hook(lambda _m, _a, kw: captured.update(
            embeds=kw["inputs_embeds"][0].clone(), mask=kw["visual_pos_masks"][0].clone(),
            deepstack=[d.clone() for d in kw["deepstack_visual_embeds"]]), with_kwargs=True)
        hooks = [layer.register_forward_hook(lambda _m, _i, o, l=l: captured.__setitem__(f"layer{l}", o[0]))
                 for l, layer in enumerate(lm.layers)]
        hooks.append(lm.norm.register_forward_hook(lambda _m, _i, o: captured.__setitem__("norm", o[0])))
        out = model(input_ids=input_ids, use_cache=False, **kwargs)
        pre.remove()
        for h in hooks:
            h.remove()
        position_ids, rope_delta = model.model.get_rope_index(
            input_ids, mm_token_type_ids=mm, image_grid_thw=kwargs.get("image_grid_thw"),
            video_grid_thw=kwargs.get("video_grid_thw"))
        case = {"name": name, "items": entries, "input_ids": ids, "position_ids": position_ids[:, 0, :].tolist(),
                "rope_delta": int(rope_delta[0, 0])}
        files = {"visual_embeds": captured["embeds"][captured["mask"]], "norm": captured["norm"],
                 "logits_last8": out.logits[0, -8:]}
        for k, d in enumerate(captured["deepstack"]):
            files[f"deepstack{k}"] = d
        for l in range(len(lm.layers)):
            files[f"layer{l}"] = captured[f"layer{l}"]
        for key, tensor in files.items():
            path = out_dir / f"{name}.{key}.bin"
            case[key] = {"file": f"model/{path.name}", "shape": write_bin(path, tensor)}
        gen = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), do_sample=False,
                             max_new_tokens=32, output_logits=True, return_dict_in_generate=True, **kwargs)
        raw = torch.stack([x[0].float() for x in gen.logits])
        top2 = torch.topk(raw, 2, dim=-1).values
        case["greedy"] = {"max_new_tokens": 32, "output_ids": gen.sequences[0, len(ids):].tolist(),
                          "step_min_top1_top2_gap": float((top2[:, 0] - top2[:, 1]).min())}
        cases.append(case)
        print(f"[{ckpt}] {name}: S={len(ids)} delta={case['rope_delta']} gap={case['greedy']['step_min_top1_top2_gap']:.3g}")
    index = {"checkpoint": ckpt, "dtype": "float32", "bin_format": "raw little-endian float32, C order",
             "cases": cases}
    (out_dir / "index.json").write_text(to_json(index) + "\n", encoding="utf-8")


def main() -> int:
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.png"):
        old.unlink()
    tok = AutoTokenizer.from_pretrained(str(TOKENIZER))
    template = json.loads(TEMPLATE.read_text())["chat_template"]

    def processor(**overrides):
        cfg = {**RELEASED, **overrides}
        # The released Qwen3-VL preprocessor_config.json (patch 16; the class defaults are Qwen2-VL's patch 14).
        image_processor = Qwen2VLImageProcessor(patch_size=16, temporal_patch_size=2, merge_size=2,
                                                size={"shortest_edge": 65536, "longest_edge": 16777216},
                                                image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
        return Qwen3VLProcessor(image_processor=image_processor, tokenizer=tok,
                                video_processor=Qwen3VLVideoProcessor(**cfg), chat_template=template)

    cases = []

    def file_case(name, video, proc_overrides=None, call_kwargs=None, frames=False, options=None):
        path = VIDEOS / video
        proc = processor(**(proc_overrides or {}))
        out, prompt, ids = run_processor(proc, tok, [{"type": "video", "video": str(path)}], [str(path)],
                                         **(call_kwargs or {}))
        case = {"name": name, "kind": "file", "video": video, "rule": "transformers", "metadata_source": "scan",
                "options": options or {}, **video_entry(out, 0), "timestamps": stamps(prompt),
                "prompt_text": prompt, "input_ids": ids,
                "pixel_values_shape": list(out["pixel_values_videos"].shape),
                "pixel_values_crc32": crc32_f32(out["pixel_values_videos"])}
        if frames:
            decoded = torchcodec_frames(path, case["frames_indices"])
            # The processor given exactly these frames (no sampling) gives the same pixels as from the file.
            md = VideoMetadata(total_num_frames=case["total_num_frames"], fps=case["fps"],
                               frames_indices=case["frames_indices"])
            check = proc.video_processor(videos=[decoded], video_metadata=[md], do_sample_frames=False,
                                         return_tensors="pt")
            assert torch.equal(check["pixel_values_videos"], out["pixel_values_videos"]), name
            case["frames_png"] = save_strip(f"{video}.frames.png", decoded)
            case["frame_size"] = [int(decoded.shape[2]), int(decoded.shape[1])]
        cases.append(case)
        print(f"{name}: N={case['total_num_frames']} fps={case['fps']!r} idx={case['frames_indices']} "
              f"grid={case['video_grid_thw']} {' '.join(case['timestamps'])}")

    for video in DEFAULT_VIDEOS:
        file_case(Path(video).stem + "_default", video, frames=True)
    file_case("cfr25_fps1", "cfr25_10s.mkv", call_kwargs={"fps": 1}, options={"fps": 1})
    file_case("cfr25_num7", "cfr25_10s.mkv", call_kwargs={"fps": None, "num_frames": 7}, options={"num_frames": 7})
    file_case("cfr30_max6", "cfr30_40s.webm", proc_overrides={"max_frames": 6}, options={"max_frames": 6})
    file_case("cfr24_min10", "cfr24_3s.mp4", proc_overrides={"min_frames": 10}, options={"min_frames": 10})
    file_case("ntsc_budget", "ntsc2997_7s.mov", proc_overrides={"size": {"longest_edge": 40000, "shortest_edge": 4096}},
              options={"total_pixels": 40000, "min_pixels": 4096})
    file_case("cfr25_cap", "cfr25_10s.mkv", call_kwargs={"cap_pixels_per_frame": True},
              proc_overrides={"max_video_tokens": 4}, options={"cap_pixels_per_frame": True, "max_video_tokens": 4})
    file_case("size100_upscale", "size100x60_5s.avi",
              proc_overrides={"size": {"longest_edge": 25165824, "shortest_edge": 200000}},
              options={"min_pixels": 200000})

    # PyAV's metadata (load_video(backend="pyav")): header frame count and avg_frame_rate, all frames decoded and
    # sampled by the processor itself.
    for video in ["vfr_4s.mp4", "ntsc2997_7s.mov", "size100x60_5s.avi"]:
        path = VIDEOS / video
        container = av.open(str(path))
        stream = container.streams.video[0]
        md = VideoMetadata(total_num_frames=int(stream.frames), fps=float(stream.average_rate))
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
        proc = processor()
        out, prompt, ids = run_processor(proc, tok, [{"type": "video", "video": str(path)}], [frames],
                                         video_metadata=[md])
        case = {"name": Path(video).stem + "_pyav", "kind": "file", "video": video, "rule": "transformers",
                "metadata_source": "header", "options": {}, **video_entry(out, 0), "timestamps": stamps(prompt),
                "prompt_text": prompt, "input_ids": ids}
        cases.append(case)
        print(f"{case['name']}: N={case['total_num_frames']} fps={case['fps']!r} idx={case['frames_indices']}")

    # qwen-vl-utils: process_vision_info (torchcodec reader) then the processor without resizing or sampling.
    from qwen_vl_utils import process_vision_info
    for name, video, extra in [("qvu_cfr30", "cfr30_40s.webm", {}),
                               ("qvu_cfr25_range", "cfr25_10s.mkv", {"video_start": 2.5, "video_end": 7.1}),
                               ("qvu_ntsc_nframes9", "ntsc2997_7s.mov", {"nframes": 9}),
                               ("qvu_cfr24_fps3", "cfr24_3s.mp4", {"fps": 3.0}),
                               ("qvu_size100_pixels", "size100x60_5s.avi",
                                {"min_pixels": 8192, "total_pixels": 100000}),
                               ("qvu_vfr", "vfr_4s.mp4", {})]:
        ele = {"type": "video", "video": str(VIDEOS / video), **extra}
        msgs = [{"role": "user", "content": [ele, {"type": "text", "text": PROMPT}]}]
        _, videos, kwargs = process_vision_info(msgs, return_video_kwargs=True, return_video_metadata=True,
                                                image_patch_size=16)
        videos, metadatas = zip(*videos)
        proc = processor()
        text = proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        out = proc(text=[text], videos=list(videos), video_metadata=list(metadatas), do_resize=False,
                   return_tensors="pt", return_metadata=True, **kwargs)
        ids = out["input_ids"][0].tolist()
        prompt = tok.decode(ids, skip_special_tokens=False)
        options = {k.replace("video_", "") + ("_seconds" if k.startswith("video_") else ""): v
                   for k, v in extra.items()}
        case = {"name": name, "kind": "file", "video": video, "rule": "qwen-vl-utils", "metadata_source": "scan",
                "options": options, **video_entry(out, 0), "timestamps": stamps(prompt), "prompt_text": prompt,
                "input_ids": ids}
        cases.append(case)
        print(f"{name}: N={case['total_num_frames']} fps={case['fps']!r} idx={case['frames_indices']} "
              f"grid={case['video_grid_thw']}")

    # Frame lists: PNG files as one video, with an fps or with explicit timestamps (metadata fps 1, indices = times).
    frame_files = sorted((VIDEOS / "frames").glob("frame*.png"))
    names = [f"frames/{p.name}" for p in frame_files]
    for name, md, options in [("list_fps2", {"fps": 2.0, "frames_indices": list(range(len(names)))}, {"fps": 2.0}),
                              ("list_times", {"fps": 1.0, "frames_indices": [0.0, 0.4, 1.1, 2.05, 3.3]},
                               {"times": [0.0, 0.4, 1.1, 2.05, 3.3]})]:
        proc = processor()
        md = VideoMetadata(total_num_frames=len(names), **md)
        out, prompt, ids = run_processor(proc, tok, [{"type": "video", "video": names}],
                                         [np.stack([np.array(Image.open(VIDEOS / n).convert("RGB")) for n in names])],
                                         video_metadata=[md],
                                         do_sample_frames=False)
        case = {"name": name, "kind": "frame_list", "frames": names, "rule": "transformers", "options": options,
                **video_entry(out, 0), "timestamps": stamps(prompt), "prompt_text": prompt, "input_ids": ids,
                "pixel_values_shape": list(out["pixel_values_videos"].shape),
                "pixel_values_crc32": crc32_f32(out["pixel_values_videos"])}
        cases.append(case)
        print(f"{name}: grid={case['video_grid_thw']} {' '.join(case['timestamps'])}")

    # Two videos of different native fps around an image, one prompt: each video keeps its own metadata.
    image = REPO / "tests" / "fixtures" / "multimodal" / "images" / "shapes_150x97.png"
    proc = processor()
    content = [{"type": "video", "video": "a"}, {"type": "image", "image": "b"}, {"type": "video", "video": "c"}]
    out, prompt, ids = run_processor(proc, tok, content, [str(VIDEOS / "cfr24_3s.mp4"), str(VIDEOS / "ntsc2997_7s.mov")],
                                     images=[Image.open(image).convert("RGB")])
    cases.append({"name": "two_videos_image", "kind": "mixed", "videos": ["cfr24_3s.mp4", "ntsc2997_7s.mov"],
                  "image": "../../multimodal/images/shapes_150x97.png", "rule": "transformers", "options": {},
                  "videos_meta": [video_entry(out, 0), video_entry(out, 1)],
                  "image_grid_thw": out["image_grid_thw"][0].tolist(), "timestamps": stamps(prompt),
                  "prompt_text": prompt, "input_ids": ids})

    dump_model_cases()

    index = {"transformers": __import__("transformers").__version__, "processor": RELEASED, "prompt": PROMPT,
             "chat_template": "tests/fixtures/models/tiny-realtok-bf16/chat_template.json",
             "pixel_crc": "zlib.crc32 of pixel_values_videos as little-endian float32, C order", "cases": cases}
    (OUT / "index.json").write_text(to_json(index) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
