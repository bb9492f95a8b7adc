"""PyTorch adapter for ringcast's experience stream: an ``IterableDataset`` over ``/experience``.

Needs torch and numpy (the columns are built with numpy and handed to torch without a copy);
importing this module without them raises ImportError saying so. The stream is live and
unbounded, so use it with ``DataLoader(dataset, batch_size=None)`` (the server already batches)
or ``per_record=True`` with ``batch_size=k`` to re-batch single samples.

With ``num_workers=N`` each DataLoader worker opens its own consumer and keeps the records whose
sequence number falls in its shard (``seq % N == worker id``): together the workers see every
record once, but each receives the whole filtered stream, so N workers cost N times the bytes.

    from ringcast_torch import ExperienceDataset
    ds = ExperienceDataset("ws://127.0.0.1:8080/experience", token=TOKEN, batch_size=256, min_turn=10)
    for states, actions, rewards, dones, masks in ds:   # one server batch each, as tensors
        ...
"""

from ringcast_client import ExperienceConsumer

try:
    import numpy as np
    import torch
    from torch.utils.data import IterableDataset
except ImportError as _e:  # torch is optional for ringcast_client, required here
    raise ImportError("ringcast_torch needs PyTorch and numpy (pip install torch numpy); ringcast_client.ExperienceConsumer works without them") from _e


def unpack_masks(records, mask_len=None):
    """The records' legal-action bitsets as one bool array ``[n, mask_len]`` (action i = bit
    ``i & 7`` of byte ``i >> 3``), unpacked by numpy rather than bit by bit in Python."""
    if mask_len is None:
        mask_len = max(r.mask_len for r in records)
    packed = np.zeros((len(records), (mask_len + 7) >> 3), dtype=np.uint8)
    for i, r in enumerate(records):
        m = np.frombuffer(r.legal_mask, dtype=np.uint8)[: packed.shape[1]]
        packed[i, : m.shape[0]] = m
    return np.unpackbits(packed, axis=1, count=mask_len, bitorder="little").astype(bool)


def batch_arrays(records):
    """Records as numpy columns: states ``[n, *state_shape]`` float32, actions int64, rewards
    float32, dones bool, legal masks bool ``[n, mask_len]``. Every record must have the same state shape."""
    shape = tuple(records[0].state_shape)
    for r in records:
        if tuple(r.state_shape) != shape:
            raise ValueError("records of one batch have different state shapes: %r and %r" % (shape, tuple(r.state_shape)))
    n = len(records)
    states = np.stack([np.asarray(r.state, dtype=np.float32).reshape(shape) for r in records])
    actions = np.fromiter((r.action for r in records), dtype=np.int64, count=n)
    rewards = np.fromiter((r.reward for r in records), dtype=np.float32, count=n)
    dones = np.fromiter((bool(r.done) for r in records), dtype=bool, count=n)
    return states, actions, rewards, dones, unpack_masks(records)


class ExperienceDataset(IterableDataset):
    """Yields one tensor tuple per server batch: states ``[n, *state_shape]`` float32, actions
    int64, rewards float32, dones bool, legal masks bool ``[n, mask_len]``. ``per_record=True``
    yields single records instead (for DataLoader re-batching). Other keyword arguments are
    ExperienceConsumer's (token, filters, batch_size, start). The consumer is closed when the
    iteration ends, is abandoned (the generator is closed) or fails."""

    def __init__(self, url, per_record=False, consumer_factory=ExperienceConsumer, **consumer_args):
        super().__init__()
        self.url = url
        self.per_record = per_record
        self.consumer_factory = consumer_factory
        self.consumer_args = consumer_args

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        shard, shards = (info.id, info.num_workers) if info is not None else (0, 1)
        consumer = self.consumer_factory(self.url, **self.consumer_args)
        try:
            for batch in consumer:
                records = batch.records if shards <= 1 else [r for r in batch.records if r.seq % shards == shard]
                if not records:
                    continue
                cols = tuple(torch.from_numpy(a) for a in batch_arrays(records))
                if self.per_record:
                    for i in range(len(records)):
                        yield tuple(c[i] for c in cols)
                else:
                    yield cols
        finally:
            consumer.close()
