"""Lesson 14 super-resolution: the EDSR-style SrResnet (model), patch pairs and test sets (data), pixel and feature
losses (training), PSNR/SSIM as the literature computes them (evaluate), the tab's fast path (infer), cards (card)."""
