"""Front-end sources of the catalog: config template, theme overrides, JS, CSS (package data)."""
