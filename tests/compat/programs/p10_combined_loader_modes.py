"""CombinedLoader used directly, in every mode, as scripts and custom loops do."""

import json

import torch
from lightning.pytorch.utilities.combined_loader import CombinedLoader
from torch.utils.data import DataLoader

if __name__ == "__main__":
    loaders = {"a": DataLoader(torch.arange(6), batch_size=4), "b": DataLoader(torch.arange(15), batch_size=5)}
    seen = {}
    for mode in ("max_size_cycle", "max_size", "min_size", "sequential"):
        combined = CombinedLoader(loaders, mode)
        iter(combined)
        items = []
        for batch, batch_idx, dataloader_idx in combined:
            flat = {k: (None if v is None else v.tolist()) for k, v in batch.items()} if isinstance(batch, dict) \
                else batch.tolist()
            items.append([flat, batch_idx, dataloader_idx])
        seen[mode] = {"len": len(combined), "items": items}
    limited = CombinedLoader(loaders, "sequential")
    limited.limits = [1, 2]
    iter(limited)
    seen["sequential_limited"] = {"len": len(limited), "items": [[b.tolist(), i, d] for b, i, d in limited]}
    with open("combined.json", "w") as f:
        json.dump(seen, f)
    print(json.dumps(seen))
