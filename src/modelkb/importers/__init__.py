"""Importers: runs tracked with other tools (MLflow, TensorBoard) become ModelKB bundles."""
