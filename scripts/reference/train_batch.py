"""The training batch shared by dump_train_goldens.py and dump_train_trajectory.py: three hand-built samples
(multi-turn text, two images, one video of two temporal slices) for the tiny checkpoints, labelled as
qwen-vl-finetune's preprocess_qwen_visual labels them, and packed as its FlattenedDataCollatorForSupervisedDataset
packs a per-device batch (data_flatten=True): one row, each sample's own get_rope_index positions restarting at 0.

The tiny checkpoints have no tokenizer: ids are chosen by hand. Chat tokens live in the unused part of the
special-id region (2042..2044; the vision ids are 2038..2041, bos 2045, eos 2046 = <|im_end|> as in Qwen3-VL,
where eos_token_id is <|im_end|>), "\\n" is 198 as in the real vocabulary, and content tokens are seeded random
ids below 2038 other than 198. Rendered like Qwen3-VL's chat template (no default system turn):
  <|im_start|> user \\n [vision] content <|im_end|> \\n <|im_start|> assistant \\n answer <|im_end|> \\n
An image is <|vision_start|> <|image_pad|> x n <|vision_end|> (n = t*h*w / 4); a video is what transformers 5.23's
Qwen3VLProcessor makes of <|vision_start|><|video_pad|><|vision_end|>: per temporal slice a timestamp (text ids),
<|vision_start|>, the slice's pads, <|vision_end|>, all inside the outer <|vision_start|> ... <|vision_end|>.

Labels (qwen-vl-finetune data_processor.py preprocess_qwen_visual): -100 everywhere, then for every "assistant"
token at p the span from p + 2 up to and including the token after the next <|im_end|> (answer, <|im_end|>, "\\n")
copies the input ids. The loss shifts them (label t+1 is predicted at row t).

pixel_values are seeded 8-bit levels put through the processor's rescale and mean 0.5 / std 0.5 normalisation (values
in [-1, 1]), one row of 3 * 2 * 16 * 16 values per patch, in the patch order the processor emits.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

IM_START, ASSISTANT, USER, IM_END, NEWLINE = 2044, 2042, 2043, 2046, 198
IGNORE = -100
SEED = 1234
# (t, h, w) patch grids: the smallest that exercise the 2x2 merge, one of them not square.
IMAGE_GRIDS = [(1, 4, 4), (1, 6, 4)]
VIDEO_GRID = (2, 4, 4)  # two temporal slices (4 frames)
TIMESTAMP_TOKENS = 2


@dataclass
class Sample:
    kind: str
    ids: list[int] = field(default_factory=list)
    image_grids: list[tuple[int, int, int]] = field(default_factory=list)
    video_grids: list[tuple[int, int, int]] = field(default_factory=list)
    pixel_values: torch.Tensor | None = None
    pixel_values_videos: torch.Tensor | None = None


class Tokens:
    """Seeded content ids: below the special region (2038) and never "\\n"."""

    def __init__(self, seed: int):
        self.g = torch.Generator().manual_seed(seed)

    def take(self, n: int) -> list[int]:
        out: list[int] = []
        while len(out) < n:
            i = int(torch.randint(0, 2038, (1,), generator=self.g))
            if i != NEWLINE:
                out.append(i)
        return out


def turn(role: int, body: list[int]) -> list[int]:
    return [IM_START, role, NEWLINE] + body + [IM_END, NEWLINE]


def official_labels(ids: list[int]) -> list[int]:
    """preprocess_qwen_visual's scan: every "assistant" id starts a span answer + <|im_end|> + "\\n"."""
    labels = [IGNORE] * len(ids)
    for pos, tok in enumerate(ids):
        if tok != ASSISTANT:
            continue
        start = pos + 2
        end = start
        while end < len(ids) and ids[end] != IM_END:
            end += 1
        labels[start:end + 2] = ids[start:end + 2]
    return labels


def patches(grid: tuple[int, int, int], patch_dim: int, g: torch.Generator) -> torch.Tensor:
    """Seeded 8-bit pixel levels k, rescaled and normalised as the processor does: (k * (1 / 255) - 0.5) / 0.5."""
    t, h, w = grid
    k = torch.randint(0, 256, (t * h * w, patch_dim), generator=g)
    return (k.to(torch.float32) * 0.00392156862745098 - 0.5) / 0.5


