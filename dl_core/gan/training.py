"""GAN training on the project's one Learner: two networks, one optimizer with a param group each, one callback.

A GAN step trains either the critic or the generator. `GANTrainer` decides which before each batch (the lesson's
schedule: many critic steps per generator step), sets the pair's `mode`, and freezes the other network so its
weights get no gradients; the optimizer steps only parameters that have a gradient, so one optimizer serves both
(fastai's `GANTrainer` did the same). The Learner's loop is unchanged: batch -> forward -> loss -> backward -> step.

    pair = WassersteinPair(generator, critic)              # forward(real) returns the step's losses as a dict
    learn = Learner(pair, loader, valid, gan_loss, opt_fn=gan_optimizer(pair, "rmsprop"), lr=1e-4,
                    callbacks=[GANTrainer(clip=0.01), ...])

WGAN, the lesson's recipe: critic loss = mean critic(fake) - mean critic(real) (minimising it maximises the gap,
an estimate of the Wasserstein-1 distance while the critic stays 1-Lipschitz); generator loss = -mean critic(fake).
Lipschitz by clipping every critic weight to [-0.01, 0.01] after each critic step (the lesson) or by the gradient
penalty of Gulrajani et al. 2017 (https://arxiv.org/abs/1704.00028): lambda * (|grad critic(x_hat)| - 1)^2 at random
points x_hat between real and fake images.

CycleGAN: the generators' loss is LSGAN's (critic(fake) - 1)^2 for each direction + lambda * L1 cycle loss
(A -> B -> A and B -> A -> B) + lambda * identity_weight * L1(G_ab(b), b) and L1(G_ba(a), a); the critics' is
((critic(real) - 1)^2 + critic(pooled fake)^2) / 2 each, on fakes drawn from a pool of the last 50.
"""
from __future__ import annotations

import random
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dl_core.gan.model import CycleGenerators, DCGANCritic, DCGANGenerator, PatchDiscriminator
from dl_core.learner import Callback, Learner

CRITIC, GENERATOR = "critic", "generator"


