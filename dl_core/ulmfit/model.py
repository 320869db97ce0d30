"""Lesson 10 (ULMFiT): the AWD-LSTM encoder, its language model and its concat-pooling classifier.

Read top to bottom:
  AWDLSTMConfig      everything config.json holds for the encoder / LM: sizes, dropouts, the vocabulary
  EmbeddingDropout   drops whole words (rows of the embedding matrix) for a batch
  LockedDropout      variational dropout: one mask per sequence, shared over all time steps
  WeightDropLSTM     one LSTM layer whose hidden-to-hidden weights get DropConnect while training
  AWDLSTMEncoder     embedding -> n WeightDropLSTM layers with locked dropout between them
  LanguageModel      encoder -> decoder tied to the embedding; carries its state across BPTT batches
  TextClassifier     encoder over the whole text -> concat pooling [last, max, mean] -> BN/dropout/linear head

Merity et al. 2017 (AWD-LSTM) and Howard & Ruder 2018 (ULMFiT). Differences from the lesson, and why:
- The LSTMs always run in fp32 (autocast is switched off around them). Under bf16 autocast PyTorch runs
  cuDNN RNNs in fp16 without a gradient scaler, and LM gradients (a mean over ~20k tokens) underflow
  there. cuDNN still uses TF32 tensor cores, and the big matmul (the decoder) does run in bf16. At inference an
  LSTM whose weights were cast to bf16 (dl_core.fast: oneDNN's bf16 kernels on CPU) reads bf16 inputs.
- Texts are padded at the end, not the front, and pooling looks only at real positions, so a text's
  prediction does not depend on what it was batched with.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from dl_core.text import RULES_VERSION, Vocab


@dataclass
class AWDLSTMConfig:
    vocab: list[str] = field(default_factory=list)  # ids 0-3 are <pad> <bos> <eos> <unk>
    emb_dim: int = 256  # also the last LSTM layer's size: the decoder is tied to the embedding
    hidden_dim: int = 512
    n_layers: int = 3
    embed_p: float = 0.05  # probability of dropping a whole word type (embedding row) for a batch
    input_p: float = 0.25  # locked dropout on the embedded input
    weight_p: float = 0.2  # DropConnect on the hidden-to-hidden weights
    hidden_p: float = 0.15  # locked dropout between LSTM layers
    output_p: float = 0.1  # locked dropout before the decoder (LM only)
    rules_version: int = RULES_VERSION  # dl_core.text rules the vocabulary was made with
    backwards: bool = False  # the direction it was trained to read: a backward LM predicts each token from those after it


class EmbeddingDropout(nn.Module):
    """Zero whole word types for a batch (every occurrence of a dropped word), scaling the rest by 1/(1-p).
    Takes the embedding as an argument rather than owning it, so its weight is saved once, under the encoder."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, embedding: nn.Embedding, ids: torch.Tensor) -> torch.Tensor:
        emb = embedding(ids)  # (B, T) -> (B, T, E)
        if not self.training or self.p == 0:
            return emb
        keep = torch.empty(embedding.num_embeddings, device=ids.device).bernoulli_(1 - self.p) / (1 - self.p)  # (V,)
        return emb * keep[ids].unsqueeze(-1).to(emb.dtype)  # a mask per word type, looked up per position


