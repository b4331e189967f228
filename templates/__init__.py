"""Jinja templates for generated handlers, Dockerfiles and SAM templates (package data)."""
