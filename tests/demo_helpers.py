"""What the demo smoke tests share: the PNG check and the fields every race task returns."""

from pathlib import Path

# the fields of demos/_common.py's train_variant protocol, with their types
COMMON = {"metric": str, "value": float, "higher_is_better": bool, "params": int,
          "seconds_per_epoch": float, "loss": list}


def is_png(path):
    return Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
