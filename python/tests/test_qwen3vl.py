"""The Python package against the CLI, on the demo model: chat (every image form, streaming, grounding, errors),
tokenize, eval and two threads at once without the GIL. Run after `pip install .[test]`: pytest python/tests."""

import io
import json
import os
import shutil
import subprocess
import threading
import time

import numpy
import PIL.Image
import pytest

import qwen3vl

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL_DIR = os.path.join(REPO, "models", "qwen3vl-tiny-shapes")
IMAGE = os.path.join(REPO, "examples", "shapes.png")
QUESTION = "What color is the triangle?"


def cli() -> str:
    path = os.environ.get("QWEN3VL_CLI") or shutil.which("qwen3vl")
    assert path, "the qwen3vl command (installed by pip install .) is not on PATH; or set QWEN3VL_CLI"
    return path


def run_cli(*args: str) -> str:
    done = subprocess.run([cli(), *args], capture_output=True, text=True, check=True)
    return done.stdout


@pytest.fixture(scope="module")
def model():
    return qwen3vl.Model(MODEL_DIR, threads=2)


def image_question(image, question=QUESTION):
    return [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": question}]}]


def test_chat_answers_the_demo_question_as_the_cli_does(model):
    expected = run_cli("run", "-m", MODEL_DIR, "--image", IMAGE, "-p", QUESTION, "--temp", "0", "-t", "2").strip()
    reply = model.chat(image_question(IMAGE), temperature=0)
    assert reply.text == expected
    assert reply.finish_reason == "stop"
    assert reply.reasoning == ""
    assert reply.usage["completion_tokens"] >= 1
    assert reply.usage["prompt_tokens"] > 16  # 16 visual tokens and the text


def test_every_image_form_gives_the_same_reply(model):
    expected = model.chat(image_question(IMAGE), temperature=0).text
    with open(IMAGE, "rb") as f:
        encoded = f.read()
    pil = PIL.Image.open(io.BytesIO(encoded)).convert("RGB")
    forms = {
        "relative path": os.path.relpath(IMAGE),
        "image_url object": {"url": IMAGE},
        "bytes": encoded,
        "PIL image": pil,
        "numpy array": numpy.asarray(pil),
    }
    for name, image in forms.items():
        if name == "image_url object":
            messages = [{"role": "user", "content": [{"type": "image_url", "image_url": image},
                                                     {"type": "text", "text": QUESTION}]}]
        else:
            messages = image_question(image)
        assert model.chat(messages, temperature=0).text == expected, name


def test_grounding_boxes_are_in_image_pixels(model):
    expected = run_cli("run", "-m", MODEL_DIR, "--image", IMAGE, "--grounding", "--temp", "0", "-t", "2", "-p",
                       "Locate the blue triangle, output bbox_2d coordinates in JSON.").strip().splitlines()
    reply = model.chat(image_question(IMAGE, "Locate the blue triangle, output bbox_2d coordinates in JSON."),
                       temperature=0)
    assert reply.text == expected[0]
    cli_items = json.loads(expected[1])
    assert reply.grounding is not None and len(reply.grounding) == 1
    image = reply.grounding[0]
    assert (image["image_index"], image["width"], image["height"]) == (0, 128, 128)
    assert [item["bbox_pixels"] for item in image["items"]] == [item["bbox_pixels"] for item in cli_items]
    assert image["items"][0]["label"] == "blue triangle"


def test_stream_yields_the_reply_in_pieces(model):
    messages = [{"role": "user", "content": "Say something."}]
    whole = model.chat(messages, max_tokens=24, temperature=0)
    stream = model.chat(messages, max_tokens=24, temperature=0, stream=True)
    pieces = [chunk.text for chunk in stream]
    assert len(pieces) >= 2
    assert "".join(pieces) == whole.text
    assert stream.response == whole


def test_closing_a_stream_stops_generation(model):
    stream = model.chat([{"role": "user", "content": "Say something."}], max_tokens=200, temperature=0,
                        stream=True, stop=[])
    for _ in stream:
        break
    assert stream.response is None  # closed before the end: no whole response


def test_tokenize_matches_the_cli_and_round_trips(model):
    texts = ["What color is the triangle?", "<|im_start|>user\nhi<|im_end|>", "  spaces\tand\nnewlines  ", "ünïcödé"]
    for text in texts:
        ids = model.tokenize(text)
        assert ids == [int(i) for i in json.loads(run_cli("tokenize", "-m", MODEL_DIR, "--ids-only", text))]
        assert model.detokenize(ids) == text
    assert len(model.tokenize("<|im_start|>")) == 1
    assert len(model.tokenize("<|im_start|>", parse_special=False)) > 1
    assert model.detokenize(model.tokenize("<|im_start|>hi"), skip_special_tokens=True) == "hi"


def test_eval_scores_as_the_cli_does(model, tmp_path):
    data = os.path.join(REPO, "tests", "fixtures", "eval", "synthetic", "test.jsonl")
    result = model.eval(data, limit=20)
    predictions = tmp_path / "p.jsonl"
    table = run_cli("eval", "-m", MODEL_DIR, "--data", data, "--limit", "20", "--predictions", str(predictions))
    cli_records = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert result.count == 20 and result.failed == 0
    assert [r["prediction"] for r in result.predictions] == [r["prediction"] for r in cli_records]
    assert f"{100 * result.accuracy:.2f}" in table.splitlines()[-1]


def test_a_broken_checkpoint_raises_an_error_naming_the_file(tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(MODEL_DIR, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(qwen3vl.Error, match="model.safetensors"):
        qwen3vl.Model(str(broken))
    with pytest.raises(qwen3vl.Error, match="config.json"):
        qwen3vl.Model(str(tmp_path / "missing"))


def test_a_malformed_request_raises_a_request_error_naming_the_part(model):
    with pytest.raises(qwen3vl.RequestError, match=r"messages\[0\]"):
        model.chat([{"role": "user", "content": [{"type": "image", "image": "/no/such/image.png"}]}])
    with pytest.raises(qwen3vl.RequestError, match="temperature"):
        model.chat([{"role": "user", "content": "hi"}], temperature=-1)
    with pytest.raises(TypeError):
        model.chat(image_question(object()))


def test_two_threads_chat_at_once_without_holding_the_gil(model, tmp_path):
    # 1024 visual tokens: a call long enough (tens of milliseconds) for this thread to be scheduled during it; a
    # file path, so the call spends its time in the engine and not in Python.
    large = tmp_path / "large.png"
    PIL.Image.open(IMAGE).convert("RGB").resize((1024, 1024)).save(large)
    messages = image_question(str(large), "Describe the image.")
    options = {"max_tokens": 64, "temperature": 0, "max_pixels": 1024 * 1024}
    expected = model.chat(messages, **options).text
    intervals, replies = {}, {}
    go = threading.Event()

    def worker(name):
        go.wait()
        start = time.perf_counter()
        replies[name] = model.chat(messages, **options).text
        intervals[name] = (start, time.perf_counter())

    threads = [threading.Thread(target=worker, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    ticks = [time.perf_counter()]
    go.set()
    while any(thread.is_alive() for thread in threads):
        ticks.append(time.perf_counter())
    for thread in threads:
        thread.join()
    assert replies == {"a": expected, "b": expected}
    # This thread ticked from before either call started to after both ended. Had a call held the GIL while the
    # engine computed, no tick could fall in that time: a gap of most of the call. Without the GIL the gaps are the
    # scheduler's, a few milliseconds.
    for name, (start, end) in intervals.items():
        inside = [start] + [tick for tick in ticks if start < tick < end] + [end]
        largest_gap = max(b - a for a, b in zip(inside, inside[1:]))
        assert largest_gap < 0.5 * (end - start), (name, largest_gap, end - start)
