"""Make ``minigru/data/kjv.txt``: the first books of the King James Bible, as plain text.

The char-lm demo (``minigru demo char-lm``) trains on that file; this script made it from
Debian's ``bible-kjv-text`` package (its ``bible`` program decompresses the text), and reruns
it the same way::

    apt-get install bible-kjv                 # brings bible-kjv-text
    python tools/make_kjv.py [--out minigru/data/kjv.txt]

The King James Version (1611) is in the public domain (its copyright expired long ago; the
Debian package says so in its copyright file). The file holds the books from Genesis on, as
many whole books as fit in ``LIMIT`` bytes, each chapter under a heading such as ``Genesis 1``,
each verse starting with its number, every line wrapped at 72 columns as in a printed book.
"""

import argparse
import os
import re
import subprocess
import sys
import textwrap

BOOKS = ("Genesis", "Exodus", "Leviticus", "Numbers", "Deuteronomy", "Joshua", "Judges", "Ruth",
         "1 Samuel", "2 Samuel")
LIMIT = 1_000_000            # bytes, the size the issue allows the shipped text
WIDTH = 72
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "minigru", "data", "kjv.txt")

HEADING = re.compile(r"^(\S.*) (\d+)$")          # "Genesis 1"
VERSE = re.compile(r"^\s*(\d+) (.*)$")            # "  1 In the beginning ..."


def book_text(book):
    """One book, formatted: chapter headings, numbered verses, lines of at most WIDTH."""
    raw = subprocess.run(["bible", "-l100000", f"{book.replace(' ', '')}1:1-999:999"],
                         capture_output=True, text=True, check=True).stdout
    out = []
    for line in raw.splitlines():
        if not line.strip():
            continue
        if (m := HEADING.match(line)) and not VERSE.match(line):
            out += ["", f"{book} {m[2]}", ""]
        elif m := VERSE.match(line):
            out += textwrap.wrap(f"{m[1]} {m[2].strip()}", WIDTH)
        else:
            raise ValueError(f"{book}: unexpected line {line!r}")
    return "\n".join(out).strip("\n") + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=OUT)
    args = parser.parse_args(argv)
    text, kept = "", []
    for book in BOOKS:
        more = book_text(book)
        if len((text + "\n" + more).encode()) > LIMIT:
            break
        text = text + ("\n" if text else "") + more
        kept.append(book)
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print(f"{args.out}: {', '.join(kept)}; {len(text.encode())} bytes, "
          f"{len(text.splitlines())} lines", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
