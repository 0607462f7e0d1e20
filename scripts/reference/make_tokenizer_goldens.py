#!/usr/bin/env python3
"""Golden data for the C++ Qwen3 tokenizer (src/tokenizer/), produced with HF `tokenizers`.

Run (offline, from the repository root; needs only the `tokenizers` package):

    $VENV/bin/python scripts/reference/make_tokenizer_goldens.py

Options: --tokenizer PATH (default tests/fixtures/tokenizer/qwen3/tokenizer.json, the vendored copy),
         --out DIR (default tests/fixtures/tokenizer).

Writes, deterministically (fixed seed, no network):
  goldens.jsonl             one JSON object per line:
                              cat          corpus category
                              input_b64    base64 of the raw input bytes (invalid UTF-8 is kept as is)
                              ids          HF ids for bytes.decode('utf-8', errors='replace')
                              decoded      HF decode(ids, skip_special_tokens=False)
                              decoded_skip HF decode(ids, skip_special_tokens=True)
  goldens_split_special.jsonl
                            for each corpus string holding a special token's text: {"index": its line in
                            goldens.jsonl, "ids": HF ids with encode_special_tokens=True (transformers'
                            split_special_tokens=True, llama.cpp's parse_special=false): special tokens are then
                            tokenized as plain text, non-special added tokens such as <think> still match}
  hf_unicode_classes.json   the code points HF's pre-tokenizer regex engine (Oniguruma) puts in \\p{L}, \\p{N}
                            and \\s, as inclusive [first, last] ranges, found by running HF Split pre-tokenizers
                            over every code point; the C++ test checks PCRE2 (plus our extra ranges) against it.

The C++ build and tests never run Python; they only read these committed files.
"""

import argparse
import base64
import json
import os
import random
import sys
import unicodedata

from tokenizers import Regex, Tokenizer, pre_tokenizers

SEED = 20240611
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# ----------------------------------------------------------------------------------------------------------------
# Building blocks

