"""Example training scripts, recorded by ModelKB (used by `modelkb demo`)."""