def critic_iterations(generator_steps: int, many: int = 100, usual: int = 5, warmup: int = 25, every: int = 500) -> int:
    """The lesson's d_iters: train the critic `many` times before each of the first `warmup` generator steps and
    every `every`-th one (a well-trained critic gives the generator a useful gradient), else `usual` times."""
    return many if generator_steps < warmup or generator_steps % every == 0 else usual


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Mean of (|d critic / d x_hat| - 1)^2 at x_hat uniformly between each real image and a fake one."""
    alpha = torch.rand(len(real), 1, 1, 1, device=real.device)
    between = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    scores = critic(between)
    (grads,) = torch.autograd.grad(scores.sum(), between, create_graph=True)
    return ((grads.flatten(1).norm(dim=1) - 1) ** 2).mean()


def set_trainable(module: nn.Module, trainable: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(trainable)


class WassersteinPair(nn.Module):
    """A generator and its critic as one module. forward(real) computes the losses of one step of `mode`:

    critic mode:    {"loss": critic loss (+ GP), "wasserstein": mean critic(real) - mean critic(fake), ...}
    generator mode: {"loss": -mean critic(fake), ...}
    """

    def __init__(self, generator: DCGANGenerator, critic: DCGANCritic, gp_weight: float = 0.0):
        super().__init__()
        self.generator, self.critic, self.gp_weight = generator, critic, gp_weight
        self.mode = CRITIC

    def forward(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        noise = self.generator.noise(len(real))
        if self.mode == GENERATOR:
            return {"loss": -self.critic(self.generator(noise)).mean()}
        with torch.no_grad():
            fake = self.generator(noise)
        score_real, score_fake = self.critic(real).mean(), self.critic(fake).mean()
        out = {"loss": score_fake - score_real, "wasserstein": (score_real - score_fake).detach(),
               "score_real": score_real.detach(), "score_fake": score_fake.detach()}
        if self.gp_weight and torch.is_grad_enabled():  # not in validation, which only estimates the distance
            penalty = gradient_penalty(self.critic, real, fake)
            out["loss"] = out["loss"] + self.gp_weight * penalty
            out["gradient_penalty"] = penalty.detach()
        return out

    def parts(self) -> dict[str, nn.Module]:
        return {GENERATOR: self.generator, CRITIC: self.critic}


class ImagePool:
    """The last `size` fakes; `query` swaps each new fake, with probability 1/2, for a stored one (which the new one
    replaces). The critics then also see older fakes, so the pair does not chase each other in circles."""

    def __init__(self, size: int = 50, seed: int = 0):
        self.size, self.images, self.rng = size, [], random.Random(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif self.rng.random() < 0.5:
                slot = self.rng.randrange(self.size)
                out.append(self.images[slot])
                self.images[slot] = image
            else:
                out.append(image)
        return torch.stack(out)


def lsgan_loss(scores: torch.Tensor, real: bool) -> torch.Tensor:
    return F.mse_loss(scores, torch.full_like(scores, 1.0 if real else 0.0))


class CyclePair(nn.Module):
    """Both CycleGAN generators and both PatchGAN critics. forward(real_a, real_b) computes one step of `mode`."""

    def __init__(self, generators: CycleGenerators, critic_a: PatchDiscriminator, critic_b: PatchDiscriminator,
                 cycle_weight: float = 10.0, identity_weight: float = 0.5, pool_size: int = 50, seed: int = 0):
        super().__init__()
        self.generators, self.critic_a, self.critic_b = generators, critic_a, critic_b
        self.cycle_weight, self.identity_weight = cycle_weight, identity_weight
        self.pool_a, self.pool_b = ImagePool(pool_size, seed), ImagePool(pool_size, seed + 1)
        self.fresh_a = self.fresh_b = None  # the last generator step's fakes, for the critics' step
        self.mode = GENERATOR

    def forward(self, real_a: torch.Tensor, real_b: torch.Tensor) -> dict[str, torch.Tensor]:
        g = self.generators
        if self.mode == GENERATOR:
            fake_b, fake_a = g.a_to_b(real_a), g.b_to_a(real_b)
            adversarial = lsgan_loss(self.critic_b(fake_b), True) + lsgan_loss(self.critic_a(fake_a), True)
            cycle = F.l1_loss(g.b_to_a(fake_b), real_a) + F.l1_loss(g.a_to_b(fake_a), real_b)
            loss = adversarial + self.cycle_weight * cycle
            out = {"adversarial": adversarial.detach(), "cycle": cycle.detach()}
            if self.identity_weight:
                identity = F.l1_loss(g.a_to_b(real_b), real_b) + F.l1_loss(g.b_to_a(real_a), real_a)
                loss = loss + self.cycle_weight * self.identity_weight * identity
                out["identity"] = identity.detach()
            if self.training:
                self.fresh_a, self.fresh_b = fake_a.detach(), fake_b.detach()
            return {"loss": loss, **out}
        if self.fresh_a is None or not self.training:  # validation (or no generator step yet): fakes of this batch
            with torch.no_grad():
                fake_a, fake_b = g.b_to_a(real_b), g.a_to_b(real_a)
        else:
            fake_a, fake_b = self.pool_a.query(self.fresh_a), self.pool_b.query(self.fresh_b)
        loss_a = (lsgan_loss(self.critic_a(real_a), True) + lsgan_loss(self.critic_a(fake_a), False)) / 2
        loss_b = (lsgan_loss(self.critic_b(real_b), True) + lsgan_loss(self.critic_b(fake_b), False)) / 2
        return {"loss": loss_a + loss_b, "critic_a": loss_a.detach(), "critic_b": loss_b.detach()}

    def parts(self) -> dict[str, nn.Module]:
        return {GENERATOR: self.generators, CRITIC: nn.ModuleList([self.critic_a, self.critic_b])}


def gan_loss(out: dict[str, torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """The Learner's loss_fn for a pair: the pair's forward already computed the step's loss."""
    return out["loss"]


def gan_optimizer(pair: WassersteinPair | CyclePair, kind: str = "rmsprop", betas: tuple[float, float] = (0.5, 0.999),
                  critic_lr_mult: float = 1.0) -> Callable[..., torch.optim.Optimizer]:
    """A Learner opt_fn: one optimizer, the generator's parameters in group 0 and the critic's in group 1.
    RMSprop is the WGAN paper's choice (momentum made its clipped critic unstable); Adam(0.5, 0.999) is CycleGAN's
    and WGAN-GP's (which uses (0, 0.9))."""

    def opt_fn(params, lr: float) -> torch.optim.Optimizer:
        parts = pair.parts()
        groups = [{"params": list(parts[GENERATOR].parameters()), "lr_mult": 1.0},
                  {"params": list(parts[CRITIC].parameters()), "lr_mult": critic_lr_mult}]
        if kind == "rmsprop":
            return torch.optim.RMSprop(groups, lr=lr)
        if kind == "adam":
            return torch.optim.Adam(groups, lr=lr, betas=betas)
        raise ValueError(f"optimizer must be rmsprop or adam, not {kind!r}")

    return opt_fn


