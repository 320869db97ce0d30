"""How the lesson-11 model is trained: the data it learns from, the learner around it, and the
teacher-forcing schedule (the lesson's Seq2SeqStepper).

    pairs = load_pairs(data)                                  # Tatoeba TSV or aligned files; None: download
    run = prepare(pairs, n_valid=2500, seed=42, bs=128, min_freq=2, max_vocab=40_000, emb_dim=256, ...,
                  extra_train=read_pairs("multi30k/train"), init=load_model(Seq2Seq, "weights/translation"))
    learn = make_learner(run.model, run.train_dl, run.valid_dl, lr=2e-3, wd=0.01, label_smoothing=0.1,
                         callbacks=[..., teacher_forcing(0.5)], accelerator=accelerator)
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from dl_core.callbacks import EpochSchedule
from dl_core.learner import Callback, Learner
from dl_core.text import Vocab, tokenize_batch
from dl_core.translation.data import (
    Pair, SortishBatchSampler, TranslationDataset, collate_translation, download_tatoeba, read_pairs, split_by_source,
)
from dl_core.translation.model import Seq2Seq, Seq2SeqConfig, seq2seq_loss

# AdamW's betas as fastai's defaults: a shorter second-moment memory than PyTorch's 0.999 suits 1cycle
ADAM_BETAS = (0.9, 0.99)


def teacher_forcing_schedule(floor: float):
    """The lesson's Seq2SeqStepper: forcing falls linearly from 1 to `floor` over the first 80% of epochs
    (the lesson: (10 - epoch) / 10 over 10 epochs, then 0)."""

    def fn(epoch: int, n_epochs: int) -> float:
        ramp = max(1, round(0.8 * n_epochs))
        return max(floor, 1.0 - (1.0 - floor) * epoch / ramp)

    return fn


def teacher_forcing(floor: float) -> Callback:
    """The callback that sets the model's teacher-forcing probability at the start of every epoch (and logs it
    in the history, where the model card and the app's training curves read it)."""
    return EpochSchedule("teacher_forcing", teacher_forcing_schedule(floor))


def load_pairs(data: str | Path | None, download_dir: str | Path = "data/tatoeba") -> list[Pair]:
    """The pairs of a Tatoeba TSV or an aligned-files prefix; without `data`, the full Tatoeba corpus
    (downloaded into `download_dir`, needs network)."""
    if data:
        return read_pairs(data)
    print(f"no data given: downloading the full Tatoeba corpus to {download_dir}")
    return read_pairs(download_tatoeba(download_dir))


def grown_vocab(old_itos: list[str], token_lists, max_size: int, min_freq: int) -> Vocab:
    """An existing vocabulary with its ids unchanged, then the tokens of `token_lists` it lacks (most frequent
    first, seen at least `min_freq` times) until it holds `max_size` tokens."""
    known = set(old_itos)
    counts = Vocab.build(token_lists, max_size=10**9, min_freq=min_freq).itos
    added = [t for t in counts if t not in known]
    return Vocab(list(old_itos) + added[: max(0, max_size - len(old_itos))])


def warm_start(init: Seq2Seq, config: Seq2SeqConfig) -> Seq2Seq:
    """A model for `config` (the same sizes as `init`, vocabularies that extend init's) holding init's
    weights: every tensor copied, and the embedding and output-bias rows of the old tokens copied into the
    bigger matrices. New tokens keep their fresh embeddings; their output bias starts at the old tokens'
    mean, so a new word is neither favoured nor ruled out before it has been seen."""
    model = Seq2Seq(config)
    new_state, old_state = model.state_dict(), init.state_dict()
    for name, old in old_state.items():
        new = new_state[name]
        if new.shape == old.shape:
            new.copy_(old)
        elif new.shape[1:] == old.shape[1:] and new.shape[0] > old.shape[0]:  # vocabulary rows
            new[: old.shape[0]] = old
            if name == "generator.bias":
                new[old.shape[0]:] = old.mean()
        else:
            raise ValueError(f"{name}: the model to start from has shape {tuple(old.shape)}, this one {tuple(new.shape)}")
    model.load_state_dict(new_state)
    return model


@dataclass
class Prepared:
    """What training needs, made from the pairs: the untrained model (its config holds both vocabularies)
    and the loaders, plus the held-out pairs the finished model is scored on."""

    model: Seq2Seq
    train_dl: DataLoader
    valid_dl: DataLoader
    valid_pairs: list[Pair]
    n_pairs: int  # the pairs used: train (after any max_train_pairs cap) + held out


