"""Real sample inputs for any variant: digits images, digit rows as sequences, or sentences.

* 4-D float inputs (B, C, H, W): scikit-learn's 8x8 `load_digits` images, standardised,
  resized with bilinear interpolation to (H, W) and repeated over C channels.
* 3-D float inputs (B, T, F): the same images resized to T x F (rows become time steps).
* 2-D float inputs (B, F): the image resized to 1 x F.
* Sentence embedders (`metadata["task"] == "embedding"` with a `tokenizer_path`): the
  bundled English sentences, tokenised and padded/truncated to the input's length.
* Anything else: seeded random tensors, and the returned `Samples.synthetic` is True.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any

from workbench.core.model.variant import InputSpec, Variant

log = logging.getLogger(__name__)

SENTENCES: tuple[str, ...] = (
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar on the street corner.",
    "The central bank raised interest rates by a quarter of a percentage point.",
    "She spent the afternoon reading a novel in the park.",
    "How do I reset my password if I no longer have access to my email?",
    "The recipe calls for two cups of flour and a pinch of salt.",
    "Researchers discovered a new species of frog in the rainforest.",
    "The train to Edinburgh was delayed by forty minutes this morning.",
    "Children were building sandcastles on the beach at low tide.",
    "Quantum computers use qubits that can exist in superposition.",
    "Please remember to water the plants while I am away on holiday.",
    "The football match ended in a draw after extra time.",
    "Our quarterly revenue grew by twelve percent compared with last year.",
    "A gentle rain fell over the quiet village all night long.",
    "The museum is closed on Mondays and public holidays.",
    "He fixed the leaking tap with a new washer and a wrench.",
    "Neural networks can be compressed by pruning and quantization.",
    "The orchestra performed Beethoven's ninth symphony to a packed hall.",
    "My laptop battery drains very quickly when I watch videos.",
    "Volcanic ash closed several airports across northern Europe.",
    "The cat slept on the windowsill in the warm afternoon sun.",
    "Which hiking trail offers the best view of the lake?",
    "The committee postponed its decision until the next meeting.",
    "Fresh tomatoes, basil and olive oil make a simple summer salad.",
    "The spacecraft entered orbit around Mars after a seven-month journey.",
    "Traffic was heavy on the motorway because of roadworks near the bridge.",
    "I would like to book a table for four people at eight o'clock.",
    "The old lighthouse has guided ships along this coast for two centuries.",
    "Vaccines train the immune system to recognise a specific pathogen.",
    "The startup released an open-source library for data visualisation.",
    "Snow covered the mountain peaks long before winter officially began.",
    "A small bakery on the corner sells the best croissants in town.",
)


class Samples(list[tuple[Any, ...]]):
    """A list of batch-1 input tuples, with where they came from.

    `source` is "digits", "sentences" or "random"; `synthetic` is True for random data,
    and `warning` then says why.
    """

    def __init__(self, items: Sequence[tuple[Any, ...]] = (), source: str = "random",
                 warning: str | None = None) -> None:
        super().__init__(items)
        self.source = source
        self.warning = warning

    @property
    def synthetic(self) -> bool:
        return self.source == "random"


def sample_inputs(variant: Variant, n: int, seed: int = 0) -> Samples:
    """`n` real batch-1 input tuples for `variant`, each matching `variant.inputs`."""
    import torch

    if n < 1:
        raise ValueError("n must be at least 1")
    specs = variant.inputs
    if not specs:
        raise ValueError(f"{variant.name} declares no inputs, so no samples can be made.")
    meta = variant.metadata or {}
    if meta.get("task") == "embedding" and meta.get("tokenizer_path"):
        try:
            return _sentence_samples(specs, str(meta["tokenizer_path"]), n, seed)
        except Exception as exc:  # a missing tokenizer falls back to random tokens
            log.debug("tokenizer %s unavailable", meta["tokenizer_path"], exc_info=True)
            reason = f"the tokenizer could not be loaded ({type(exc).__name__}: {exc})"
            return _random_samples(specs, n, seed, reason)
    if all(not s.dtype.startswith(("int", "uint", "bool")) for s in specs) and all(
            len(s.shape) in (2, 3, 4) for s in specs):
        images = _digits(n, seed)
        items = []
        for k in range(n):
            img = images[k]
            items.append(tuple(_image_as(spec, img).to(_dtype(torch, spec.dtype))
                               for spec in specs))
        return Samples(items, "digits")
    ranks = ", ".join(f"{s.name} {s.dtype}{list(s.shape)}" for s in specs)
    return _random_samples(specs, n, seed, f"no real data fits the inputs ({ranks})")


def stack_inputs(samples: Sequence[tuple[Any, ...]]) -> tuple[Any, ...]:
    """Concatenate batch-1 tuples into one batch tuple (torch tensors)."""
    import torch

    if not samples:
        raise ValueError("no samples to stack")
    return tuple(torch.cat([torch.as_tensor(s[i]) for s in samples], dim=0)
                 for i in range(len(samples[0])))


def _dtype(torch: Any, name: str) -> Any:
    return getattr(torch, name, torch.float32)


@functools.lru_cache(maxsize=1)
def _digits_tensor() -> Any:
    """All 1,797 digits as a (N, 1, 8, 8) float32 tensor, standardised to mean 0, std 1."""
    import torch

    from workbench.core.model.digits import digit_images

    images = torch.tensor(digit_images(), dtype=torch.float32).unsqueeze(1)
    return (images - images.mean()) / images.std()


def _digits(n: int, seed: int) -> Any:
    """`n` digits (1, 8, 8) in a seeded order (repeating when n exceeds the dataset)."""
    import torch

    data = _digits_tensor()
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(data.shape[0], generator=gen)
    idx = order[torch.arange(n) % data.shape[0]]
    return data[idx]


def _image_as(spec: InputSpec, img: Any) -> Any:
    """One (1, 8, 8) digit shaped as a batch-1 tensor for `spec` (2-D, 3-D or 4-D)."""
    import torch.nn.functional as F

    shape = spec.shape
    if len(shape) == 4:
        _, c, h, w = shape
        out = F.interpolate(img[None], size=(h, w), mode="bilinear", align_corners=False)
        return out.repeat(1, c, 1, 1)
    if len(shape) == 3:
        _, t, f = shape
        return F.interpolate(img[None], size=(t, f), mode="bilinear", align_corners=False)[0]
    f = shape[1]
    return F.interpolate(img[None], size=(1, f), mode="bilinear", align_corners=False)[0, 0]


@functools.lru_cache(maxsize=2)
def _tokenizer(path: str) -> Any:
    import os

    from workbench.core.model.torchvision_shim import prepare_torchvision

    prepare_torchvision()  # transformers imports torchvision when it is installed
    from transformers import AutoTokenizer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return AutoTokenizer.from_pretrained(path, local_files_only=True)


def _sentence_samples(specs: Sequence[InputSpec], path: str, n: int, seed: int) -> Samples:
    import torch

    seq = specs[0].shape[-1] if len(specs[0].shape) >= 2 else 128
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(SENTENCES), generator=gen).tolist()
    texts = [SENTENCES[order[k % len(SENTENCES)]] for k in range(n)]
    # Past the bundled list, pair sentences so that every sample stays distinct.
    texts = [t if k < len(SENTENCES) else f"{t} {SENTENCES[order[(k * 7 + 3) % len(order)]]}"
             for k, t in enumerate(texts)]
    enc = _tokenizer(path)(texts, padding="max_length", truncation=True, max_length=seq,
                           return_tensors="pt")
    fallback = ["input_ids", "attention_mask", "token_type_ids"]
    columns = []
    for i, spec in enumerate(specs):
        key = spec.name if spec.name in enc else (fallback[i] if i < len(fallback) else None)
        if key is None or key not in enc:
            raise ValueError(f"the tokenizer gives no input for {spec.name!r}")
        columns.append(enc[key].to(_dtype(torch, spec.dtype)))
    return Samples([tuple(c[k:k + 1] for c in columns) for k in range(n)], "sentences")


def _random_samples(specs: Sequence[InputSpec], n: int, seed: int, reason: str) -> Samples:
    items = [tuple(spec.example(seed * 10_007 + k * 31 + i, batch=1)
                   for i, spec in enumerate(specs)) for k in range(n)]
    return Samples(items, "random", f"Random inputs were used: {reason}.")
