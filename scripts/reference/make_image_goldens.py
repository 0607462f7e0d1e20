"""Test images and transformers goldens for image decoding and preprocessing.

Writes, from a fixed seed (running it again gives byte-identical files):
  tests/fixtures/images/*                 the input images, made here with Pillow
  tests/fixtures/goldens/images/index.json one entry per case (see below)
  tests/fixtures/goldens/images/*.rgb|f32 raw arrays small enough to commit

The reference for every case is what transformers 5.x does with an image given by path:
  `transformers.image_utils.load_image(path)` (Pillow open + ImageOps.exif_transpose + convert("RGB"))
  -> AutoImageProcessor for the released Qwen3-VL preprocessor_config.json (class Qwen2VLImageProcessor, the
     torchvision backend), called with size={"shortest_edge", "longest_edge"} when the case overrides the budget.
Per case the index records: the decoded RGB, the processor's resized uint8 image (recomputed with the same
tvF.resize call and checked here to reproduce the processor's pixel_values exactly), image_grid_thw and the float32
pixel_values. Arrays are given by the SHA-256 of their bytes, a few hundred strided samples (so a failing
test can say where), and, when small, a raw file. pixel_values are 24 bytes per resized pixel (two identical frames
in float32), at least 1.5 MB at the default min_pixels, so they are stored raw only for the small-budget cases; for
the others the test compares the resized uint8 image and the hash of the whole pixel_values.

It also records, per case, whether transformers' other path-based loader (processor(images=path), which decodes
with torchvision.io.decode_image(mode=RGB, apply_exif_orientation=True)) gives the same pixels as load_image; it
does for JPEG, 8-bit PNG, WebP and GIF, and not for BMP (unsupported there) or 16-bit PNG (kept as uint16 there).
"decoded" is load_image's RGB image after the processor's convert_to_rgb, which turns a colour key that survived
convert("RGB") (info["transparency"]: GIF transparent index, PNG tRNS) white; "color_key" names it.

Usage (from the repository root): $VENV/bin/python scripts/reference/make_image_goldens.py
"""

import hashlib
import json
import os
import struct
import sys
import tempfile

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as tvF

import transformers
from transformers import AutoImageProcessor
from transformers.image_transforms import convert_to_rgb
from transformers.image_utils import load_image, load_image_as_tensor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGES = os.path.join(ROOT, "tests", "fixtures", "images")
GOLDENS = os.path.join(ROOT, "tests", "fixtures", "goldens", "images")
RAW_LIMIT = 160 * 1024  # bytes: arrays up to this size are committed raw
SAMPLES = 48
WRITTEN = {}  # sha256 -> golden file name