class LockedDropout(nn.Module):
    """Variational dropout: x (B, T, D) times a mask (B, 1, D), the same at every time step."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        mask = x.new_empty(x.size(0), 1, x.size(2)).bernoulli_(1 - self.p) / (1 - self.p)  # (B, 1, D)
        return x * mask


LSTMState = tuple[torch.Tensor, torch.Tensor]  # (h, c), each (1, B, H)


class WeightDropLSTM(nn.Module):
    """One LSTM layer with DropConnect on its hidden-to-hidden weights (the same dropped weights at every
    time step of a batch), as AWD-LSTM. The parameter stays `lstm.weight_hh_l0`; training swaps in a
    dropped copy for one call through torch.func.functional_call, so cuDNN's fused kernel still runs and
    the gradient reaches the real weights. In eval the plain nn.LSTM runs (so it can be quantised)."""

    def __init__(self, input_dim: int, hidden_dim: int, weight_p: float):
        super().__init__()
        self.lstm = nn.LSTM(input_dim, hidden_dim, batch_first=True)
        self.weight_p = weight_p

    def forward(self, x: torch.Tensor, state: LSTMState | None = None) -> tuple[torch.Tensor, LSTMState]:
        # x (B, T, D_in) -> outputs (B, T, H), (h, c) each (1, B, H), in float32
        with torch.autocast(device_type=x.device.type, enabled=False):  # fp32: see the module docstring
            if not self.training or self.weight_p == 0:
                # The weights' own dtype: bf16 in dl_core.fast's bf16 copy (oneDNN's bf16 kernels, no autocast);
                # a quantised copy holds packed weights instead, and takes float32.
                weight = getattr(self.lstm, "weight_ih_l0", None)
                dtype = weight.dtype if isinstance(weight, torch.Tensor) else torch.float32
                if state is not None:
                    state = tuple(s.to(dtype) for s in state)
                outputs, (h, c) = self.lstm(x.to(dtype), state)
                return outputs.float(), (h.float(), c.float())
            x = x.float()
            dropped = F.dropout(self.lstm.weight_hh_l0, self.weight_p, training=True)  # (4H, H)
            with warnings.catch_warnings():
                # cuDNN notes that the swapped-in weight is not in its flat buffer; it copies it, as intended.
                warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous")
                return torch.func.functional_call(self.lstm, {"weight_hh_l0": dropped}, (x, state), strict=False)


class AWDLSTMEncoder(nn.Module):
    """ids (B, T) -> the last layer's outputs (B, T, E) and the new state of every layer."""

    def __init__(self, cfg: AWDLSTMConfig):
        super().__init__()
        self.embedding = nn.Embedding(len(cfg.vocab), cfg.emb_dim, padding_idx=Vocab.pad_id)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)  # AWD-LSTM's init; small logits at the tied decoder
        self.embedding.weight.data[Vocab.pad_id].zero_()
        self.embedding_dropout = EmbeddingDropout(cfg.embed_p)
        self.input_dropout = LockedDropout(cfg.input_p)
        sizes = [cfg.emb_dim] + [cfg.hidden_dim] * (cfg.n_layers - 1) + [cfg.emb_dim]
        self.layers = nn.ModuleList(WeightDropLSTM(sizes[i], sizes[i + 1], cfg.weight_p) for i in range(cfg.n_layers))
        self.hidden_dropouts = nn.ModuleList(LockedDropout(cfg.hidden_p) for _ in range(cfg.n_layers - 1))

    def forward(self, ids: torch.Tensor, state: list[LSTMState] | None = None):
        x = self.input_dropout(self.embedding_dropout(self.embedding, ids))  # (B, T, E)
        new_state = []
        for i, layer in enumerate(self.layers):
            x, layer_state = layer(x, state[i] if state is not None else None)  # (B, T, H_i)
            new_state.append(layer_state)
            if i < len(self.hidden_dropouts):
                x = self.hidden_dropouts[i](x)
        return x, new_state

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """[embedding], then one group per LSTM layer: the units of discriminative LRs and gradual unfreezing."""
        return [[self.embedding.weight]] + [list(layer.parameters()) for layer in self.layers]

    def set_dropouts(self, cfg: AWDLSTMConfig, embed_p: float, input_p: float, weight_p: float, hidden_p: float) -> None:
        """Change the dropout probabilities (a training choice: fine-tuning uses other ones than pretraining),
        in the modules and in `cfg`, the config that is saved."""
        self.embedding_dropout.p = cfg.embed_p = embed_p
        self.input_dropout.p = cfg.input_p = input_p
        cfg.weight_p, cfg.hidden_p = weight_p, hidden_p
        for layer in self.layers:
            layer.weight_p = weight_p
        for drop in self.hidden_dropouts:
            drop.p = hidden_p


