"""Framework callbacks that capture training runs into ModelKB bundles."""
