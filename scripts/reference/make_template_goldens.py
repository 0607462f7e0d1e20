#!/usr/bin/env python3
"""Render every committed conversation with every real chat template, for the interpreter's golden test.

tests/golden/test_jinja_chat_templates_golden.cpp renders the same pairs with the project's Jinja interpreter and
must match byte for byte. For each template in scripts/reference/templates/*.jinja and each conversation of
tests/fixtures/chat/conversations.json (conversations whose inputs repeat another's are rendered once) this calls

    tokenizer.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=...,
                                  add_vision_id=..., **template_kwargs, chat_template=<template text>)

with the tokenizer of tests/fixtures/tokenizer/qwen3 (its special tokens are what the templates see as bos_token,
eos_token, ...). strftime_now() reads a pinned clock (FIXED_NOW, patched into transformers' module), so templates
that print today's date render the same every time. The output, tests/fixtures/chat/template_goldens.json, holds per
(template, conversation) the text, or the error: its type and message, whether the template raised it itself
(raise_exception) and whether transformers refused the input before the template ran.

Usage: $VENV/bin/python scripts/reference/make_template_goldens.py [--tokenizer DIR] [--check]
  --check  compare with the committed file instead of writing it (exit 1 on a difference)
"""
import argparse
import datetime
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "scripts" / "reference" / "templates"
FIXTURES = ROOT / "tests" / "fixtures" / "chat"
FIXED_NOW = datetime.datetime(2026, 3, 14, 15, 9, 26)


class FixedDatetime(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return FIXED_NOW


def conversation_key(conv):
    """What the template sees: two conversations with the same key render the same."""
    return json.dumps([conv["messages"], conv.get("tools"), conv["add_generation_prompt"], conv["add_vision_id"],
                       conv.get("template_kwargs", {})], sort_keys=True)


def render(tokenizer, template, conv, rendered):
    """The text, or the error and whether the template itself ran (`rendered` records each render call)."""
    rendered.clear()
    kwargs = dict(conv.get("template_kwargs", {}))
    try:
        text = tokenizer.apply_chat_template(
            conv["messages"], tools=conv.get("tools"), tokenize=False,
            add_generation_prompt=conv["add_generation_prompt"], add_vision_id=conv["add_vision_id"],
            chat_template=template, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the error is the expected result
        import jinja2
        raised = type(exc) is jinja2.exceptions.TemplateError  # raise_exception's type, and only its
        return {"error": {"type": type(exc).__name__, "message": str(exc), "raised": raised,
                          "before_render": not rendered}}
    return {"text": text}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", default=str(ROOT / "tests" / "fixtures" / "tokenizer" / "qwen3"))
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()

    import jinja2
    import transformers
    import transformers.utils.chat_template_utils as chat_template_utils
    from transformers import AutoTokenizer

    chat_template_utils.datetime = FixedDatetime  # strftime_now() calls datetime.now()
    rendered = []
    original_render = jinja2.Template.render

    def recording_render(self, *a, **kw):
        rendered.append(True)
        return original_render(self, *a, **kw)

    jinja2.Template.render = recording_render

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    templates = {path.stem: path.read_text(encoding="utf-8") for path in sorted(TEMPLATES.glob("*.jinja"))}
    conversations = json.loads((FIXTURES / "conversations.json").read_text(encoding="utf-8"))

    seen = set()
    unique = []
    for conv in conversations:
        key = conversation_key(conv)
        if key not in seen:
            seen.add(key)
            unique.append(conv)

    cases = []
    for name, template in templates.items():
        for conv in unique:
            cases.append({"template": name, "conversation": conv["name"], **render(tokenizer, template, conv, rendered)})

    goldens = {
        "generator": "scripts/reference/make_template_goldens.py",
        "transformers_version": transformers.__version__,
        "jinja2_version": jinja2.__version__,
        "special_tokens": tokenizer.special_tokens_map,
        "clock": FIXED_NOW.strftime("%Y-%m-%d %H:%M:%S"),
        "template_sha256": {name: hashlib.sha256(text.encode("utf-8")).hexdigest() for name, text in templates.items()},
        "cases": cases,
    }
    out_path = FIXTURES / "template_goldens.json"
    if args.check:
        if json.loads(out_path.read_text(encoding="utf-8")) != goldens:
            print("template_goldens.json is out of date", file=sys.stderr)
            return 1
        print(f"template_goldens.json up to date ({len(cases)} cases)")
        return 0
    out_path.write_text(json.dumps(goldens, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    errors = sum("error" in c for c in cases)
    print(f"wrote {out_path.relative_to(ROOT)}: {len(templates)} templates x {len(unique)} conversations = "
          f"{len(cases)} cases ({errors} errors), transformers {transformers.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
