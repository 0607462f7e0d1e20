#!/usr/bin/env python3
"""Checks `qwen3vl serve` with the official `openai` Python client (pip install openai): a chat with an image,
not streamed and streamed, plus the model list and an error. Not part of CI (which needs no Python).

    build/bin/qwen3vl serve -m tests/fixtures/models/tiny-realtok-bf16 --port 8080 &
    python scripts/openai_client_check.py --base-url http://127.0.0.1:8080/v1
    (or: python scripts/openai_client_check.py --start-server, which starts and stops one itself)
"""
import argparse
import base64
import os
import re
import subprocess
import sys
import time

import openai

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = os.path.join(ROOT, "tests/fixtures/multimodal/images/shapes_150x97.png")


def start_server(model):
    process = subprocess.Popen([os.path.join(ROOT, "build/bin/qwen3vl"), "serve", "-m", model, "--port", "0",
                                "--api-key", "local-key"], stderr=subprocess.PIPE, text=True)
    line = process.stderr.readline()
    match = re.search(r"listening on (http://[\d.]+:\d+)", line)
    if not match:
        process.kill()
        sys.exit("the server did not start: " + line)
    return process, match.group(1) + "/v1"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", default="http://127.0.0.1:8080/v1")
    parser.add_argument("--api-key", default="local-key")
    parser.add_argument("--start-server", action="store_true")
    parser.add_argument("--model-dir", default=os.path.join(ROOT, "tests/fixtures/models/tiny-realtok-bf16"))
    args = parser.parse_args()
    process = None
    if args.start_server:
        process, args.base_url = start_server(args.model_dir)
    try:
        client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key)
        models = client.models.list()
        model = models.data[0].id
        print(f"openai {openai.__version__}; models: {[m.id for m in models.data]}")

        with open(IMAGE, "rb") as f:
            image_url = "data:image/png;base64," + base64.b64encode(f.read()).decode()
        messages = [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": image_url}},
            {"type": "text", "text": "What is in this image?"}]}]

        start = time.time()
        reply = client.chat.completions.create(model=model, messages=messages, max_tokens=16, temperature=0)
        choice = reply.choices[0]
        assert reply.object == "chat.completion" and choice.message.role == "assistant", reply
        assert choice.message.content, reply
        assert reply.usage.completion_tokens == 16 and reply.usage.prompt_tokens > 16, reply.usage
        details = reply.usage.prompt_tokens_details
        visual = getattr(details, "image_tokens", None) or (details.model_extra or {}).get("image_tokens")
        assert visual and visual > 0, reply.usage
        print(f"non-streamed ({time.time() - start:.2f} s): {choice.message.content!r} finish={choice.finish_reason} "
              f"usage: prompt {reply.usage.prompt_tokens} (visual {visual}), completion "
              f"{reply.usage.completion_tokens}")

        start = time.time()
        stream = client.chat.completions.create(model=model, messages=messages, max_tokens=16, temperature=0,
                                                stream=True, stream_options={"include_usage": True})
        pieces, finish, usage = [], None, None
        for chunk in stream:
            if chunk.usage:
                usage = chunk.usage
            for c in chunk.choices:
                if c.delta.content:
                    pieces.append(c.delta.content)
                if c.finish_reason:
                    finish = c.finish_reason
        text = "".join(pieces)
        assert text == choice.message.content, (text, choice.message.content)
        assert len(pieces) > 1 and finish == "length" and usage and usage.completion_tokens == 16
        print(f"streamed ({time.time() - start:.2f} s): {len(pieces)} chunks, same text, finish={finish}, "
              f"usage: prompt {usage.prompt_tokens}, completion {usage.completion_tokens}")

        try:
            client.chat.completions.create(model="no-such-model", messages=messages, max_tokens=4)
            sys.exit("an unknown model was accepted")
        except openai.NotFoundError as error:
            print(f"unknown model -> {error.status_code}: {error.body['message']}")
        try:
            client.chat.completions.create(model=model, messages=messages, max_tokens=4, temperature=7)
            sys.exit("temperature 7 was accepted")
        except openai.BadRequestError as error:
            print(f"bad temperature -> {error.status_code}: {error.body['message']}")
        try:
            openai.OpenAI(base_url=args.base_url, api_key="wrong").models.list()
            print("(the server has no API key)")
        except openai.AuthenticationError as error:
            print(f"wrong API key -> {error.status_code}")
        print("OK")
    finally:
        if process:
            process.terminate()
            process.wait()


if __name__ == "__main__":
    main()
