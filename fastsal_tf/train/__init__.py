"""Training with model.fit: objectives (paper eq. 1–3), trainer models, callbacks and set-up helpers."""
