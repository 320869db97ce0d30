"""Lesson 12 GANs: the DCGAN generator and critic and CycleGAN's generators and PatchGAN (model), image collections
and unpaired domains (data), the pairs, losses and the callback that trains them on the one Learner (training),
FD-Lite0 (evaluate), cards and the fixed-noise gallery (card)."""