class GANTrainer(Callback):
    """Alternates critic and generator steps and records what the lesson plots.

    `critic_steps(generator_steps) -> n`: how many critic steps precede the next generator step (the lesson's
    `critic_iterations` for WGAN, 1 for CycleGAN). `clip`: clamp every critic weight to [-clip, clip] after each
    critic step (WGAN); 0 for none. Per epoch it logs the mean of each loss term the pair reports, per mode, and
    the number of steps of each kind; `steps` counts them over the whole fit. Validation runs the pair in
    `validate_mode`: for a WGAN the critic's, whose loss on held-out real images is minus the Wasserstein estimate."""

    order = -10  # before the schedules and the recorder: they should see the mode of this batch

    def __init__(self, critic_steps: Callable[[int], int] = critic_iterations, clip: float = 0.0,
                 validate_mode: str = CRITIC):
        self.critic_steps, self.clip, self.validate_mode = critic_steps, clip, validate_mode
        self.steps = {CRITIC: 0, GENERATOR: 0}
        self._critic_run = 0  # critic steps since the last generator step

    def _pair(self, learn: Learner):
        return learn.unwrapped_model

    def _set_mode(self, learn: Learner, mode: str) -> None:
        pair = self._pair(learn)
        pair.mode = mode
        for name, part in pair.parts().items():
            set_trainable(part, name == mode)

    def before_epoch(self, learn: Learner) -> None:
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    def before_batch(self, learn: Learner) -> None:
        if self._critic_run < self.critic_steps(self.steps[GENERATOR]):
            self._set_mode(learn, CRITIC)
        else:
            self._set_mode(learn, GENERATOR)

    def after_step(self, learn: Learner) -> None:
        pair = self._pair(learn)
        if pair.mode == CRITIC and self.clip:
            with torch.no_grad():
                for p in pair.parts()[CRITIC].parameters():
                    p.clamp_(-self.clip, self.clip)

    def after_batch(self, learn: Learner) -> None:
        if not learn.training:
            return
        mode = self._pair(learn).mode
        self.steps[mode] += 1
        self._critic_run = self._critic_run + 1 if mode == CRITIC else 0
        for key, value in learn.preds.items():
            name = f"{mode}_{key}"
            self._sums[name] = self._sums.get(name, 0.0) + float(value.detach())
            self._counts[name] = self._counts.get(name, 0) + 1

    def before_validate(self, learn: Learner) -> None:
        self._set_mode(learn, self.validate_mode)

    def after_epoch(self, learn: Learner) -> None:
        learn.epoch_logs.update({name: self._sums[name] / self._counts[name] for name in self._sums})
        learn.epoch_logs.update({f"{mode}_steps": n for mode, n in self.steps.items()})

    def after_fit(self, learn: Learner) -> None:
        set_trainable(self._pair(learn), True)


class FixedNoiseGallery(Callback):
    """The lesson's view of a generator learning: the same `n` noise vectors drawn before training and after every
    `every`-th epoch (and the last). `frames` holds (epoch, uint8 images (n, 3, H, W)); epoch 0 is the untrained
    generator."""

    order = 60  # after the recorder

    def __init__(self, generator: DCGANGenerator, n: int = 16, every: int = 1, seed: int = 1234):
        self.generator, self.every = generator, every
        self.noise = torch.randn(n, generator.config.nz, generator=torch.Generator().manual_seed(seed))
        self.frames: list[tuple[int, torch.Tensor]] = []
        self.epochs_done = 0

    @torch.no_grad()
    def _draw(self, epoch: int) -> None:
        from dl_core.gan.data import to_uint8

        was_training = self.generator.training
        self.generator.eval()
        device = next(self.generator.parameters()).device
        self.frames.append((epoch, to_uint8(self.generator(self.noise.to(device))).cpu()))
        self.generator.train(was_training)

    def before_fit(self, learn: Learner) -> None:
        if not self.frames:
            self._draw(learn.start_epoch)

    def after_epoch(self, learn: Learner) -> None:
        self.epochs_done = learn.epoch + 1
        if self.epochs_done % self.every == 0 or self.epochs_done == learn.n_epochs:
            self._draw(self.epochs_done)

    def after_fit(self, learn: Learner) -> None:
        if self.frames and self.frames[-1][0] != self.epochs_done:  # a time budget ended the fit between frames
            self._draw(self.epochs_done)
