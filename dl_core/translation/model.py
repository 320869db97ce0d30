"""Lesson 11: French -> English translation with a bidirectional GRU encoder and an attention decoder.

Read top to bottom:
  Seq2SeqConfig   everything config.json holds: sizes, dropouts and both vocabularies
  Encoder         embedding -> dropout -> bidirectional GRU over the source
  AdditiveAttention   Bahdanau et al. 2015: score_j = v . tanh(W_k k_j + W_q q)
  Seq2Seq         decoder step, teacher-forced training forward, greedy and beam search

Differences from the lesson's notebook, and why:
- Padding is masked in the attention softmax and the source GRU is packed, so batch padding never changes
  a translation (the notebook let attention look at pad tokens).
- The output layer is a "deep output" (Bahdanau): tanh(W [h; context; embedding]) projected to the
  embedding size, then multiplied by the tied decoder embedding, as in the notebook's weight tying.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from dl_core.text import Vocab


@dataclass
class Seq2SeqConfig:
    src_vocab: list[str] = field(default_factory=list)  # French tokens; ids 0-3 are the specials
    tgt_vocab: list[str] = field(default_factory=list)  # English tokens
    emb_dim: int = 256
    enc_hidden: int = 256  # per direction: encoder outputs are 2 * enc_hidden wide
    dec_hidden: int = 512
    n_layers: int = 2
    attn_dim: int = 256
    emb_dropout: float = 0.15
    rnn_dropout: float = 0.25  # between stacked GRU layers
    out_dropout: float = 0.35  # before the output layer
    max_src_len: int = 40  # longer inputs are cut (the app says so)
    max_out_len: int = 40  # decoding stops here if <eos> never comes


class Encoder(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        self.embedding = nn.Embedding(len(cfg.src_vocab), cfg.emb_dim, padding_idx=Vocab.pad_id)
        self.dropout = nn.Dropout(cfg.emb_dropout)
        self.rnn = nn.GRU(
            cfg.emb_dim, cfg.enc_hidden, cfg.n_layers, batch_first=True, bidirectional=True, dropout=cfg.rnn_dropout
        )

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor):
        # src (B, S) -> outputs (B, S, 2H), final hidden (n_layers * 2, B, H)
        emb = self.dropout(self.embedding(src))  # (B, S, E)
        packed = pack_padded_sequence(emb, src_lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, hidden = self.rnn(packed)
        outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=src.size(1))  # (B, S, 2H)
        return outputs, hidden


class AdditiveAttention(nn.Module):
    """score(q, k_j) = v . tanh(W_k k_j + W_q q); weights = softmax over the source positions j."""

    def __init__(self, key_dim: int, query_dim: int, attn_dim: int):
        super().__init__()
        self.key_proj = nn.Linear(key_dim, attn_dim, bias=False)
        self.query_proj = nn.Linear(query_dim, attn_dim, bias=True)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def project_keys(self, keys: torch.Tensor) -> torch.Tensor:
        return self.key_proj(keys)  # (B, S, K) -> (B, S, A); done once per sentence, not per step

    def forward(self, query: torch.Tensor, projected_keys: torch.Tensor, values: torch.Tensor, src_mask: torch.Tensor):
        # query (B, D), projected_keys (B, S, A), values (B, S, K), src_mask (B, S) True on real tokens
        scores = self.v(torch.tanh(projected_keys + self.query_proj(query).unsqueeze(1))).squeeze(-1)  # (B, S)
        scores = scores.masked_fill(~src_mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)  # (B, S), each row sums to 1 over real tokens
        context = torch.bmm(weights.unsqueeze(1), values).squeeze(1)  # (B, 1, S) @ (B, S, K) -> (B, K)
        return context, weights


@dataclass
class DecoderState:
    """Everything one decoding step needs from the encoder and the previous step."""

    hidden: torch.Tensor  # (n_layers, B, D)
    enc_outputs: torch.Tensor  # (B, S, 2H)
    projected_keys: torch.Tensor  # (B, S, A)
    src_mask: torch.Tensor  # (B, S)

    def select(self, index: torch.Tensor) -> "DecoderState":
        """Reorder/duplicate the batch rows (beam search)."""
        return DecoderState(
            self.hidden[:, index], self.enc_outputs[index], self.projected_keys[index], self.src_mask[index]
        )


@dataclass
class Translation:
    tokens: list[int]  # target ids, without <bos>/<eos>
    log_prob: float  # sum of the chosen tokens' log-probabilities (the <eos> included)
    attention: torch.Tensor  # (len(tokens) + 1, S): one row per emitted token, <eos> last


class Seq2Seq(nn.Module, PyTorchModelHubMixin, library_name="fastai-part2-demos", tags=["translation", "seq2seq"]):
    def __init__(self, config: Seq2SeqConfig | dict):
        super().__init__()
        # from_pretrained passes config.json's dict; unknown keys raise TypeError (a mismatched checkpoint)
        cfg = self.config = config if isinstance(config, Seq2SeqConfig) else Seq2SeqConfig(**config)
        self.encoder = Encoder(cfg)
        self.bridge = nn.Linear(2 * cfg.enc_hidden, cfg.dec_hidden)  # final encoder state -> initial decoder state
        self.attention = AdditiveAttention(2 * cfg.enc_hidden, cfg.dec_hidden, cfg.attn_dim)
        self.embedding = nn.Embedding(len(cfg.tgt_vocab), cfg.emb_dim, padding_idx=Vocab.pad_id)
        self.emb_dropout = nn.Dropout(cfg.emb_dropout)
        self.rnn = nn.GRU(cfg.emb_dim + 2 * cfg.enc_hidden, cfg.dec_hidden, cfg.n_layers, dropout=cfg.rnn_dropout)
        self.deep_out = nn.Linear(cfg.dec_hidden + 2 * cfg.enc_hidden + cfg.emb_dim, cfg.emb_dim)
        self.out_dropout = nn.Dropout(cfg.out_dropout)
        self.generator = nn.Linear(cfg.emb_dim, len(cfg.tgt_vocab))
        self.generator.weight = self.embedding.weight  # weight tying, as in the lesson
        # nn.Embedding's N(0, 1) init would make the tied output layer's first logits ~8x too large
        # (initial loss ~11 instead of ln(V) ~ 8.7); scale embeddings to unit-norm rows instead.
        for emb in (self.encoder.embedding, self.embedding):
            nn.init.normal_(emb.weight, std=cfg.emb_dim**-0.5)
            emb.weight.data[Vocab.pad_id].zero_()
        # Probability of feeding the true previous word during training; the TeacherForcing callback
        # lowers it epoch by epoch (the lesson's Seq2SeqStepper). 1.0 = always teacher-force.
        self.teacher_forcing = 1.0

    # --- encoder side -----------------------------------------------------------------------------
    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> DecoderState:
        enc_outputs, enc_hidden = self.encoder(src, src_lengths)
        n_layers, batch = self.config.n_layers, src.size(0)
        # (n_layers * 2, B, H) -> (n_layers, 2, B, H) -> (n_layers, B, 2H): both directions side by side
        enc_hidden = enc_hidden.view(n_layers, 2, batch, -1).permute(0, 2, 1, 3).reshape(n_layers, batch, -1)
        hidden = torch.tanh(self.bridge(enc_hidden))  # (n_layers, B, D)
        src_mask = torch.arange(src.size(1), device=src.device)[None, :] < src_lengths.to(src.device)[:, None]
        return DecoderState(hidden, enc_outputs, self.attention.project_keys(enc_outputs), src_mask)

    # --- one decoder step -------------------------------------------------------------------------
    def decode_step(self, prev_tokens: torch.Tensor, state: DecoderState):
        """prev_tokens (B,) -> logits (B, V), attention weights (B, S), and the next state."""
        emb = self.emb_dropout(self.embedding(prev_tokens))  # (B, E)
        context, weights = self.attention(state.hidden[-1], state.projected_keys, state.enc_outputs, state.src_mask)
        rnn_in = torch.cat([emb, context], dim=-1).unsqueeze(0)  # (1, B, E + 2H): one time step
        rnn_out, hidden = self.rnn(rnn_in, state.hidden)  # (1, B, D), (n_layers, B, D)
        features = torch.tanh(self.deep_out(torch.cat([rnn_out.squeeze(0), context, emb], dim=-1)))  # (B, E)
        logits = self.generator(self.out_dropout(features))  # (B, V)
        next_state = DecoderState(hidden, state.enc_outputs, state.projected_keys, state.src_mask)
        return logits, weights, next_state

    # --- training ---------------------------------------------------------------------------------
    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher-forced (with probability self.teacher_forcing per step) logits (B, T, V) for tgt_in (B, T)."""
        state = self.encode(src, src_lengths)
        prev = tgt_in[:, 0]  # <bos>
        step_logits = []
        for t in range(tgt_in.size(1)):
            logits, _, state = self.decode_step(prev, state)
            step_logits.append(logits)
            if t + 1 < tgt_in.size(1):
                # torch's RNG (not Python's) so that checkpoints, which save it, resume bit-identically
                force = self.training is False or torch.rand(()).item() < self.teacher_forcing
                prev = tgt_in[:, t + 1] if force else logits.argmax(-1).detach()
        return torch.stack(step_logits, dim=1)  # (B, T, V)

    # --- inference --------------------------------------------------------------------------------
    def _prepare_source(self, src_ids: list[int]):
        src_ids = list(src_ids)[: self.config.max_src_len] or [Vocab.unk_id]
        device = self.embedding.weight.device
        return torch.tensor([src_ids], device=device), torch.tensor([len(src_ids)])

    @torch.no_grad()
    def greedy(self, src: torch.Tensor, src_lengths: torch.Tensor, max_len: int | None = None):
        """Batched greedy decoding: src (B, S) -> tokens (B, T), log_probs (B,), attention (B, T, S).

        Finished rows keep emitting <pad> (log-prob 0) so that the batch can run on until all are done.
        """
        max_len = max_len or self.config.max_out_len
        state = self.encode(src, src_lengths)
        batch = src.size(0)
        prev = torch.full((batch,), Vocab.bos_id, dtype=torch.long, device=src.device)
        finished = torch.zeros(batch, dtype=torch.bool, device=src.device)
        total = torch.zeros(batch, device=src.device)
        tokens, attentions = [], []
        for _ in range(max_len):
            logits, weights, state = self.decode_step(prev, state)
            log_probs = F.log_softmax(logits.float(), dim=-1)
            best_lp, best = log_probs.max(-1)
            best = best.masked_fill(finished, Vocab.pad_id)
            total += best_lp.masked_fill(finished, 0.0)
            tokens.append(best)
            attentions.append(weights)
            finished |= best == Vocab.eos_id
            prev = best
            if finished.all():
                break
        return torch.stack(tokens, 1), total, torch.stack(attentions, 1)

    @torch.no_grad()
    def translate_greedy(self, src_ids: list[int]) -> Translation:
        src, lengths = self._prepare_source(src_ids)
        tokens, log_prob, attention = self.greedy(src, lengths)
        ids = tokens[0].tolist()
        n = ids.index(Vocab.eos_id) + 1 if Vocab.eos_id in ids else len(ids)
        out = [i for i in ids[:n] if i != Vocab.eos_id]
        return Translation(out, float(log_prob[0]), attention[0, :n].float().cpu())

    @torch.no_grad()
    def beam_search(self, src_ids: list[int], beam_size: int = 5, length_penalty: float = 1.0) -> list[Translation]:
        """Beam search for one sentence; hypotheses sorted best first by log_prob / len ** length_penalty.

        The beams are the batch dimension. A hypothesis that emits <eos> is set aside as finished; the
        search stops when the best finished score can no longer be beaten by any live beam (their log-probs
        only fall) or at max_out_len. With beam_size=1 and this rule the result is exactly greedy decoding.
        """
        src, lengths = self._prepare_source(src_ids)
        state = self.encode(src, lengths)
        vocab_size = len(self.config.tgt_vocab)
        beams = [([], 0.0, [])]  # (token ids, log-prob, attention rows)
        prev = torch.tensor([Vocab.bos_id], device=src.device)
        finished: list[Translation] = []

        def score(log_prob: float, n_tokens: int) -> float:
            return log_prob / (n_tokens**length_penalty)

        for step in range(self.config.max_out_len):
            logits, weights, state = self.decode_step(prev, state)  # (K, V), (K, S)
            log_probs = F.log_softmax(logits.float(), dim=-1)
            totals = torch.tensor([b[1] for b in beams], device=src.device)[:, None] + log_probs  # (K, V)
            top_scores, top_index = totals.view(-1).topk(min(2 * beam_size, totals.numel()))
            live, rows = [], []
            for total, flat in zip(top_scores.tolist(), top_index.tolist()):
                beam_i, token = divmod(flat, vocab_size)
                tokens, _, attn = beams[beam_i]
                attn = attn + [weights[beam_i].float().cpu()]
                if token == Vocab.eos_id:
                    finished.append(Translation(tokens, total, torch.stack(attn)))
                else:
                    live.append((tokens + [token], total, attn))
                    rows.append(beam_i)
                if len(live) == beam_size:
                    break
            # Stop once beam_size hypotheses have ended: the top-k order means no live beam can still
            # beat them at equal length (the usual "early stopping" rule; with beam_size=1 it is greedy).
            if len(finished) >= beam_size or not live:
                break
            beams = live
            index = torch.tensor(rows, device=src.device)
            state = state.select(index)
            prev = torch.tensor([b[0][-1] for b in live], device=src.device)
        if not finished:  # ran out of length: keep the live beams as they are
            finished = [Translation(t, lp, torch.stack(a)) for t, lp, a in beams]
        finished.sort(key=lambda f: score(f.log_prob, len(f.tokens) + 1), reverse=True)
        return finished[:beam_size]


def seq2seq_loss(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy over the real (non-pad) target tokens: logits (B, T, V), target (B, T)."""
    return F.cross_entropy(
        logits.flatten(0, 1).float(), target.flatten(), ignore_index=Vocab.pad_id, label_smoothing=label_smoothing
    )
