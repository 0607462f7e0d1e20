"""Qwen3-VL inference from Python on the qwen3vl C++ engine.

    import qwen3vl
    model = qwen3vl.Model("models/qwen3vl-tiny-shapes")
    reply = model.chat([{"role": "user", "content": [
        {"type": "image", "image": "examples/shapes.png"},
        {"type": "text", "text": "What color is the circle?"}]}], max_tokens=32)
    print(reply.text, reply.usage)

Messages are OpenAI chat messages (the same body `qwen3vl serve` takes, qwen-vl-utils keys included). An image part
may hold a file path, a URL string, bytes of an encoded image, a PIL image or a numpy array (H x W x 3 or H x W,
uint8); they are handed to the engine as file paths or PNG data URLs. Errors are `qwen3vl.Error` (the engine's
one-line message, naming the file or field at fault) and its subclass `qwen3vl.RequestError` (a malformed request,
naming the message part). The engine runs without the GIL, so several threads may chat at once.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import struct
import threading
import zlib
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Sequence

from ._qwen3vl import Error, RequestError
from ._qwen3vl import Model as _NativeModel

__all__ = ["Model", "ChatResponse", "ChatChunk", "ChatStream", "EvalResult", "Error", "RequestError"]


@dataclass
class ChatResponse:
    text: str                      # the answer (for Thinking checkpoints, after the reasoning)
    reasoning: str                 # Thinking checkpoints' reasoning, else ""
    finish_reason: str             # "stop", "length" or "cancelled"
    usage: dict                    # prompt_tokens, completion_tokens, total_tokens (and visual token counts)
    grounding: Optional[list]      # per image: {"image_index", "width", "height", "items"} (boxes in pixels), or None


@dataclass
class ChatChunk:
    text: str
    reasoning: str


@dataclass
class EvalResult:
    accuracy: float                # over all scored items
    count: int                     # scored items
    categories: dict               # name -> {"count", "accuracy"}
    failed: int                    # items that could not be run
    predictions: list = field(default_factory=list)  # one record per item, as `qwen3vl eval` writes them


class ChatStream:
    """Iterates over ChatChunk pieces of the reply as they are generated; `response` holds the whole ChatResponse
    once the iteration has ended. Closing the stream early (break, close()) stops the generation."""

    def __init__(self, native: _NativeModel, request_json: str):
        self.response: Optional[ChatResponse] = None
        self._queue: "queue.Queue" = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(native, request_json), daemon=True)
        self._thread.start()

    def _run(self, native: _NativeModel, request_json: str) -> None:
        def on_delta(text: str, reasoning: str) -> bool:
            self._queue.put(ChatChunk(text, reasoning))
            return not self._stop.is_set()
        try:
            self._queue.put(_response(native.chat(request_json, on_delta)))
        except BaseException as error:  # handed to the consumer's thread
            self._queue.put(error)

    def __iter__(self) -> Iterator[ChatChunk]:
        try:
            while True:
                item = self._queue.get()
                if isinstance(item, ChatChunk):
                    yield item
                elif isinstance(item, ChatResponse):
                    self.response = item
                    return
                else:
                    raise item
        finally:
            self.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


class Model:
    """A Qwen3-VL checkpoint folder (Hugging Face layout), loaded once and shared by every call.

    weight_format: "bf16", "f16", "q8" or "q4" converts the language model's weights at load (None: as shipped);
    vision_format: "bf16" or "q8" for the vision tower; threads: 0 means one per core; ctx_size: prompt plus reply
    tokens of one request; chat_template_file: a Jinja file used instead of the checkpoint's template;
    lora_adapters: PEFT adapter folders ("NAME=DIR" or "DIR"), chosen per request with chat(..., model=NAME).
    """

    def __init__(self, path: str, weight_format: Optional[str] = None, vision_format: Optional[str] = None,
                 threads: int = 0, ctx_size: int = 8192, chat_template_file: Optional[str] = None,
                 lora_adapters: Sequence[str] = ()):
        self._native = _NativeModel(os.fspath(path), weight_format or "", vision_format or "", threads, ctx_size,
                                    os.fspath(chat_template_file) if chat_template_file else "", list(lora_adapters))

    @property
    def model_id(self) -> str:
        return self._native.model_id

    def chat(self, messages: Sequence[dict], max_tokens: Optional[int] = None, temperature: Optional[float] = None,
             stream: bool = False, **options: Any):
        """Generates a reply. `options` are further chat-completion fields (top_p, top_k, min_p, seed, stop,
        presence_penalty, frequency_penalty, repetition_penalty, min_pixels, max_pixels, model, lora, ...), as the
        server takes them. Returns a ChatResponse, or with stream=True a ChatStream of ChatChunk pieces."""
        request = {key: value for key, value in options.items() if value is not None}
        request["messages"] = [_message(m) for m in messages]
        if max_tokens is not None:
            request["max_tokens"] = max_tokens
        if temperature is not None:
            request["temperature"] = temperature
        request_json = json.dumps(request)
        if stream:
            return ChatStream(self._native, request_json)
        return _response(self._native.chat(request_json, None))

    def tokenize(self, text: str, parse_special: bool = True) -> list:
        """Token ids of `text`; with parse_special, special-token text ("<|im_start|>") becomes that token."""
        return self._native.tokenize(text, parse_special)

    def detokenize(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return self._native.detokenize([int(i) for i in ids], skip_special_tokens)

    def eval(self, data: str, limit: int = 0, max_tokens: int = 64, system: str = "") -> EvalResult:
        """Scores the benchmark JSONL `data` (the format `qwen3vl eval --data` reads) with greedy decoding."""
        result = json.loads(self._native.eval(os.fspath(data), limit, max_tokens, system))
        return EvalResult(accuracy=result["overall"]["accuracy"], count=result["overall"]["count"],
                          categories=result["categories"], failed=result["failed"],
                          predictions=result["predictions"])


def _response(result_json: str) -> ChatResponse:
    return ChatResponse(**json.loads(result_json))


def _message(message: dict) -> dict:
    content = message.get("content")
    if not isinstance(content, list):
        return message
    return {**message, "content": [_part(part) for part in content]}


def _part(part: Any) -> Any:
    if not isinstance(part, dict):
        return part
    converted = dict(part)
    for key in ("image", "image_url", "video", "video_url"):
        if key in converted:
            converted[key] = _media(converted[key])
    return converted


def _media(value: Any) -> Any:
    """A media value as the chat body spells it: a URL or absolute path string, a {"url": ...} object, or a list
    of frames for a video."""
    if isinstance(value, dict):
        return {**value, **({"url": _media(value["url"])} if "url" in value else {}),
                **({"image": _media(value["image"])} if "image" in value else {})}
    if isinstance(value, (list, tuple)):
        return [_media(frame) for frame in value]
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str):
        if "://" in value or value.startswith("data:"):
            return value
        return os.path.abspath(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _data_url(bytes(value))
    if hasattr(value, "save") and hasattr(value, "mode"):  # a PIL image
        import io
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        return _data_url(buffer.getvalue())
    if hasattr(value, "__array_interface__"):  # a numpy array
        return _data_url(_png_from_array(value))
    raise TypeError(f"unsupported image or video value of type {type(value).__name__}")


def _data_url(encoded: bytes) -> str:
    return "data:application/octet-stream;base64," + base64.b64encode(encoded).decode("ascii")


def _png_from_array(array: Any) -> bytes:
    """An H x W (gray), H x W x 3 (RGB) or H x W x 4 (RGBA) uint8 array as a PNG file (lossless)."""
    interface = array.__array_interface__
    shape, typestr = interface["shape"], interface["typestr"]
    if typestr not in ("|u1", "<u1") or len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] not in (3, 4)):
        raise TypeError(f"an image array must be uint8 of shape HxW, HxWx3 or HxWx4, not {typestr} {shape}")
    height, width = shape[0], shape[1]
    channels = 1 if len(shape) == 2 else shape[2]
    pixels = array.tobytes(order="C") if hasattr(array, "tobytes") else bytes(array)
    stride = width * channels
    raw = b"".join(b"\x00" + pixels[row * stride:(row + 1) * stride] for row in range(height))

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    color_type = {1: 0, 3: 2, 4: 6}[channels]
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
