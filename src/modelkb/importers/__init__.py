"""Importers: runs tracked with other tools (TensorBoard) become ModelKB bundles."""