class LanguageModel(nn.Module, PyTorchModelHubMixin, library_name="fastai-part2-demos", tags=["text-generation", "awd-lstm", "ulmfit"]):
    """AWD-LSTM language model: next-token logits (B, T, V) for ids (B, T).

    Between calls it keeps the LSTM state (detached), so consecutive BPTT batches read as one text;
    `reset()` forgets it (the ResetState callback does so at each epoch and before validation).
    """

    def __init__(self, config: AWDLSTMConfig | dict):
        super().__init__()
        cfg = self.config = config if isinstance(config, AWDLSTMConfig) else AWDLSTMConfig(**config)
        self.encoder = AWDLSTMEncoder(cfg)
        self.output_dropout = LockedDropout(cfg.output_p)
        self.decoder = nn.Linear(cfg.emb_dim, len(cfg.vocab))
        self.decoder.weight = self.encoder.embedding.weight  # tied: the output layer is the embedding
        nn.init.zeros_(self.decoder.bias)
        self.hidden: list[LSTMState] | None = None

    def reset(self) -> None:
        self.hidden = None

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self.hidden is not None and self.hidden[0][0].size(1) != ids.size(0):
            self.hidden = None  # a batch of another size cannot continue these rows
        outputs, hidden = self.encoder(ids, self.hidden)  # (B, T, E)
        self.hidden = [(h.detach(), c.detach()) for h, c in hidden]  # truncated BPTT: no gradient into the past
        return self.decoder(self.output_dropout(outputs))  # (B, T, V)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """[LSTM 1], ..., [LSTM n], [embedding + decoder bias] (the decoder's weight is the embedding), as
        fastai groups an LM: fine-tuning on a new vocabulary first trains only the last group, where
        the new words' rows are, before unfreezing the LSTMs."""
        embedding, *lstms = self.encoder.layer_groups()
        return lstms + [embedding + [self.decoder.bias]]

    @torch.no_grad()
    def with_vocab(self, new_vocab: list[str], **changes) -> "LanguageModel":
        """A copy for another vocabulary (the lesson's stage 1 -> 2): rows of words both vocabularies share
        are copied; new words start at the mean embedding and mean bias, a neutral guess. `changes` are
        other config fields for the copy (e.g. backwards=True: a forward LM's weights start a backward one)."""
        model = LanguageModel(AWDLSTMConfig(**{**asdict(self.config), "vocab": list(new_vocab), **changes}))
        state = {k: v for k, v in self.state_dict().items() if k not in ("encoder.embedding.weight", "decoder.bias")}
        old_index = {tok: i for i, tok in enumerate(self.config.vocab)}
        old_emb, old_bias = self.encoder.embedding.weight, self.decoder.bias
        rows = torch.tensor([old_index.get(tok, -1) for tok in new_vocab])
        known = rows >= 0
        emb = old_emb.mean(0).repeat(len(new_vocab), 1)  # (V_new, E)
        bias = old_bias.mean().repeat(len(new_vocab))  # (V_new,)
        emb[known], bias[known] = old_emb[rows[known]], old_bias[rows[known]]
        state["encoder.embedding.weight"], state["decoder.bias"] = emb, bias
        state["decoder.weight"] = emb
        model.load_state_dict(state, strict=True)
        return model

    @torch.no_grad()
    def next_token_log_probs(self, ids: list[int]) -> torch.Tensor:
        """log p(next token | ids) as a (V,) tensor, from a fresh state."""
        was_training = self.training
        self.eval()
        outputs, _ = self.encoder(torch.tensor([ids], device=self.encoder.embedding.weight.device))
        self.train(was_training)
        return F.log_softmax(self.decoder(outputs[:, -1])[0].float(), dim=-1)  # (V,) (see generate)

    @torch.no_grad()
    def generate(self, ids: list[int], n_tokens: int, temperature: float = 1.0, top_k: int = 0,
                 banned: tuple[int, ...] = (Vocab.pad_id, Vocab.bos_id, Vocab.unk_id),
                 generator: torch.Generator | None = None, stop: Callable[[int], bool] | None = None) -> list[int]:
        """Sample up to `n_tokens` continuation ids (temperature 0 = greedy; top_k 0 = the whole vocabulary);
        `stop(token)`, called on each new token, ends the sampling early when it returns True."""
        was_training = self.training
        self.eval()
        device = self.encoder.embedding.weight.device  # not the decoder's: a quantised copy's weight is a method
        outputs, state = self.encoder(torch.tensor([ids or [Vocab.bos_id]], device=device))  # read the prompt once
        out: list[int] = []
        for _ in range(n_tokens):
            logits = self.decoder(outputs[:, -1])[0].float()  # (V,): a quantised Linear takes no 1-d input
            logits[list(banned)] = float("-inf")
            if temperature <= 0:
                token = int(logits.argmax())
            else:
                # top-k first, then sample among those k only: the same distribution as masking the rest to -inf,
                # without a softmax and a draw over the whole vocabulary at every step
                candidates = logits.topk(top_k) if 0 < top_k < logits.numel() else None
                kept = candidates.values if candidates is not None else logits
                choice = int(torch.multinomial(F.softmax(kept / temperature, dim=-1), 1, generator=generator))
                token = int(candidates.indices[choice]) if candidates is not None else choice
            out.append(token)
            if stop is not None and stop(token) or len(out) == n_tokens:
                break
            outputs, state = self.encoder(torch.tensor([[token]], device=device), state)  # one step: (1, 1, E)
        self.train(was_training)
        return out