def prepare(pairs: list[Pair], *, n_valid: int, seed: int, bs: int, min_freq: int, max_vocab: int,
            max_train_pairs: int = 0, workers: int = 0, verbose: bool = True, extra_train: list[Pair] = (),
            extra_valid: list[Pair] = (), init: Seq2Seq | None = None, **sizes) -> Prepared:
    """Hold out `n_valid` pairs by whole French sentence (seed `seed`), add `extra_train` pairs (another
    corpus, e.g. Multi30k's train split) to the training side and `extra_valid` to the validation loss,
    tokenise, build the vocabularies from the training side, and make the model (`sizes`: Seq2SeqConfig
    fields, e.g. emb_dim=256) and length-sorted loaders (batch `bs`; validation batches twice as big, as they
    need no gradients) with `workers` collating processes.

    With `init` (a trained Seq2Seq) the model starts from its weights: its sizes are kept and its
    vocabularies grown with the new training text's words (`grown_vocab`, `warm_start`)."""
    train_pairs, valid_pairs = split_by_source(pairs, n_valid, seed=seed)
    if max_train_pairs:
        train_pairs = train_pairs[:max_train_pairs]
    held_out_sources = {p.fr for p in valid_pairs}
    train_pairs = train_pairs + [p for p in extra_train if p.fr not in held_out_sources]
    scored_pairs = valid_pairs
    valid_pairs = valid_pairs + list(extra_valid)
    started = time.perf_counter()
    src_train, tgt_train = tokenize_batch([p.fr for p in train_pairs], "fr"), tokenize_batch([p.en for p in train_pairs], "en")
    src_valid, tgt_valid = tokenize_batch([p.fr for p in valid_pairs], "fr"), tokenize_batch([p.en for p in valid_pairs], "en")
    if init is None:
        src_vocab = Vocab.build(src_train, max_size=max_vocab, min_freq=min_freq)
        tgt_vocab = Vocab.build(tgt_train, max_size=max_vocab, min_freq=min_freq)
        config = Seq2SeqConfig(src_vocab=src_vocab.itos, tgt_vocab=tgt_vocab.itos, **sizes)
    else:
        src_vocab = grown_vocab(init.config.src_vocab, src_train, max_vocab, min_freq)
        tgt_vocab = grown_vocab(init.config.tgt_vocab, tgt_train, max_vocab, min_freq)
        config = replace(init.config, src_vocab=src_vocab.itos, tgt_vocab=tgt_vocab.itos)
    if verbose:
        grown = (f" (grown from {len(init.config.src_vocab)} / {len(init.config.tgt_vocab)})" if init is not None else "")
        print(f"{len(train_pairs)} train / {len(valid_pairs)} valid pairs; vocab fr {len(src_vocab)}, "
              f"en {len(tgt_vocab)}{grown}; tokenised in {time.perf_counter() - started:.1f}s")
    train_ds = TranslationDataset.from_tokens(src_train, tgt_train, src_vocab, tgt_vocab, config.max_src_len)
    valid_ds = TranslationDataset.from_tokens(src_valid, tgt_valid, src_vocab, tgt_vocab, config.max_src_len)
    train_dl = DataLoader(
        train_ds, collate_fn=collate_translation, num_workers=workers,
        batch_sampler=SortishBatchSampler([len(s) for s in train_ds.src], bs, shuffle=True, seed=seed),
    )
    valid_dl = DataLoader(
        valid_ds, collate_fn=collate_translation, num_workers=workers,
        batch_sampler=SortishBatchSampler([len(s) for s in valid_ds.src], bs * 2, shuffle=False),
    )
    model = Seq2Seq(config) if init is None else warm_start(init, config)
    return Prepared(model, train_dl, valid_dl, scored_pairs, len(train_pairs) + len(scored_pairs))


def make_learner(model: Seq2Seq, train_dl: DataLoader, valid_dl: DataLoader, *, lr: float, wd: float,
                 label_smoothing: float, callbacks: list[Callback], accelerator) -> Learner:
    """The Learner of this lesson: label-smoothed cross-entropy over the target tokens, AdamW."""

    def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return seq2seq_loss(logits, target, label_smoothing)

    def opt_fn(params, lr: float) -> torch.optim.Optimizer:
        return torch.optim.AdamW(params, lr=lr, betas=ADAM_BETAS, weight_decay=wd)

    return Learner(model, train_dl, valid_dl, loss_fn, lr=lr, opt_fn=opt_fn, callbacks=callbacks, accelerator=accelerator)