# The released Qwen3-VL preprocessor_config.json (identical across sizes).
RELEASED_CONFIG = {
    "image_processor_type": "Qwen2VLImageProcessorFast",
    "processor_class": "Qwen3VLProcessor",
    "size": {"shortest_edge": 65536, "longest_edge": 16777216},
    "patch_size": 16,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "resample": 3,
    "rescale_factor": 0.00392156862745098,
    "do_resize": True,
    "do_rescale": True,
    "do_normalize": True,
    "do_convert_rgb": True,
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# Image synthesis (seeded)

def photo_like(rng, width, height, noise=6.0):
    """Smooth shading, a few hard-edged shapes and sensor-like noise: exercises both the low and high frequencies of
    the decoders and the resize."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    img = np.zeros((height, width, 3))
    for c in range(3):
        for _ in range(4):
            fx, fy = rng.uniform(0.2, 3.0, 2) * 2 * np.pi
            phase = rng.uniform(0, 2 * np.pi)
            img[..., c] += rng.uniform(20, 50) * np.sin(fx * x / width + fy * y / height + phase)
        img[..., c] += rng.uniform(80, 170)
    for _ in range(6):  # ellipses and rectangles
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        rx, ry = rng.uniform(0.05, 0.3) * width, rng.uniform(0.05, 0.3) * height
        color = rng.uniform(0, 255, 3)
        if rng.uniform() < 0.5:
            mask = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1
        else:
            mask = (abs(x - cx) <= rx) & (abs(y - cy) <= ry)
        img[mask] = 0.6 * img[mask] + 0.4 * color
    for _ in range(3):  # thin dark lines, like text strokes
        r0 = int(rng.integers(0, height))
        img[r0:r0 + 2, :, :] *= 0.3
    img += rng.normal(0, noise, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def smooth(rng, width, height):
    return photo_like(rng, width, height, noise=1.5)


def save(img: Image.Image, name: str, **kwargs) -> str:
    path = os.path.join(IMAGES, name)
    img.save(path, **kwargs)
    return path


def exif_with_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def bmp_8bit_rle8(pixels: np.ndarray, palette: np.ndarray) -> bytes:
    """A BI_RLE8 BMP (Pillow cannot write one): each row as runs of equal bytes, end-of-line, end-of-bitmap."""
    height, width = pixels.shape
    body = bytearray()
    for row in pixels[::-1]:  # bottom-up
        x = 0
        while x < width:
            run = 1
            while x + run < width and run < 255 and row[x + run] == row[x]:
                run += 1
            body += bytes([run, int(row[x])])
            x += run
        body += b"\x00\x00"
    body += b"\x00\x01"
    colors = len(palette)
    header = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(body), 2835, 2835, colors, 0)
    pal = b"".join(bytes([b, g, r, 0]) for r, g, b in palette)
    offset = 14 + len(header) + len(pal)
    return b"BM" + struct.pack("<IHHI", offset + len(body), 0, 0, offset) + header + pal + bytes(body)


def make_images(rng):
    """Returns [(case name, file name, per-call budget or None)]."""
    os.makedirs(IMAGES, exist_ok=True)
    cases = []

    # A camera-like JPEG stored sideways with EXIF orientation 6 (rotate 90 degrees clockwise to view).
    save(Image.fromarray(photo_like(rng, 256, 192)), "photo_exif6.jpg", quality=90, exif=exif_with_orientation(6))
    cases.append(("photo_exif6", "photo_exif6.jpg", None))
    # The same photo with a per-call budget small enough to commit pixel_values raw (checks patch order directly).
    cases.append(("photo_exif6_small_budget", "photo_exif6.jpg", (1024, 8192)))

    # Smaller than min_pixels (transformers' smart_resize: 48x80 -> 224x352, upscaled).
    save(Image.fromarray(photo_like(rng, 80, 48)), "small_80x48.png")
    cases.append(("small_80x48", "small_80x48.png", None))

    # Larger than max_pixels, through a per-call budget so the file stays small; progressive JPEG.
    save(Image.fromarray(photo_like(rng, 700, 500)), "over_max_700x500.jpg", quality=85, progressive=True)
    cases.append(("over_max_700x500", "over_max_700x500.jpg", (4096, 40000)))

    # The default budget on a moderately large image (the size of Qwen3-VL's demo.jpeg: 1365x2048 -> 1376x2048).
    save(Image.fromarray(smooth(rng, 2048, 1365)), "large_2048x1365.jpg", quality=80)
    cases.append(("large_2048x1365", "large_2048x1365.jpg", None))

    # Aspect ratio 1:150.
    save(Image.fromarray(photo_like(rng, 4500, 30)), "aspect150_4500x30.png")
    cases.append(("aspect150_4500x30", "aspect150_4500x30.png", None))

    # Both .5 rounding cases of round-half-to-even: 112/32 = 3.5 -> 4, 592/32 = 18.5 -> 18.
    save(Image.fromarray(photo_like(rng, 592, 112)), "half_592x112.png")
    cases.append(("half_592x112", "half_592x112.png", None))

    # Odd sizes, lossy WebP (chroma upsampling at odd edges).
    save(Image.fromarray(photo_like(rng, 257, 251)), "odd_257x251.webp", quality=80, method=4)
    cases.append(("odd_257x251_webp", "odd_257x251.webp", None))

    # Grayscale PNG (L).
    save(Image.fromarray(photo_like(rng, 199, 301)[..., 1].copy()), "gray_199x301.png")
    cases.append(("gray_199x301", "gray_199x301.png", None))

    # 16-bit grayscale PNG (I;16), values 0..1023: Pillow clips them to 255 when converting to RGB.
    gray16 = (photo_like(rng, 150, 200)[..., 0].astype(np.uint16) * 4 + rng.integers(0, 4, (200, 150))).astype(np.uint16)
    save(Image.fromarray(gray16), "gray16_150x200.png")
    cases.append(("gray16_150x200", "gray16_150x200.png", None))

    # RGBA PNG with varying alpha (alpha is dropped by load_image's convert("RGB")).
    rgba = np.concatenate([photo_like(rng, 200, 180), rng.integers(0, 256, (180, 200, 1), dtype=np.uint8)], axis=2)
    rgba[:40, :, 3] = 0
    save(Image.fromarray(rgba), "rgba_200x180.png")
    cases.append(("rgba_200x180", "rgba_200x180.png", None))
    cases.append(("rgba_200x180_small_budget", "rgba_200x180.png", (1024, 4096)))

    # Palette GIF with a transparent index.
    pal = Image.fromarray(photo_like(rng, 230, 190)).quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=0)
    save(pal, "palette_230x190.gif", transparency=5)
    cases.append(("palette_230x190_gif", "palette_230x190.gif", None))

    # 24-bit BMP whose rows need padding (123 * 3 = 369 bytes).
    save(Image.fromarray(photo_like(rng, 123, 77)), "bmp24_123x77.bmp")
    cases.append(("bmp24_123x77", "bmp24_123x77.bmp", None))

    # Decoder coverage, small images: LA, palette PNG with tRNS, CMYK and grayscale JPEG, interlaced
    # (Adam7) 16-bit RGB, lossless RGBA WebP, 8-bit palette / RLE8 BMP, every EXIF orientation (PNG eXIf chunk).
    la = np.stack([photo_like(rng, 64, 48)[..., 0], rng.integers(0, 256, (48, 64), dtype=np.uint8)], axis=2)
    save(Image.fromarray(la), "la_64x48.png")
    cases.append(("la_64x48", "la_64x48.png", None))
    ptrns = Image.fromarray(photo_like(rng, 60, 40)).quantize(colors=16, dither=0)
    save(ptrns, "palette_trns_60x40.png", transparency=bytes([0, 128] + [255] * 14))
    cases.append(("palette_trns_60x40", "palette_trns_60x40.png", None))
    save(Image.fromarray(photo_like(rng, 96, 64)).convert("CMYK"), "cmyk_96x64.jpg", quality=92)
    cases.append(("cmyk_96x64", "cmyk_96x64.jpg", None))
    save(Image.fromarray(photo_like(rng, 64, 48)[..., 2].copy()), "gray_64x48.jpg", quality=88)
    cases.append(("gray_jpeg_64x48", "gray_64x48.jpg", None))
    rgb16 = photo_like(rng, 40, 30).astype(np.uint16) * 257 + rng.integers(0, 257, (30, 40, 3)).astype(np.uint16)
    with open(os.path.join(IMAGES, "rgb16_40x30.png"), "wb") as f:
        f.write(png_rgb16(rgb16))
    cases.append(("rgb16_40x30", "rgb16_40x30.png", None))
    webp_rgba = np.concatenate([photo_like(rng, 50, 40), rng.integers(0, 256, (40, 50, 1), dtype=np.uint8)], axis=2)
    save(Image.fromarray(webp_rgba), "lossless_rgba_50x40.webp", lossless=True, exact=True)
    cases.append(("webp_lossless_rgba_50x40", "lossless_rgba_50x40.webp", None))
    save(Image.fromarray(photo_like(rng, 37, 21)).quantize(colors=200, dither=0), "bmp8_37x21.bmp")
    cases.append(("bmp8_37x21", "bmp8_37x21.bmp", None))
    idx = rng.integers(0, 6, (25, 33)).repeat(3, axis=1)[:, :33].astype(np.uint8)
    palette = [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(6)]
    with open(os.path.join(IMAGES, "bmp_rle8_33x25.bmp"), "wb") as f:
        f.write(bmp_8bit_rle8(idx, np.array(palette)))
    cases.append(("bmp_rle8_33x25", "bmp_rle8_33x25.bmp", None))
    for orientation in range(1, 9):
        name = f"orient{orientation}_5x3.png"
        save(Image.fromarray(rng.integers(0, 256, (3, 5, 3), dtype=np.uint8)), name,
             exif=exif_with_orientation(orientation))
        cases.append((f"orient{orientation}_png", name, None))
    return cases


def png_rgb16(pixels: np.ndarray) -> bytes:
    """A 16-bit RGB PNG (Pillow cannot write one), Adam7-interlaced so that path is covered too."""
    import zlib
    height, width, _ = pixels.shape
    raw = bytearray()
    # Adam7 passes: (x0, y0, dx, dy)
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
                           (0, 1, 1, 2)):
        sub = pixels[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        for row in sub:
            raw += b"\x00" + row.astype(">u2").tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 1)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b"")


# ---------------------------------------------------------------------------------------------------------------
# References

def array_entry(name: str, suffix: str, array: np.ndarray, limit: int = RAW_LIMIT) -> dict:
    data = np.ascontiguousarray(array).tobytes()
    flat = np.ascontiguousarray(array).reshape(-1)
    step = max(1, flat.size // SAMPLES)
    indices = list(range(0, flat.size, step))[:SAMPLES]
    entry = {"shape": list(array.shape), "sha256": sha256(data),
             "samples": [[i, flat[i].item()] for i in indices]}
    if len(data) <= limit:
        digest = entry["sha256"]
        if digest not in WRITTEN:  # identical arrays (the same image under two budgets) share one file
            WRITTEN[digest] = f"{name}.{suffix}"
            with open(os.path.join(GOLDENS, WRITTEN[digest]), "wb") as f:
                f.write(data)
        entry["file"] = WRITTEN[digest]
    return entry


def patchify(resized_chw_uint8: torch.Tensor, processor) -> torch.Tensor:
    """pixel_values from a resized uint8 image through the processor's own rescale_and_normalize + patchify."""
    x = resized_chw_uint8[None]
    x = processor.rescale_and_normalize(x, True, processor.rescale_factor, True, tuple(processor.image_mean),
                                        tuple(processor.image_std))
    patches, _, _ = processor.patchify(x, patch_size=16, merge_size=2, temporal_patch_size=2)
    return patches[0]


def main():
    torch.manual_seed(0)
    rng = np.random.default_rng(20240917)
    os.makedirs(GOLDENS, exist_ok=True)
    cases = make_images(rng)

    with tempfile.TemporaryDirectory() as config_dir:
        with open(os.path.join(config_dir, "preprocessor_config.json"), "w") as f:
            json.dump(RELEASED_CONFIG, f)
        processor = AutoImageProcessor.from_pretrained(config_dir)
    assert type(processor).__name__ == "Qwen2VLImageProcessor", type(processor)

    index = {"transformers": transformers.__version__, "torch": torch.__version__,
             "pillow": Image.__version__, "processor_class": type(processor).__name__,
             "preprocessor_config": RELEASED_CONFIG, "cases": []}
    for name, file, budget in cases:
        path = os.path.join(IMAGES, file)
        decoded_pil = load_image(path)
        # What the processor works on: its convert_to_rgb composites a remaining colour key on white.
        decoded = convert_to_rgb(decoded_pil, return_numpy=True)
        color_key = decoded_pil.info.get("transparency")
        kwargs = {}
        if budget is not None:
            kwargs["size"] = {"shortest_edge": budget[0], "longest_edge": budget[1]}
        out = processor(images=decoded_pil, return_tensors="pt", **kwargs)
        pixel_values = out["pixel_values"].numpy()
        grid = out["image_grid_thw"][0].tolist()
        resized_h, resized_w = grid[1] * 16, grid[2] * 16
        chw = torch.from_numpy(decoded).permute(2, 0, 1).contiguous()
        resized = tvF.resize(chw, [resized_h, resized_w], interpolation=tvF.InterpolationMode.BICUBIC, antialias=True)
        again = patchify(resized, processor).numpy()
        assert again.dtype == np.float32 and np.array_equal(again, pixel_values), name

        try:
            tv = load_image_as_tensor(path)
            plain = torch.from_numpy(np.array(decoded_pil)).permute(2, 0, 1)
            tv_equal = bool(tv.dtype == torch.uint8 and tuple(tv.shape) == tuple(plain.shape) and torch.equal(tv, plain))
            tv_note = "equal" if tv_equal else f"differs ({tv.dtype}, {tuple(tv.shape)})"
        except Exception as error:  # noqa: BLE001 - recorded, not fatal
            tv_note = f"unsupported ({str(error).splitlines()[0][:80]})"

        entry = {
            "name": name, "file": file,
            "budget": None if budget is None else {"min_pixels": budget[0], "max_pixels": budget[1]},
            "original": {"width": decoded.shape[1], "height": decoded.shape[0]},
            "resized": {"width": resized_w, "height": resized_h},
            "grid_thw": grid,
            "decoded": array_entry(name, "decoded.rgb", decoded),
            "resized_rgb": array_entry(name, "resized.rgb", resized.permute(1, 2, 0).contiguous().numpy()),
            "pixel_values": array_entry(name, "pixel_values.f32", pixel_values, limit=256 * 1024),
            "torchvision_decode": tv_note,
            "color_key": None if color_key is None else str(color_key),
        }
        index["cases"].append(entry)
        print(f"{name:28s} {decoded.shape[1]}x{decoded.shape[0]} -> {resized_w}x{resized_h} grid {grid} "
              f"torchvision decode: {tv_note}", file=sys.stderr)

    # One case per line: readable diffs without a megabyte of indentation.
    with open(os.path.join(GOLDENS, "index.json"), "w") as f:
        cases_json = ",\n  ".join(json.dumps(case, separators=(",", ":")) for case in index.pop("cases"))
        head = json.dumps(index, indent=1)[:-2]
        f.write(head + ',\n "cases": [\n  ' + cases_json + "\n ]\n}\n")


if __name__ == "__main__":
    main()