def make_samples(cfg) -> list[Sample]:
    vc = cfg.vision_config
    merge = vc.spatial_merge_size
    patch_dim = vc.in_channels * vc.temporal_patch_size * vc.patch_size ** 2
    tok = Tokens(SEED)
    pix = torch.Generator().manual_seed(SEED + 1)

    text = Sample("text")
    text.ids = (turn(USER, tok.take(3)) + turn(ASSISTANT, tok.take(3))
                + turn(USER, tok.take(2)) + turn(ASSISTANT, tok.take(3)))

    images = Sample("two_images", image_grids=list(IMAGE_GRIDS))
    vision = []
    for t, h, w in IMAGE_GRIDS:
        vision += [cfg.vision_start_token_id] + [cfg.image_token_id] * (t * h * w // merge ** 2)
        vision += [cfg.vision_end_token_id]
    images.ids = turn(USER, vision + tok.take(3)) + turn(ASSISTANT, tok.take(3))
    images.pixel_values = torch.cat([patches(g, patch_dim, pix) for g in IMAGE_GRIDS])

    video = Sample("video", video_grids=[VIDEO_GRID])
    t, h, w = VIDEO_GRID
    vision = [cfg.vision_start_token_id]
    for _ in range(t):
        vision += tok.take(TIMESTAMP_TOKENS) + [cfg.vision_start_token_id]
        vision += [cfg.video_token_id] * (h * w // merge ** 2) + [cfg.vision_end_token_id]
    vision += [cfg.vision_end_token_id]
    video.ids = turn(USER, vision + tok.take(3)) + turn(ASSISTANT, tok.take(3))
    video.pixel_values_videos = patches(VIDEO_GRID, patch_dim, pix)
    return [text, images, video]


def mm_token_types(cfg, ids: torch.Tensor) -> torch.Tensor:
    mm = torch.zeros_like(ids, dtype=torch.int32)
    mm[ids == cfg.image_token_id] = 1
    mm[ids == cfg.video_token_id] = 2
    return mm


def sample_positions(model, s: Sample) -> torch.Tensor:
    """[3, L]: Qwen3VLModel.get_rope_index of the sample alone (its T/H/W start at 0)."""
    ids = torch.tensor([s.ids])
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # a PeftModel wraps it
    pos, _ = base.model.get_rope_index(
        ids, mm_token_type_ids=mm_token_types(model.config, ids),
        image_grid_thw=torch.tensor(s.image_grids) if s.image_grids else None,
        video_grid_thw=torch.tensor(s.video_grids) if s.video_grids else None)
    return pos[:, 0, :]


def model_inputs(model, samples: list[Sample]) -> dict:
    """Forward kwargs for the samples concatenated into one row. position_ids is transformers' [4, 1, S] form:
    row 0 = each sample's text positions arange(L_i) (create_causal_mask -> find_packed_sequence_indices cuts the
    row where the difference is not 1, so each sample attends only to itself), rows 1..3 = T, H, W. No
    attention_mask: the packed-sequence detection runs only when it is None."""
    ids = torch.tensor([sum((s.ids for s in samples), [])])
    labels = torch.tensor([sum((official_labels(s.ids) for s in samples), [])])
    mrope = torch.cat([sample_positions(model, s) for s in samples], dim=1)
    text = torch.cat([torch.arange(len(s.ids)) for s in samples])
    kw = {"input_ids": ids, "labels": labels, "position_ids": torch.cat([text[None], mrope])[:, None, :]}
    pv = [s.pixel_values for s in samples if s.pixel_values is not None]
    if pv:
        kw["pixel_values"] = torch.cat(pv)
        kw["image_grid_thw"] = torch.tensor([g for s in samples for g in s.image_grids])
    pvv = [s.pixel_values_videos for s in samples if s.pixel_values_videos is not None]
    if pvv:
        kw["pixel_values_videos"] = torch.cat(pvv)
        kw["video_grid_thw"] = torch.tensor([g for s in samples for g in s.video_grids])
    return kw


def text_cu_seqlens(samples: list[Sample]) -> list[int]:
    out = [0]
    for s in samples:
        out.append(out[-1] + len(s.ids))
    return out