LATIN = [
    "Le cœur a ses raisons que la raison ne connaît point.",
    "Àéîõü ÇÑ — déjà vu, naïve café, façade, rôle, über, Ærøskøbing.",
    "Größenwahn und Straße: Fußgängerübergänge sind schön.",
    "¿Dónde está la biblioteca? ¡Mañana será otro día!",
    "Zażółć gęślą jaźń. Łódź, Kraków, Gdańsk.",
    "Tiếng Việt có dấu: Hà Nội, Sài Gòn, phở bò, người đẹp.",
    "Čeština: příliš žluťoučký kůň úpěl ďábelské ódy.",
    "Íslenska: Þórður og Ðóra fóru í ferðalag.",
    "Română: știință, țară, învățământ.",
    "Türkçe: İstanbul'da ılık ışık, ĞÜŞİÖÇ ğüşıöç.",
    "Português: ação, coração, não, pão, avô, avó.",
    "Dansk/Norsk: blåbærsyltetøy og rødgrøt med fløde.",
    "Ligatures ﬁ ﬂ ﬀ and the long s ſ, ǅ ǈ ǋ titlecase digraphs.",
]
CYRILLIC = [
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Привет, мир! Как дела? Всё хорошо.",
    "Українська: Їжак ґедзь, щастя, єдність.",
    "Беларуская: Ў ў, і, ё; Српски: Ђ ђ Ј ј Љ љ Њ њ Ћ ћ Џ џ.",
    "ЙОГУРТ и йогурт: й (NFC) против й (NFD).",
]
GREEK = [
    "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.",
    "Γειά σου Κόσμε! Ἀρχὴ σοφίας φόβος Κυρίου.",
    "ΆΈΉΊΌΎΏ άέήίόύώ ϊϋΐΰ ς σ Σ",
]
ARABIC = [
    "مرحبا بالعالم! كيف حالك اليوم؟",
    "اللُّغَةُ الْعَرَبِيَّةُ جَمِيلَةٌ جِدًّا",
    "الأرقام: ٠١٢٣٤٥٦٧٨٩ و ۰۱۲۳۴۵۶۷۸۹",
    "فارسی: سلام دنیا، حالت چطوره؟",
]
HEBREW = [
    "שלום עולם! מה שלומך?",
    "בְּרֵאשִׁית בָּרָא אֱלֹהִים אֵת הַשָּׁמַיִם",
    "עברית עם מספרים 123 ו־English mixed.",
]
DEVANAGARI = [
    "नमस्ते दुनिया! आप कैसे हैं?",
    "हिन्दी भाषा में क़ ख़ ग़ ज़ ड़ ढ़ फ़ य़",
    "संस्कृतम्: धर्मक्षेत्रे कुरुक्षेत्रे समवेता युयुत्सवः",
    "अंक: ०१२३४५६७८९",
]
THAI = [
    "สวัสดีชาวโลก ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ",
    "เป็นมนุษย์สุดประเสริฐเลิศคุณค่า กว่าบรรดาฝูงสัตว์เดรัจฉาน",
    "เลขไทย ๐๑๒๓๔๕๖๗๘๙",
]
CJK = [
    "你好，世界！今天天气很好。",
    "人工智能正在改变世界，大型语言模型可以理解图像和视频。",
    "繁體中文：這是一個測試句子，包含標點符號「」『』。",
    "数学公式：３＋４＝７，全角数字１２３４５。",
    "罕见字：𠀀𠀁𪚥𬺰𰻞（扩展区字符）",
]
KOREAN = [
    "안녕하세요, 세계! 한국어 토크나이저 테스트입니다.",
    "다람쥐 헌 쳇바퀴에 타고파.",
]
JAPANESE = [
    "こんにちは世界！カタカナとひらがなのテストです。",
    "ｶﾀｶﾅ（半角）とカタカナ（全角）、ガギグゲゴ、パピプペポ。",
    "東京都渋谷区で寿司を食べました。とても美味しかったです！",
    "いろはにほへと ちりぬるを わかよたれそ つねならむ",
]
EMOJI = [
    "😀😃😄😁😆😅😂🤣", "👍🏻👍🏼👍🏽👍🏾👍🏿", "👨‍👩‍👧‍👦 family", "🏳️‍🌈 🏴‍☠️ 🧑‍💻 👩🏽‍🚀",
    "🇺🇸🇬🇧🇯🇵🇨🇳🇩🇪🇫🇷", "🏴󠁧󠁢󠁳󠁣󠁴󠁿 Scotland", "1️⃣ 2️⃣ #️⃣ *️⃣", "❤️ ♥ ☺️ ✌🏽",
    "🥰🤯🥳🫠🫶🪿", "I ❤️ NY 🗽!", "emoji at end 🎉", "🎉start",
]
CODE = [
    'def fib(n: int) -> int:\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n',
    '#include <iostream>\nint main() {\n\tstd::cout << "Hello, world!" << std::endl;\n\treturn 0;\n}\n',
    'const add = (a, b) => a + b;\nconsole.log(`sum=${add(1, 2)}`);\n',
    'fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * x).collect();\n    println!("{:?}", v);\n}\n',
    "SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%smith%' ORDER BY id DESC;",
    '<html>\n  <body class="main">\n    <p>Hello &amp; welcome</p>\n  </body>\n</html>',
    '{"name": "qwen", "values": [1, 2.5, -3e10], "nested": {"ok": true, "none": null}}',
    'for f in *.txt; do\n  echo "$f" | sed -e \'s/foo/bar/g\' >> out.log 2>&1\ndone',
    '    x = [i**2 for i in range(100) if i % 3 == 0]  # comment\r\n',
    'if (x != y && z <= 0x1F) { y ^= ~z; } else { z <<= 2; }',
    'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("hi")\n}\n',
    '\t\t\treturn self.__dict__.get("__name__", None)\n\n\n',
]
CONTRACTIONS = [
    "DON'T", "don't", "Don'T", "we'Ll", "WE'LL", "we'll", "I'M", "i'm", "You'RE", "they'Ve", "She'D", "it'S",
    "'s", "'S", "'t", "'T", "'re", "'RE", "'Re", "'ve", "'VE", "'m", "'M", "'ll", "'LL", "'lL", "'d", "'D",
    "can'tt", "'sss", "''s", "' s", "'ſ", "it'ſ", "'\u212a", "'K", "x'\u0130", "O'Neil's", "rock 'n' roll",
    "’s curly apostrophe don’t", "'ll've'd", "'\n", "' ", "'12", "'é",
]
SPECIALS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
    "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>",
    "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>",
    "<think>", "</think>",
]
PARTIAL_SPECIALS = [
    "<|im_sta", "<|im_start", "im_start|>", "<|im_end", "<|image_pad", "<|image_pad|", "|image_pad|>", "<think",
    "think>", "</think", "<tool_call", "</tool_call", "<|", "|>", "<||>", "<|endoftext", "< |im_start|>",
    "<|IM_START|>", "<THINK>", "<<|im_start|>>", "<|<|im_end|>|>",
]
WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "Hello", "WORLD", "tokenizer", "Qwen3",
         "vision", "language", "model", "image", "video", "token", "é", "naïve", "x", "A", "of", "and", "to"]
