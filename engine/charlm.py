"""Character-level language models: the per-character loss, bits per character on held-out text, and sampling.

A model is ``engine.models.char_lm``: ids (N, T) -> Embedding -> LSTM or GRU -> FlattenTime -> Dense, logits
(N*T, V) for the character after each one, over the vocabulary ``engine.data.CHARS``. Its quality is the mean
cross-entropy per character in bits, ``bits_per_char = mean CE / ln 2``: a model that knew nothing would pay
log2(96) = 6.6 bits, one that knew only each character's frequency (the unigram entropy) about 4.3 on the
sonnets; every bit less is context the network learned to use.

Sampling runs the recurrent layer one character at a time, batch 1, carrying its state from one call to the
next (``forward(x, h0, c0)``, ``last_state``): the prime first, in one forward over all its characters, then
one step per new character, each drawn from softmax(logits / temperature).
"""

from __future__ import annotations

import math

import numpy as np

import layers as L
from layers.losses import SoftmaxCrossEntropy

from .data import CHARS, Dataset, batches, encode

LN2 = math.log(2.0)


class SequenceCrossEntropy(SoftmaxCrossEntropy):
    """``SoftmaxCrossEntropy`` over every time step: logits (N*T, C), one row per step as ``FlattenTime`` lays
    them out, and labels (N, T); the mean over all N*T characters. It also counts its correct predictions
    (``take_accuracy``), per character: ``fit``'s own count is per sample (here a window), so for this loss
    ``last_labels`` is None and fit counts nothing.

    Everything it does on the device also works inside a step captured as a CUDA graph (labels (N, T) on the
    device are viewed as (N*T,), the count always accumulates into a device counter that ``take_accuracy``
    zeroes); ``begin_step`` is the host's share of each replayed step (the characters it will count)."""

    def __init__(self):
        super().__init__()
        self._correct = None
        self._seen = 0
        self._rows = 0  # characters per step, as the last forward saw them

    def forward_device(self, logits, labels):
        """The mean cross-entropy per character as a (1,) device array; labels (N, T) on the host or the device."""
        dev = self.device_for(logits)
        if isinstance(labels, np.ndarray):
            labels = np.ascontiguousarray(labels).reshape(-1)
        elif len(labels.shape) != 1:
            labels = labels.reshape(labels.size)  # a view of the device buffer: nothing copied
        loss = super().forward_device(logits, labels)
        n = logits.shape[0]
        if self._correct is None or not dev.owns(self._correct):
            self._correct, self._seen = dev.zeros((1,), np.int32), 0
        predicted = self._buffer(dev, "predicted", (n,), np.int32)
        dev.kernels.argmax_rows(predicted, logits)
        dev.kernels.count_equal(self._correct, predicted, self._labels, accumulate=True)
        self._rows = n
        if not dev.capturing:  # a captured step counts its characters in begin_step, before each replay
            self._seen += n
        return loss

    def begin_step(self) -> None:
        """Before a replayed graph step: it will count ``N*T`` more characters, as its capture did."""
        self._seen += self._rows

    @property
    def last_labels(self):
        """None: ``fit`` counts correct predictions per sample (a window); this loss counts per character."""
        return None

    def take_accuracy(self) -> float:
        """The fraction of characters predicted right since the last call (one copy from the device), then
        starts counting again from zero; 0.0 when nothing was counted."""
        if self._correct is None or not self._seen:
            return 0.0
        correct, seen = int(self._dev.to_numpy(self._correct)[0]), self._seen
        self._dev.copy_from_host(self._correct, np.zeros(1, np.int32))
        self._seen = 0
        return correct / seen


def evaluate_text(model, dataset: Dataset, batch_size: int = 64) -> dict:
    """Mean cross-entropy per character (``loss``), ``bits_per_char`` (loss / ln 2) and per-character
    ``accuracy`` of ``model`` on ``dataset``'s windows, in eval mode (the model's mode is restored). Each
    window starts from a zero state, as in training."""
    loss_layer, total, count = SequenceCrossEntropy(), 0.0, 0
    was_training = model.training
    model.eval()
    try:
        for xb, yb in batches(dataset, batch_size, shuffle=False):
            total += loss_layer.forward(model.forward(xb), yb) * yb.size  # ids go in as they are, from the host
            count += yb.size
    finally:
        if was_training:
            model.train()
    loss = total / count
    return {"loss": loss, "bits_per_char": loss / LN2, "accuracy": loss_layer.take_accuracy()}


