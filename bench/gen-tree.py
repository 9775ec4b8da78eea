#!/usr/bin/env python3
"""Generates a deterministic mixed file tree for bench/layer-export.sh.

usage: gen-tree.py OUT_DIR TOTAL_MB SEED

Roughly by bytes: 15% many small text files, 30% medium source-like files, 30% larger
random-ish binaries (mixed entropy, like executables), 25% already-compressed data
(deflated text, like jars, and pure noise, like images). Same arguments, same bytes.
"""

import os
import random
import sys
import zlib

WORDS_SEED_TEXT = (
    "layer image build kiln tar digest manifest config registry push pull blob "
    "the of and to in is that for it as with was on be by this are from or an "
    "function return value error string number request response server client "
)


def corpus(rng, size, make_line):
    parts, n = [], 0
    while n < size:
        line = make_line(rng)
        parts.append(line)
        n += len(line)
    return "".join(parts).encode()


def text_line(rng, vocab):
    return " ".join(rng.choices(vocab, k=rng.randint(4, 14))) + "\n"


def code_line(rng, idents):
    a, b, c = rng.choices(idents, k=3)
    n = rng.randint(0, 99999)
    return rng.choice(
        [
            f"    let {a} = {b}.{c}({n});\n",
            f"    if {a} > {n} {{ return Err({b}::{c}); }}\n",
            f"fn {a}_{c}({b}: u64) -> Result<(), Error> {{\n",
            f"    // {a} {b} {c} keeps {n} entries\n",
            "    }\n",
            f"    {a}.push({b}[{n % 64}]);\n",
        ]
    )


def binaryish(rng, size):
    out = bytearray()
    nibbles = bytes.maketrans(bytes(range(256)), bytes((i % 16) * 7 for i in range(256)))
    while len(out) < size:
        kind = rng.random()
        page = rng.randbytes(4096)
        if kind < 0.4:
            out += page
        elif kind < 0.75:
            out += page.translate(nibbles)
        else:
            out += (rng.randbytes(rng.randint(8, 64)) * 4096)[:4096]
    return bytes(out[:size])


def main():
    out, total_mb, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    total = total_mb * 1_000_000
    vocab = WORDS_SEED_TEXT.split() + [
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(3, 10)))
        for _ in range(3000)
    ]
    idents = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz_", k=rng.randint(2, 12))) for _ in range(2000)]
    text = corpus(rng, 4_000_000, lambda r: text_line(r, vocab))
    code = corpus(rng, 4_000_000, lambda r: code_line(r, idents))
    tmp = out + ".partial"
    os.makedirs(tmp, exist_ok=False)

    def write(rel, data):
        path = os.path.join(tmp, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)

    def slice_of(src, size):
        start = rng.randrange(0, len(src) - size)
        return src[start : start + size]

    budget = {"small": 0.15, "source": 0.30, "binary": 0.30, "compressed": 0.25}
    written = 0
    i = 0
    while written < total * budget["small"]:
        size = rng.randint(200, 4000)
        write(f"docs/d{i // 100:03}/note-{i}.txt", f"note {i}\n".encode() + slice_of(text, size))
        written += size
        i += 1
    limit = written + total * budget["source"]
    while written < limit:
        size = rng.randint(10_000, 120_000)
        write(f"src/m{i // 50:03}/file_{i}.rs", f"// file {i}\n".encode() + slice_of(code, size))
        written += size
        i += 1
    limit = written + total * budget["binary"]
    while written < limit:
        size = min(rng.randint(4, 16) * 1_000_000, int(limit - written) + 1)
        write(f"bin/tool-{i}", binaryish(rng, size))
        os.chmod(os.path.join(tmp, f"bin/tool-{i}"), 0o755)
        written += size
        i += 1
    limit = written + total * budget["compressed"]
    while written < limit:
        if i % 2:
            raw = b"".join(slice_of(text, 1_000_000) for _ in range(rng.randint(8, 30)))
            data = zlib.compress(raw, 6)
            write(f"lib/archive-{i}.jar", data)
        else:
            data = rng.randbytes(rng.randint(1, 8) * 1_000_000)
            write(f"assets/image-{i}.png", data)
        written += len(data)
        i += 1
    os.rename(tmp, out)
    print(f"generated {out}: {i} files, {written / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
