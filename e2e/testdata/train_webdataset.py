"""Reads kneepipe's WebDataset shards the way a training job does and
trains a tiny CNN for a few steps.

usage: /usr/bin/python3 train_webdataset.py SHARD_DIR EXPECTED_JSON

EXPECTED_JSON maps each sample key to {"label": int, "split": str}. The
shards are streamed with tarfile (no webdataset package) through a
DataLoader with 2 workers, each reading every other shard. Checks: every
expected sample arrives exactly once, in the shard of its split, with its
files adjacent; the PNG's SHA-256 is the key and the file_id's first half;
.cls is the expected label and agrees with the .json. Prints a JSON
summary on the last line; exits non-zero on the first failed check.
"""

import glob
import hashlib
import io
import json
import math
import os
import sys

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, get_worker_info


class Shards(IterableDataset):
    def __init__(self, paths):
        self.paths = paths

    def __iter__(self):
        info = get_worker_info()
        worker = 0 if info is None else info.id
        paths = self.paths if info is None else self.paths[info.id :: info.num_workers]
        for path in paths:
            split = os.path.basename(path).rsplit("-", 1)[0]
            for key, parts in samples(path):
                yield decode(key, parts, split, worker)


def samples(path):
    """Groups a streamed tar's members by key; a key that comes back
    after another started means the sample's files were not adjacent."""
    done = set()
    key, parts = None, {}
    with tarfile_open(path) as tf:
        for member in tf:
            k, ext = member.name.split(".", 1)
            if k != key:
                if key is not None:
                    yield key, parts
                if k in done:
                    raise SystemExit(f"{path}: files of sample {k} are not adjacent")
                done.add(k)
                key, parts = k, {}
            parts[ext] = tf.extractfile(member).read()
    if key is not None:
        yield key, parts


def tarfile_open(path):
    import tarfile

    return tarfile.open(path, mode="r|")  # a stream, as from object storage


def decode(key, parts, split, worker):
    if sorted(parts) != ["cls", "json", "png"]:
        raise SystemExit(f"sample {key}: files {sorted(parts)}")
    png = parts["png"]
    row = json.loads(parts["json"])
    img = Image.open(io.BytesIO(png)).convert("L").resize((32, 32))
    pixels = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0)[None]
    return {
        "key": key,
        "sha256": hashlib.sha256(png).hexdigest(),
        "cls": int(parts["cls"].decode()),
        "file_id": row["file_id"],
        "row_severity": int(row["severity"]),
        "relative_path": row["relative_path"],
        "shard_split": split,
        "worker": worker,
        "pixels": pixels,
    }


def main():
    shard_dir, expected_path = sys.argv[1], sys.argv[2]
    with open(expected_path) as f:
        expected = json.load(f)
    paths = sorted(glob.glob(os.path.join(shard_dir, "*.tar")))
    if len(paths) < 2:
        raise SystemExit(f"{shard_dir}: {len(paths)} shards; the test needs at least 2 for 2 workers")
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(4),
        torch.nn.Flatten(),
        torch.nn.Linear(64, 5),
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(Shards(paths), batch_size=8, num_workers=2)
    seen, workers, losses = {}, set(), []
    for batch in loader:
        for i, key in enumerate(batch["key"]):
            want = expected.get(key)
            if want is None:
                raise SystemExit(f"sample {key} was not expected")
            if key in seen:
                raise SystemExit(f"sample {key} arrived twice")
            seen[key] = True
            cls = int(batch["cls"][i])
            checks = {
                "sha256 of the PNG is the key": batch["sha256"][i] == key,
                "file_id starts with the PNG's sha256": batch["file_id"][i].split(":")[0] == key,
                ".cls is the expected label": cls == want["label"],
                ".json severity is the label": int(batch["row_severity"][i]) == cls,
                "shard is of the sample's split": batch["shard_split"][i] == want["split"],
            }
            for what, ok in checks.items():
                if not ok:
                    raise SystemExit(f"sample {key} ({batch['relative_path'][i]}): not {what}")
        workers.update(int(w) for w in batch["worker"])
        if len(losses) < 5:
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(batch["pixels"]), batch["cls"])
            loss.backward()
            opt.step()
            if not math.isfinite(loss.item()):
                raise SystemExit(f"loss {loss.item()}")
            losses.append(loss.item())
    missing = sorted(set(expected) - set(seen))
    if missing:
        raise SystemExit(f"{len(missing)} samples never arrived, e.g. {missing[:3]}")
    if workers != {0, 1}:
        raise SystemExit(f"samples came from workers {sorted(workers)}, want both")
    print(json.dumps({"samples": len(seen), "shards": len(paths), "workers": sorted(workers), "steps": len(losses), "losses": losses}))


if __name__ == "__main__":
    main()
