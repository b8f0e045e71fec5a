"""Convert the Bach chorales of music21's corpus into ``minigru/data/chorales.npz``.

The chorales demo (``minigru demo chorales``) reads that file; this script made it, and reruns
it the same way (the result depends only on the music21 version)::

    pip install "minigru[chorales-data]"          # music21, for this script only
    python tools/make_chorales.py [--out minigru/data/chorales.npz]

What it does, chorale by chorale, over ``music21.corpus.chorales.Iterator()`` (Riemenschneider's
371 four-part chorales as music21 ships them):

1. the four voices: all parts when there are exactly four, else the parts whose names contain
   Soprano, Alto, Tenor and Bass (the cantata settings add trumpets, timpani, oboes); a chorale
   where four voices cannot be found is left out;
2. quantisation: one step per eighth note (``STEP = 0.5`` quarter lengths); step ``t`` holds the
   keys sounding at time ``t * STEP``, so notes shorter than an eighth between two grid points
   (sixteenth passing notes) fall out, and a held note stays on for every step it lasts. The
   standard JSB Chorales data set (Boulanger-Lewandowski et al. 2012) samples at quarter notes
   instead;
3. an 88-key piano roll, A0 (MIDI 21) to C8 (MIDI 108): a (T, 88) boolean array;
4. duplicates (the same roll twice in the collection) kept once;
5. a split by piece, 60% / 20% / 20% train / validation / test, drawn with a fixed seed.

The file holds ``rolls`` (every roll, one after the other, ``np.packbits`` along the keys:
(sum T, 11) uint8), ``lengths`` (P,), ``names`` (P,) such as ``"bwv269"``, ``split`` (P,) with 0
train, 1 validation, 2 test, and ``step_quarters`` and ``lowest_midi``.
"""

import argparse
import os
import sys

import numpy as np

STEP = 0.5                   # quarter lengths per step: eighth notes
LOWEST, KEYS = 21, 88        # A0 .. C8, the piano's keys
SPLIT = (0.6, 0.2, 0.2)
SEED = 0
VOICES = ("soprano", "alto", "tenor", "bass")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "minigru", "data",
                   "chorales.npz")


def four_voices(score):
    """The score's four voice parts, or None."""
    parts = list(score.parts)
    if len(parts) == 4:
        return parts
    chosen = []
    for voice in VOICES:
        named = [p for p in parts if voice in (p.partName or p.id or "").lower()]
        if not named:
            return None
        chosen.append(named[0])
    return chosen


def piano_roll(parts):
    """(T, 88) bool: key k is down at step t when a note of pitch LOWEST + k sounds at t * STEP."""
    end = max(float(p.highestTime) for p in parts)
    roll = np.zeros((int(np.ceil(end / STEP)), KEYS), bool)
    for part in parts:
        for n in part.flatten().notes:                 # notes and chords; rests are not notes
            start, stop = float(n.offset), float(n.offset + n.quarterLength)
            first, last = int(np.ceil(start / STEP)), int(np.ceil(stop / STEP))   # [first, last)
            for pitch in n.pitches:
                k = int(pitch.midi) - LOWEST
                if not 0 <= k < KEYS:
                    raise ValueError(f"pitch {pitch} is off the piano")
                roll[first:last, k] = True
    return roll


def convert(progress=True):
    from music21 import corpus

    rolls, names, seen = [], [], set()
    skipped = []
    for name in corpus.chorales.Iterator(returnType="filename"):
        parts = four_voices(corpus.parse(name))
        if parts is None:
            skipped.append(name)
            continue
        roll = piano_roll(parts)
        key = roll.tobytes()                           # the length follows from the size
        if key in seen:
            skipped.append(name + " (duplicate)")
            continue
        seen.add(key)
        rolls.append(roll)
        names.append(name.split("/")[-1])
        if progress:
            print(f"\r{len(rolls)} chorales", end="", file=sys.stderr, flush=True)
    if progress:
        print(f"\n{len(rolls)} kept, {len(skipped)} left out: {', '.join(skipped)}",
              file=sys.stderr)
    return rolls, names


def split_by_piece(n):
    """(n,) int8: 0 train, 1 validation, 2 test, in the proportions of SPLIT."""
    order = np.random.default_rng(SEED).permutation(n)
    split = np.zeros(n, np.int8)
    n_train, n_valid = round(SPLIT[0] * n), round(SPLIT[1] * n)
    split[order[n_train:n_train + n_valid]] = 1
    split[order[n_train + n_valid:]] = 2
    return split


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=OUT, help="the .npz to write (default: the package's)")
    args = parser.parse_args(argv)
    from minigru._io import atomic_write

    rolls, names = convert()
    arrays = {"rolls": np.packbits(np.concatenate(rolls), axis=1),
              "lengths": np.array([len(r) for r in rolls], np.int32),
              "names": np.array(names), "split": split_by_piece(len(rolls)),
              "step_quarters": np.float64(STEP), "lowest_midi": np.int32(LOWEST)}
    atomic_write(args.out, lambda f: np.savez_compressed(f, **arrays))
    counts = np.bincount(arrays["split"], minlength=3)
    print(f"{args.out}: {len(rolls)} chorales ({counts[0]} train, {counts[1]} validation, "
          f"{counts[2]} test), {arrays['lengths'].sum()} steps, "
          f"{os.path.getsize(args.out) / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
