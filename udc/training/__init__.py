"""What udc's training loops share: the float backbone's training, augmentation, distillation,
the epoch loop, progress and resumable checkpoints."""