class HeldOutBitsPerChar:
    """A ``fit`` callback for a character model trained with ``SequenceCrossEntropy``: at each epoch's end it
    adds to the epoch's record the held-out ``test_loss``, ``bits_per_char`` and ``test_accuracy`` (per
    character), ``train_bits_per_char``, and sets ``train_accuracy`` to the loss's per-character count."""

    def __init__(self, model, loss_layer: SequenceCrossEntropy, heldout: Dataset, batch_size: int = 64):
        self.model, self.loss_layer, self.heldout, self.batch_size = model, loss_layer, heldout, batch_size

    def __call__(self, event: str, info: dict) -> None:
        """Fit's callback protocol: acts on "epoch" events only."""
        if event != "epoch":
            return
        result = evaluate_text(self.model, self.heldout, self.batch_size)
        info.update(train_accuracy=self.loss_layer.take_accuracy(), train_bits_per_char=info["loss"] / LN2,
                    test_loss=result["loss"], test_accuracy=result["accuracy"],
                    bits_per_char=result["bits_per_char"])


def char_lm_parts(model) -> tuple:
    """(embedding, recurrent layer, flatten, head) of a character language model, or one ValueError saying
    what the model is instead (``engine.models.char_lm``: Embedding, LSTM or GRU, FlattenTime, Dense over the
    vocabulary ``CHARS``)."""
    from .checkpoint import architecture, describe

    layers = getattr(model, "layers", None)
    kinds = [type(layer) for layer in layers] if layers else []
    ok = (len(kinds) == 4 and kinds[0] is L.Embedding and kinds[1] in (L.LSTM, L.GRU)
          and kinds[2] is L.FlattenTime and kinds[3] is L.Dense)
    if ok:
        emb, rnn, _, head = layers
        ok = (emb.num_embeddings == head.out_features == len(CHARS) and rnn.input_size == emb.embedding_dim
              and head.in_features == rnn.hidden_size)
    if not ok:
        what = describe(architecture(model)) if layers else type(model).__name__
        raise ValueError(f"not a character language model (Embedding over {len(CHARS)} characters, LSTM or GRU, "
                         f"FlattenTime, Dense): it is {what}")
    return tuple(layers)


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max())
    return e / e.sum()


def sample(model, length: int = 300, temperature: float = 0.8, prime: str = "", seed: int = 0) -> str:
    """``length`` new characters from a character language model, following ``prime`` (a newline when empty):
    each drawn from softmax(logits / ``temperature``) with a generator seeded by ``seed`` (same seed, same
    text on one device). Low temperatures (0.3) repeat the likeliest spellings; 1.0 samples the model as it
    is; higher ones invent more. The model runs in eval mode, batch 1; its mode is restored."""
    emb, rnn, flatten, head = char_lm_parts(model)
    if isinstance(length, bool) or int(length) != length or length < 0:
        raise ValueError(f"sample: length must be a non-negative integer, got {length!r}")
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"sample: temperature must be a positive number, got {temperature!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"sample: seed must be a non-negative integer, got {seed!r}")
    try:
        context = encode(prime or "\n")
    except ValueError as exc:
        raise ValueError(f"sample: the prime's {str(exc).split(': ', 1)[1]}") from None
    dev, k = rnn.device, rnn.device.kernels
    rng = np.random.default_rng(seed)
    is_lstm = isinstance(rnn, L.LSTM)
    state = [dev.empty((1, rnn.hidden_size)) for _ in range(2 if is_lstm else 1)]  # carried between calls
    was_training = model.training
    model.eval()
    out = []
    try:
        x, start = context[None, :], True  # the prime in one forward, then one character at a time
        for _ in range(length):
            y = rnn.forward(emb.forward(x), *(() if start else state))
            last = rnn.last_state if is_lstm else (rnn.last_state,)
            for keep, value in zip(state, last):  # a copy: the layer's buffers are rewritten by its next forward
                k.scale(keep, value, 1.0)
            logits = np.asarray(dev.to_numpy(head.forward(flatten.forward(y))), np.float64)[-1]
            chosen = int(rng.choice(len(CHARS), p=_softmax(logits / temperature)))
            out.append(chosen)
            x, start = np.array([[chosen]], np.int32), False
    finally:
        if was_training:
            model.train()
    return "".join(CHARS[i] for i in out)
