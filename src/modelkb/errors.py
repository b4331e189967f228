"""The one error hierarchy of ModelKB.

Every error ModelKB raises on purpose derives from :class:`ModelKBError` and also
from the builtin it naturally is, so callers can catch either.
"""

from __future__ import annotations


class ModelKBError(Exception):
    """Base class of every error ModelKB raises on purpose.

    Attributes:
        hint: One short sentence telling the user what to do next, or ``None``.
    """

    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class MissingExtraError(ModelKBError, ImportError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"{package!r} is required for this feature but is not installed.",
            hint=f"pip install 'modelkb[{extra}]'",
        )
        self.package = package
        self.extra = extra


class BundleError(ModelKBError):
    """Something is wrong with an experiment bundle."""


class BundleNotFoundError(BundleError, FileNotFoundError):
    """No bundle matches the given id or path."""


class AmbiguousIdError(BundleError, LookupError):
    """An id prefix matches more than one experiment."""

    def __init__(self, prefix: str, matches: list[str]) -> None:
        shown = ", ".join(matches[:5]) + (" ..." if len(matches) > 5 else "")
        super().__init__(
            f"id prefix {prefix!r} matches {len(matches)} experiments: {shown}",
            hint="Give more characters of the id.",
        )
        self.prefix = prefix
        self.matches = matches


class BundleSchemaError(BundleError, ValueError):
    """A bundle's metadata does not follow the bundle format."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message if path is None else f"{path}: {message}")
        self.path = path


class StoreError(ModelKBError, OSError):
    """The store cannot be read or written."""


class DiskFullError(StoreError):
    """The store's disk is full: a bundle file could not be written (what was kept is said)."""


class QuerySyntaxError(ModelKBError, ValueError):
    """A query expression cannot be parsed.

    Attributes:
        query: The query text.
        column: 1-based column of the offending character.
    """

    def __init__(self, message: str, *, query: str, column: int) -> None:
        pointer = " " * (column - 1) + "^"
        super().__init__(
            f"{message} at column {column}\n  {query}\n  {pointer}",
            hint="Example: epochs > 10 && optimizer = Adam && accuracy > 0.9",
        )
        self.query = query
        self.column = column
        self.reason = message


class UnknownFieldError(QuerySyntaxError):
    """A query names a field that no experiment has."""


class PackageError(ModelKBError, ValueError):
    """A run cannot be packaged for serving (no ONNX model, unsupported preprocessing step, ...)."""


class OutputFolderError(ModelKBError, ValueError):
    """An output folder the command would overwrite or delete in (a folder of other files, the store)."""


class SiteEngineError(ModelKBError, RuntimeError):
    """The site engine (mkdocs-material or Zensical) could not render the catalog's shell.

    Attributes:
        engine: The engine's name (``mkdocs``, ``zensical``).
    """

    def __init__(self, engine: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(
            f"the {engine} engine could not build the catalog's shell: {message}",
            hint=hint or "Run again with -vv to see the engine's whole output.",
        )
        self.engine = engine


class UnknownEngineError(ModelKBError, ValueError):
    """``--engine`` or ``MODELKB_ENGINE`` names no site engine.

    Attributes:
        engine: The name given.
    """

    def __init__(self, engine: str, known: list[str]) -> None:
        super().__init__(
            f"Expected a site engine among {', '.join(known)}. Received: engine={engine!r}",
            hint="Pass --engine mkdocs or --engine zensical (or set MODELKB_ENGINE).",
        )
        self.engine = engine


class ProjectSettingsError(ModelKBError, ValueError):
    """A project's ``project.json`` cannot be used (not JSON, not an object, a value of the wrong type).

    Attributes:
        path: The settings file.
    """

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(
            f"{path}: {problem}",
            hint="Fix or delete the file, or set it again with `modelkb project TITLE --primary-metric NAME`.",
        )
        self.path = path


class ContainerToolError(ModelKBError, RuntimeError):
    """No usable container engine (buildah/podman/docker), or a build or run failed."""


class DeployError(ModelKBError, RuntimeError):
    """Pushing the image or creating/updating the CloudFormation stack failed."""


class PublishError(ModelKBError, RuntimeError):
    """Publishing to, or cloning from, a remote (S3, the Hugging Face Hub) failed.

    Attributes:
        remote: The remote location involved (``s3://bucket/prefix``, ``hf://user/name``), or ``None``.
    """

    def __init__(self, message: str, *, remote: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.remote = remote


class RemoteNotFoundError(PublishError, FileNotFoundError):
    """The bucket, repository, revision or object does not exist."""


class RemoteAccessError(PublishError, PermissionError):
    """The remote refused the credentials or the action (HTTP 401/403, AccessDenied, no credentials)."""


class RemoteUnavailableError(PublishError, ConnectionError):
    """The remote cannot be reached (connection refused, DNS failure, timeout)."""


class RemoteConflictError(PublishError, FileExistsError):
    """The remote already holds something else under that name (HTTP 409, another run in the repo)."""


class UnsafeArchiveError(ModelKBError, ValueError):
    """An archive would write outside its target, holds links or devices, or exceeds a size limit.

    Attributes:
        archive: The archive file.
        member: The offending entry name, or ``None`` for archive-wide limits.
    """

    def __init__(
        self, message: str, *, archive: str, member: str | None = None, hint: str | None = None
    ) -> None:
        super().__init__(f"{archive}: {message}", hint=hint)
        self.archive = archive
        self.member = member


class IntegrityError(BundleError, ValueError):
    """A bundle's files do not match the sizes and sha256 sums its metadata.json lists.

    Attributes:
        path: The artifact path (relative to the bundle) that failed, or ``None``.
    """

    def __init__(self, message: str, *, path: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.path = path


class BundleExistsError(BundleError, FileExistsError):
    """The store already holds a bundle with this experiment id."""


class ReproductionError(ModelKBError, RuntimeError):
    """A bundle cannot be re-run (no captured code, the re-run failed, its run was not found)."""
