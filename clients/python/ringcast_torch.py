"""PyTorch adapter for ringcast's experience stream: an ``IterableDataset`` over ``/experience``.

Needs torch (and numpy, which torch uses to wrap the state buffers without a copy); importing
this module without torch raises ImportError saying so. The stream is live and unbounded, so
use it with ``DataLoader(dataset, batch_size=None)`` (the server already batches) or
``batch_size=k`` to re-batch single samples, and ``num_workers=0``: every worker would open its
own consumer and see the same records.

    from ringcast_torch import ExperienceDataset
    ds = ExperienceDataset("ws://127.0.0.1:8080/experience", token=TOKEN, batch_size=256, min_turn=10)
    for states, actions, rewards, dones, masks in ds:   # one server batch each, as tensors
        ...
"""

from ringcast_client import ExperienceConsumer

try:
    import torch
    from torch.utils.data import IterableDataset
except ImportError as _e:  # torch is optional for ringcast_client, required here
    raise ImportError("ringcast_torch needs PyTorch (pip install torch); ringcast_client.ExperienceConsumer works without it") from _e


def unpack_mask(mask_bytes, mask_len):
    """Bitset bytes → list of 0/1 of length mask_len (action i = bit i & 7 of byte i >> 3)."""
    out = bytearray(mask_len)
    for i in range(mask_len):
        if mask_bytes[i >> 3] & (1 << (i & 7)):
            out[i] = 1
    return out


def batch_columns(batch):
    """One ExperienceBatch as columns: (states, actions, rewards, dones, masks) as Python/numpy values."""
    recs = batch.records
    return (
        [r.state for r in recs],
        [r.action for r in recs],
        [r.reward for r in recs],
        [bool(r.done) for r in recs],
        [unpack_mask(r.legal_mask, r.mask_len) for r in recs],
    )


class ExperienceDataset(IterableDataset):
    """Yields one tensor tuple per server batch: states ``[n, *state_shape]`` float32, actions
    int64, rewards float32, dones bool, legal masks bool ``[n, mask_len]``. ``per_record=True``
    yields single records instead (for DataLoader re-batching). Other keyword arguments are
    ExperienceConsumer's (token, filters, batch_size, start)."""

    def __init__(self, url, per_record=False, **consumer_args):
        super().__init__()
        self.url = url
        self.per_record = per_record
        self.consumer_args = consumer_args

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        if info is not None and info.num_workers > 1:
            raise RuntimeError("ExperienceDataset: use num_workers=0 or 1 (each worker would consume the same live stream)")
        consumer = ExperienceConsumer(self.url, **self.consumer_args)
        try:
            for batch in consumer:
                if not batch.records:
                    continue
                states, actions, rewards, dones, masks = batch_columns(batch)
                st = torch.stack([torch.as_tensor(s, dtype=torch.float32).reshape(batch.records[0].state_shape) for s in states])
                cols = (st, torch.tensor(actions, dtype=torch.int64), torch.tensor(rewards, dtype=torch.float32),
                        torch.tensor(dones, dtype=torch.bool), torch.tensor([list(m) for m in masks], dtype=torch.bool))
                if self.per_record:
                    for i in range(len(actions)):
                        yield tuple(c[i] for c in cols)
                else:
                    yield cols
        finally:
            consumer.close()
