"""--shard K/N: a deterministic, balanced share of a list of try-ons, so that N processes (a Kubernetes
Indexed Job, a Slurm array, xargs -P) together do every item exactly once.

Shard K of N (1 <= K <= N) is the K-th of N contiguous blocks of the list, their sizes differing by at most
one. Contiguous, so that a shard of people x garments meets as few people as possible (each is analysed
once per shard); the list order is the input's, so every process computes the same blocks."""
import re

from errors import UsageError

SHARD_PATTERN = re.compile(r'^\s*(\d+)\s*/\s*(\d+)\s*$')


def parse_shard(text):
    """'K/N' -> (K, N), 1 <= K <= N; a one-line UsageError otherwise."""
    match = SHARD_PATTERN.match(text or '')
    if not match:
        raise UsageError('--shard expects K/N (shard K of N, counted from 1), got %r' % text)
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise UsageError('--shard %s: K must be between 1 and N (N >= 1)' % text)
    return index, count


def shard_bounds(total, index, count):
    """[start, stop) of shard `index` of `count` over `total` items."""
    return (index - 1) * total // count, index * total // count


def take_shard(items, shard):
    """The items of shard (K, N), in their order; shard None -> all of them."""
    if shard is None:
        return list(items)
    items = list(items)
    start, stop = shard_bounds(len(items), *shard)
    return items[start:stop]
