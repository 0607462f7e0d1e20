#!/usr/bin/env python3
"""Render the chat-template goldens for tests/unit/test_chat_template.cpp.

For every conversation in tests/fixtures/chat/conversations.json this calls transformers itself:

    tokenizer.apply_chat_template(messages, tools=tools, tokenize=False,
                                  add_generation_prompt=..., add_vision_id=...,
                                  chat_template=<scripts/reference/templates/qwen3vl_{instruct,thinking}.jinja>)

with the tokenizer loaded from tests/fixtures/tokenizer/qwen3 (same special tokens as Qwen3-VL; its own chat
template is not used). It writes tests/fixtures/chat/expected.json with one entry per conversation: the
rendered text, or, for conversations marked "expect_error", the exception transformers raised (the script
fails if it raises nothing). Nothing here is random; the seed only pins any library that might sample.

Usage: $VENV/bin/python scripts/reference/make_chat_goldens.py [--tokenizer DIR] [--check]
  --check  compare with the committed expected.json instead of writing it (exit 1 on a difference)
"""
import argparse
import hashlib
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "scripts" / "reference" / "templates"
FIXTURES = ROOT / "tests" / "fixtures" / "chat"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", default=str(ROOT / "tests" / "fixtures" / "tokenizer" / "qwen3"))
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()

    random.seed(0)
    import transformers
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    templates = {kind: (TEMPLATES / f"qwen3vl_{kind}.jinja").read_text(encoding="utf-8")
                 for kind in ("instruct", "thinking")}
    conversations = json.loads((FIXTURES / "conversations.json").read_text(encoding="utf-8"))

    names = set()
    cases = []
    for conv in conversations:
        name = conv["name"]
        if name in names:
            raise SystemExit(f"duplicate conversation name {name!r}")
        names.add(name)
        kwargs = dict(
            tools=conv.get("tools"),
            tokenize=False,
            add_generation_prompt=conv["add_generation_prompt"],
            add_vision_id=conv["add_vision_id"],
            chat_template=templates[conv["template"]],
            **conv.get("template_kwargs", {}),
        )
        case = {"name": name}
        if "expect_error" in conv:
            try:
                text = tokenizer.apply_chat_template(conv["messages"], **kwargs)
            except Exception as exc:  # noqa: BLE001 - any failure is what we record
                case["error"] = f"{type(exc).__name__}: {exc}"
            else:
                raise SystemExit(f"{name}: expected transformers to raise, it rendered {text!r}")
        else:
            case["text"] = tokenizer.apply_chat_template(conv["messages"], **kwargs)
        cases.append(case)

    expected = {
        "generator": "scripts/reference/make_chat_goldens.py",
        "transformers_version": transformers.__version__,
        "template_sha256": {kind: hashlib.sha256(text.encode("utf-8")).hexdigest()
                            for kind, text in templates.items()},
        "cases": cases,
    }
    out_text = json.dumps(expected, ensure_ascii=False, indent=1) + "\n"
    out_path = FIXTURES / "expected.json"
    if args.check:
        old = json.loads(out_path.read_text(encoding="utf-8"))
        if old["cases"] != cases or old["template_sha256"] != expected["template_sha256"]:
            print("expected.json is out of date", file=sys.stderr)
            return 1
        print(f"expected.json up to date ({len(cases)} cases)")
        return 0
    out_path.write_text(out_text, encoding="utf-8")
    print(f"wrote {out_path.relative_to(ROOT)}: {len(cases)} cases "
          f"({sum('error' in c for c in cases)} error cases), transformers {transformers.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