@dataclass
class ClassifierConfig:
    """The classifier's config.json. Its reading direction is its encoder's (`encoder.backwards`, the one flag;
    `config.backwards` reads and sets it): a backward classifier is a backward encoder under a head."""

    encoder: AWDLSTMConfig | dict = field(default_factory=AWDLSTMConfig)
    classes: list[str] = field(default_factory=lambda: ["negative", "positive"])
    head_hidden: int = 50
    head_p: tuple[float, float] | list[float] = (0.2, 0.05)  # dropout before each of the head's two linear layers
    max_len: int = 3000  # longest text (tokens) the classifier reads; longer ones are cut (the app says so)

    def __post_init__(self):
        if isinstance(self.encoder, dict):  # from config.json
            self.encoder = AWDLSTMConfig(**self.encoder)
        self.head_p = tuple(self.head_p)

    @property
    def backwards(self) -> bool:
        """ULMFiT's backward model: the encoder reads each text from its last token to its first."""
        return self.encoder.backwards

    @backwards.setter
    def backwards(self, value: bool) -> None:
        self.encoder.backwards = value

    @classmethod
    def from_dict(cls, values: dict) -> "ClassifierConfig":
        """A config.json's contents. Folders saved before the direction lived only in the encoder (the bundled
        weights/sentiment-bwd) hold it as a top-level `backwards` key: it is read into the encoder, and a file
        whose two flags disagree is refused rather than guessed at."""
        values = dict(values)
        legacy = values.pop("backwards", None)
        config = cls(**values)
        if legacy is not None:
            encoder_said = values["encoder"].get("backwards") if isinstance(values.get("encoder"), dict) else None
            if encoder_said is not None and encoder_said != legacy:
                raise ValueError(f"config.json says backwards={legacy} but its encoder says backwards={encoder_said}")
            config.encoder.backwards = bool(legacy)
        return config


def reverse_padded(ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each row's first lengths[b] entries in reverse order, the end padding left where it is: (B, T) -> (B, T)."""
    steps = torch.arange(ids.shape[1], device=ids.device)[None, :]  # (1, T)
    lengths = lengths.to(ids.device)[:, None]  # (B, 1)
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)  # (B, T): where each position reads from
    return ids.gather(1, index)


