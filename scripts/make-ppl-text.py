#!/usr/bin/env python3
"""Writes benchkit's perplexity evaluation text, deterministically and offline.

The text is English prose generated from a fixed grammar and word lists by a 64-bit LCG, so any
machine with python3 (stdlib only) regenerates it byte for byte: nothing is downloaded, nothing
is committed. It is not natural text, but it is varied enough for a language model to have a
meaningful, stable perplexity on it, which is all a parity check against llama-perplexity needs.

    scripts/make-ppl-text.py                      # the small test text (tests/perplexity.rs)
    scripts/make-ppl-text.py --words 30000 -o /tmp/ppl-long.txt
    scripts/make-ppl-text.py --sha256             # prints the sha256 of what it would write

tests/perplexity.rs carries a Rust port of this generator (`make_text`); with the same seed and
word count both produce identical bytes (the test checks the sha256 printed here).
"""
import argparse
import hashlib
import sys

NAMES = ["Ada", "Bram", "Clara", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas",
         "Kira", "Lars", "Mira", "Nils", "Olga", "Pavel", "Rosa", "Sven", "Tara", "Viktor"]
NOUNS = ["river", "village", "engineer", "bridge", "library", "garden", "machine", "letter",
         "harbor", "teacher", "market", "forest", "window", "lantern", "council", "orchard",
         "workshop", "storm", "winter", "island", "road", "mountain", "clock", "doctor", "ship",
         "school", "farmer", "painter", "kitchen", "station", "field", "castle", "merchant",
         "journey", "song", "report", "family", "museum", "valley", "train"]
ADJS = ["old", "quiet", "bright", "narrow", "heavy", "careful", "distant", "warm", "broken",
        "ancient", "busy", "small", "patient", "wooden", "famous", "cold", "gentle", "strange",
        "green", "empty", "crowded", "simple", "silver", "tired"]
VERBS = ["repaired", "visited", "described", "followed", "painted", "measured", "found",
         "opened", "carried", "watched", "built", "remembered", "crossed", "closed", "studied",
         "sold", "cleaned", "praised", "ignored", "discovered"]
PLACES = ["the northern coast", "the old town", "the capital", "a small harbor",
          "the mountain pass", "the river delta", "the eastern valley", "the city square",
          "the railway line", "the border villages"]
ADVS = ["slowly", "carefully", "quietly", "suddenly", "often", "rarely", "eagerly", "patiently",
        "happily", "finally"]
TIMES = ["In the morning", "Later that year", "Every spring", "After the storm", "Before dawn",
         "During the long winter", "On the first day", "Years afterwards", "By the evening",
         "At noon"]
TEMPLATES = [
    "{T}, {M} {V} the {A} {N} near {P}.",
    "The {A} {N} was {D} {V} by {M}.",
    "{M} and {M} {V} a {A} {N}, and the {N} {V} them {D}.",
    "Nobody in {P} {V} the {N} as {D} as {M} did.",
    "{T}, the {N} of {P} {V} the {A} {N}.",
    "When the {N} {V} the {N}, {M} {D} {V} the {A} {N}.",
    "{M} said that the {A} {N} had {V} the {N} {D}.",
    "It was a {A} {N}, and {M} {V} it {D}.",
    "The people of {P} {D} {V} the {N} and the {A} {N}.",
    "{T}, {M} wrote a letter about the {A} {N} that had {V} the {N}.",
]
SLOTS = {"N": NOUNS, "A": ADJS, "V": VERBS, "P": PLACES, "M": NAMES, "D": ADVS, "T": TIMES}

MASK = (1 << 64) - 1


class Lcg:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & MASK
        return self.state >> 33

    def pick(self, items):
        return items[self.next() % len(items)]


def make_text(words, seed=1):
    rng = Lcg(seed)
    paragraphs = []
    count = 0
    while count < words:
        sentences = []
        for _ in range(3 + rng.next() % 4):
            template = rng.pick(TEMPLATES)
            out = []
            i = 0
            while i < len(template):
                if template[i] == "{":
                    out.append(rng.pick(SLOTS[template[i + 1]]))
                    i += 3
                else:
                    out.append(template[i])
                    i += 1
            s = "".join(out)
            s = s[0].upper() + s[1:]
            sentences.append(s)
            count += len(s.split())
        paragraphs.append(" ".join(sentences))
    return "\n\n".join(paragraphs) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--words", type=int, default=1500, help="at least this many words (default 1500: the test text)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-o", "--output", help="file to write (default: stdout)")
    ap.add_argument("--sha256", action="store_true", help="print the sha256 of the text instead of the text")
    a = ap.parse_args()
    text = make_text(a.words, a.seed).encode("utf-8")
    if a.sha256:
        print(hashlib.sha256(text).hexdigest())
    elif a.output:
        with open(a.output, "wb") as f:
            f.write(text)
    else:
        sys.stdout.buffer.write(text)


if __name__ == "__main__":
    main()