SPACES = [" ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\r", "\r\n\r\n", " \n", "\n ", " \t\n ", "\u00a0",
          "\u3000", "\u2028", "\u2029", "\u0085", "\u180e", "\u200b", "\u2003", "\u202f", "\u205f", "\u000b",
          "\u000c", "\u001c", "\ufeff"]


def nfd(s):
    return unicodedata.normalize("NFD", s)


# ----------------------------------------------------------------------------------------------------------------
# Corpus


def build_corpus(rng, classes):
    """Returns a list of (category, bytes)."""
    corpus = []

    def add(cat, text):
        corpus.append((cat, text if isinstance(text, bytes) else text.encode("utf-8")))

    scripts = {"latin": LATIN, "cyrillic": CYRILLIC, "greek": GREEK, "arabic": ARABIC, "hebrew": HEBREW,
               "devanagari": DEVANAGARI, "thai": THAI, "cjk": CJK, "korean": KOREAN, "japanese": JAPANESE}
    for cat, lines in scripts.items():
        for line in lines:
            add(cat, line)
            add(cat + "_nfd", nfd(line))
        for _ in range(45):  # random re-combinations of words and sentences of the script
            words = " ".join(rng.choice(lines) for _ in range(rng.randint(1, 3))).split(" ")
            rng.shuffle(words)
            text = " ".join(words[: rng.randint(1, len(words))])
            if rng.random() < 0.3:
                text = nfd(text)
            if rng.random() < 0.3:
                text = text.upper() if rng.random() < 0.5 else text.lower()
            add(cat, text)
    for line in LATIN:  # explicit NFC/NFD pairs and mixed forms
        add("latin_nfd", nfd(line).upper())
        add("latin_mixed_forms", line[: len(line) // 2] + nfd(line[len(line) // 2:]))
    for e in EMOJI:
        add("emoji", e)
    for _ in range(80):
        add("emoji", "".join(rng.choice(EMOJI + WORDS + SPACES[:6]) for _ in range(rng.randint(1, 6))))
    for c in CODE:
        add("code", c)
    for _ in range(80):
        lines = "".join(rng.choice(CODE) for _ in range(2)).split("\n")
        add("code", "\n".join(lines[rng.randint(0, 2): rng.randint(3, max(3, len(lines)))]))
    for c in CONTRACTIONS:
        add("contractions", c)
        add("contractions", "word" + c + " next")
        add("contractions", " " + c.upper())
    for _ in range(60):
        add("contractions", " ".join(rng.choice(CONTRACTIONS) for _ in range(rng.randint(1, 5))))
    # Whitespace runs in every shape.
    for s in SPACES:
        add("whitespace", s)
        add("whitespace", "a" + s + "b")
        add("whitespace", s * 5 + "x")
        add("whitespace", "x" + s * 3)
        add("whitespace", "!" + s + "!")
    for _ in range(150):
        text = ""
        for _ in range(rng.randint(1, 8)):
            text += rng.choice(SPACES) * rng.randint(1, 4)
            if rng.random() < 0.6:
                text += rng.choice(WORDS + ["1", "22", ".", "!?", "é", "中文", "😀", "'s"])
        add("whitespace", text)
    add("whitespace", " " * 300)
    add("whitespace", "\n" * 100 + "end")
    add("whitespace", "a" + " \t" * 60 + "\r\n" * 20 + "b")
    # Numbers: \p{N} is one digit per piece.
    for _ in range(60):
        n = rng.randint(1, 60)
        add("digits", "".join(rng.choice("0123456789") for _ in range(n)))
    for s in ["3.14159", "1,000,000", "-42", "+1e-10", "0x7FFFFFFF", "2024-06-11T12:34:56Z", "(123, 456)",
              "<|box_start|>(10,20),(300,400)<|box_end|>", "１２３", "٣٤٥", "४५६", "²³¹ ½ ¾ Ⅻ ⅷ ① ⑳", "๓๔",
              "𝟘𝟙𝟚", "፩፪፫", "12abc34", "v1.2.3-rc4", "$9.99", "100%", "4K 8k 1080p"]:
        add("digits", s)
        add("digits", " " + s + " ")
    add("digits", "9" * 500)
    # Added tokens: whole, adjacent, inside text, partial, and followed by combining marks (matched before NFC).
    for s in SPECIALS:
        add("special_tokens", s)
        add("special_tokens", "text" + s + "text")
        add("special_tokens", " " + s + " \n")
    add("special_tokens", "".join(SPECIALS))
    add("special_tokens", "<|im_start|>user\nDescribe this image.<|vision_start|><|image_pad|><|image_pad|>"
                          "<|vision_end|><|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nA cat.<|im_end|>")
    add("special_tokens", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n"
                          "</tool_call><tool_response>sunny</tool_response>")
    add("special_tokens", "<|im_end|>\u0338 <think>\u0301 a<|endoftext|>\u0308b e<|im_start|>\u0301")
    add("special_tokens", "=\u0338 <\u0338 >\u0338 " + "<|im_end|>" + "\u0338")
    for s in PARTIAL_SPECIALS:
        add("special_partial", s)
        add("special_partial", "x" + s + "y")
    for _ in range(120):
        parts = [rng.choice(SPECIALS + PARTIAL_SPECIALS + WORDS + SPACES[:8] + ["\n", "é", "中", "😀", "<", ">", "|"])
                 for _ in range(rng.randint(2, 10))]
        add("special_mixed", "".join(parts))
    # Invalid UTF-8 (stored as raw bytes; HF sees bytes.decode('utf-8', 'replace')).
    invalid = [b"\xff", b"\xfe\xff", b"\x80", b"abc\x80def", b"\xc0\xaf", b"\xc1\xbf", b"\xe0\x80\xaf", b"\xed\xa0\x80",
               b"\xed\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xf8\x88\x80\x80\x80", b"\xe2\x82",
               b"\xe2\x82 ok", b"\xf0\x9f\x98", b"\xf0\x9f\x98\x80\x80", b"caf\xe9", b"\xc3", b"\xc3(", b"\xe2(\xa1",
               b"\xf0(\x8c\xbc", b"\xf0\x90(\xbc", b"<|im_start|>\xff<|im_end|>", b"\xe4\xbd\xa0\xe5\xa5",
               b"\x00", b"a\x00b", b"\xef\xbb\xbfBOM", b"\xef\xbf\xbd literal FFFD"]
    for b in invalid:
        add("invalid_utf8", b)
    for _ in range(120):
        good = rng.choice(LATIN + CJK + EMOJI + CODE).encode("utf-8")
        buf = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            pos = rng.randint(0, len(buf))
            if op < 0.4:
                buf[pos:pos] = bytes([rng.randint(0x80, 0xFF)])
            elif op < 0.7 and len(buf) > 1:
                del buf[min(pos, len(buf) - 1)]  # may cut a multi-byte character
            else:
                buf[pos:pos] = bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 4)))
        add("invalid_utf8", bytes(buf))
    # Code points where HF's Unicode 9.0 NFC differs from newer Unicode (see src/tokenizer/unicode_text.cpp).
    nfc9 = [0x07FD, 0x0898, 0x089C, 0x08CA, 0x08D3, 0x09FE, 0x0C3C, 0x0D3B, 0x0EBA, 0x1715, 0x1ABF, 0x1ACE, 0x1DF6,
            0x1DFA, 0xA82C, 0x10D24, 0x10EAB, 0x10EFD, 0x10F46, 0x10F82, 0x11070, 0x1133B, 0x1145E, 0x11839,
            0x1193D, 0x11943, 0x119E0, 0x11A34, 0x11A47, 0x11A99, 0x11D42, 0x11D44, 0x11D97, 0x11F41, 0x16FF0,
            0x1E08F, 0x1E130, 0x1E2AE, 0x1E2EC, 0x1E4EC]
    for cp in nfc9:
        c = chr(cp)
        for text in ["a" + c + "\u0301", "a\u0301" + c, "a" + c + "\u0334", "a\u0316" + c + "\u0301", "e" + c]:
            add("nfc_unicode9", text)
    add("nfc_unicode9", "\U00011935\U00011930 \U00011938 \u0915\u093c \u0928\u093c")
    add("nfc_unicode9", "a\u0301\u0316\u0334 \u1100\u1161\u11a8 \uac00\u11a8 A\u030a \u212b \u2126 \u0958")
    # Letters and numbers that only newer Unicode tables (HF's Oniguruma: Unicode 16) know.
    new_letters = [c for lo, hi in classes["L"] for c in range(lo, hi + 1) if c >= 0x105C0 and
                   unicodedata.category(chr(c)) == "Cn"]
    new_numbers = [c for lo, hi in classes["N"] for c in range(lo, hi + 1) if unicodedata.category(chr(c)) == "Cn"]
    for _ in range(30):
        letters = "".join(chr(rng.choice(new_letters)) for _ in range(rng.randint(1, 4)))
        numbers = "".join(chr(rng.choice(new_numbers)) for _ in range(rng.randint(1, 3)))
        add("unicode16_classes", " " + letters + numbers + "!" + letters + " x" + numbers)
    add("unicode16_classes", "\u1c89\u1c8a \ua7cb\ua7cc ab\u1c89")
    # Random strings over a mixed alphabet (fuzz).
    alphabet = (list("abcXYZ019 '!?.,;:-_()[]{}<>|/\\\"#$%&*+=~^`@") + list(" \t\n\r") +
                ["é", "e\u0301", "ß", "ſ", "İ", "中", "文", "ア", "한", "ж", "λ", "ع", "ש", "क", "\u094d", "ก", "\u0e31",
                 "😀", "👍", "\u200d", "🏽", "\ufe0f", "🇫", "🇷", "\u00a0", "\u3000", "\u2028", "\u0085", "\u180e",
                 "٣", "²", "Ⅻ", "\u0301", "\u0338", "\U00020000", "\ufffd", "\x00", "\x7f", "\u200b"] +
                SPECIALS[:4] + ["<|", "|>", "<think>", "'s", "'LL", "\r\n"])
    while len(corpus) < 2500:
        add("random_mix", "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))))
    return corpus


# ----------------------------------------------------------------------------------------------------------------
# HF's character classes


def ranges(codepoints):
    out = []
    for c in sorted(codepoints):
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return out


def hf_classes():
    cps = [c for c in range(1, 0x110000) if not 0xD800 <= c <= 0xDFFF]
    text = "".join(chr(c) for c in cps)
    out = {}
    for name, pattern in [("L", r"\p{L}"), ("N", r"\p{N}"), ("S", r"\s")]:
        gaps = pre_tokenizers.Split(Regex(pattern), "removed").pre_tokenize_str(text)
        unmatched = {ord(ch) for piece, _ in gaps for ch in piece}
        out[name] = ranges(c for c in cps if c not in unmatched)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", default=os.path.join(REPO, "tests", "fixtures", "tokenizer", "qwen3",
                                                            "tokenizer.json"))
    parser.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures", "tokenizer"))
    args = parser.parse_args()

    tok = Tokenizer.from_file(args.tokenizer)
    classes = hf_classes()
    corpus = build_corpus(random.Random(SEED), classes)

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "hf_unicode_classes.json"), "w", encoding="utf-8") as f:
        json.dump({"source": "HF tokenizers " + __import__("tokenizers").__version__ +
                             " Split(Regex(...)) over every code point 1..0x10FFFF except surrogates",
                   **classes}, f, separators=(",", ":"))
        f.write("\n")
    counts = {}
    with open(os.path.join(args.out, "goldens.jsonl"), "w", encoding="utf-8") as f:
        for cat, raw in corpus:
            text = raw.decode("utf-8", errors="replace")
            ids = tok.encode(text).ids
            record = {"cat": cat, "input_b64": base64.b64encode(raw).decode("ascii"), "ids": ids,
                      "decoded": tok.decode(ids, skip_special_tokens=False),
                      "decoded_skip": tok.decode(ids, skip_special_tokens=True)}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            counts[cat] = counts.get(cat, 0) + 1
    specials = [t.content for t in tok.get_added_tokens_decoder().values() if t.special]
    tok.encode_special_tokens = True
    with open(os.path.join(args.out, "goldens_split_special.jsonl"), "w", encoding="utf-8") as f:
        for index, (_, raw) in enumerate(corpus):
            text = raw.decode("utf-8", errors="replace")
            if any(s in text for s in specials):
                f.write(json.dumps({"index": index, "ids": tok.encode(text).ids}) + "\n")
    print(f"{len(corpus)} strings:", ", ".join(f"{k} {v}" for k, v in counts.items()), file=sys.stderr)


if __name__ == "__main__":
    main()
