"""Lessons 12-13: DarkNet on CIFAR-10 (model, data, training, evaluation, inference) and the training lab."""

LAB_BATCH_SIZE = 64  # the training lab's batches (here, torch-free, so the app's layout can count iterations)
