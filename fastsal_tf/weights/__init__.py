"""Weight importers: the authors' PyTorch checkpoints and ImageNet MobileNetV2 initialisation."""
