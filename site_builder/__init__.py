"""Render experiment bundles into a static, searchable model catalog."""
