"""JSON Schemas of the bundle format (package data)."""
