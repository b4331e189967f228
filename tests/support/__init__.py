"""Helpers shared by the tests, imported as ``support.<module>``.

pytest puts ``tests/`` on ``sys.path`` (``pythonpath`` in pyproject.toml), so every test folder
imports them the same way; the ``conftest.py`` files hold only fixtures.
"""