def concat_pool(outputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """[last, max, mean] over the real positions: outputs (B, T, E), lengths (B,) -> (B, 3E)."""
    batch, steps, _ = outputs.shape
    lengths = lengths.to(outputs.device).clamp(min=1)
    real = torch.arange(steps, device=outputs.device)[None, :] < lengths[:, None]  # (B, T)
    last = outputs[torch.arange(batch, device=outputs.device), lengths - 1]  # (B, E): the state after the last word
    max_pool = outputs.masked_fill(~real[..., None], float("-inf")).amax(dim=1)  # (B, E)
    mean_pool = (outputs * real[..., None]).sum(dim=1) / lengths[:, None].to(outputs.dtype)  # (B, E)
    return torch.cat([last, max_pool, mean_pool], dim=-1)


class TextClassifier(nn.Module, PyTorchModelHubMixin, library_name="fastai-part2-demos", tags=["text-classification", "awd-lstm", "ulmfit"]):
    """AWD-LSTM encoder over the whole text, concat pooling, then the ULMFiT head: (ids, lengths) -> logits (B, C)."""

    def __init__(self, config: ClassifierConfig | dict):
        super().__init__()
        cfg = self.config = config if isinstance(config, ClassifierConfig) else ClassifierConfig.from_dict(config)
        # what save_pretrained writes: this config as it is now (dropouts a fine-tuning run set, one direction
        # flag), not the dict a loaded folder's config.json held
        self._hub_mixin_config = cfg
        emb_dim = cfg.encoder.emb_dim
        self.encoder = AWDLSTMEncoder(cfg.encoder)
        self.head = nn.Sequential(
            nn.BatchNorm1d(3 * emb_dim), nn.Dropout(cfg.head_p[0]), nn.Linear(3 * emb_dim, cfg.head_hidden), nn.ReLU(),
            nn.BatchNorm1d(cfg.head_hidden), nn.Dropout(cfg.head_p[1]), nn.Linear(cfg.head_hidden, len(cfg.classes)),
        )

    def features(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The pooled text representation (B, 3E) the head reads."""
        if self.config.backwards:  # the text is cut (max_len) first, then read from its end
            ids = reverse_padded(ids, lengths)  # (B, T)
        outputs, _ = self.encoder(ids)  # (B, T, E)
        return concat_pool(outputs, lengths)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(ids, lengths))  # (B, C)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Embedding, each LSTM layer, the head: discriminative LRs give each its own LR; gradual
        unfreezing trains the head first, then one more group from the top per stage."""
        return self.encoder.layer_groups() + [list(self.head.parameters())]

    @classmethod
    def from_language_model(cls, lm: LanguageModel, backwards: bool = False, **settings) -> "TextClassifier":
        """A classifier whose encoder starts as the (fine-tuned) LM's encoder; the head starts fresh. It reads
        in the LM's direction (its encoder config is the LM's); `backwards` is the direction the caller
        expects, checked: a backward classifier comes from a backward LM."""
        if backwards != lm.config.backwards:  # its states summarise the other side of each word
            want = "backward" if backwards else "forward"
            raise ValueError(f"a {want} classifier needs a {want} language model, and this one reads the other way "
                             f"(train/lm.py {'with' if backwards else 'without'} --backwards)")
        model = cls(ClassifierConfig(encoder=AWDLSTMConfig(**asdict(lm.config)), **settings))
        model.encoder.load_state_dict(lm.encoder.state_dict(), strict=True)
        return model

    @torch.no_grad()
    def predict_proba(self, id_lists: list[list[int]], batch_size: int = 64) -> torch.Tensor:
        """Class probabilities (N, C) for texts given as id lists (each led by <bos>), in their order.

        Batches texts of similar length together (sorted), cut at config.max_len.
        """
        was_training = self.training
        self.eval()
        device = self.head[-1].weight.device
        order = sorted(range(len(id_lists)), key=lambda i: -len(id_lists[i]))
        probs = torch.zeros(len(id_lists), len(self.config.classes))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            docs = [list(id_lists[i][: self.config.max_len]) or [Vocab.bos_id] for i in chunk]
            lengths = torch.tensor([len(d) for d in docs])
            ids = torch.full((len(docs), int(lengths.max())), Vocab.pad_id, dtype=torch.long)
            for b, d in enumerate(docs):
                ids[b, : len(d)] = torch.tensor(d)
            probs[chunk] = F.softmax(self(ids.to(device), lengths.to(device)).float(), dim=-1).cpu()
        self.train(was_training)
        return probs


def lm_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy: logits (B, T, V), target (B, T). exp(loss) is the perplexity."""
    return F.cross_entropy(logits.flatten(0, 1).float(), target.flatten())


def classifier_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float(), target)
