"""Neural networks: phi (DeepSTORM-like KDE regressor), the psi U-Net and the diffusion process."""
