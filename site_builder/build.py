"""``modelkb build``: render a store into a static catalog, incrementally.

Layout of the output folder::

    index.html, projects/, compare/, about/   mkdocs-material shell pages, filled by ModelKB
    projects/<slug>/index.html                one page per project (table, query box, export)
    data/projects/<slug>/index.json, <n>.json the project table's data: manifest + one file per field
    data/checklist/<slug>.json                the project part of the runs' reproducibility checklists
    experiments/<id>/index.html               one Jinja-rendered page per experiment
    experiments/<id>/data.json                what the compare page and charts read
    experiments/<id>/examples.json            the run's example inputs, as try-the-model feeds them
    experiments/<id>/{model.onnx,README.md,bundle.zip}
    vendor/netron/, vendor/onnxruntime-web/   bundled viewers (copied once)
    search/search_index.json                  mkdocs' index plus every project and experiment
    .modelkb-build/                           the build cache (manifest, mkdocs shell)

Incremental: the manifest keeps each experiment's summary keyed by the ``[mtime_ns, size]`` of its
``metadata.json``; only new or changed bundles are read and rendered, unless the page chrome or
templates changed, which re-renders everything. What a page shows about the project's other runs
(the checklist's number of runs, hyperparameter ranges, group mean ± std) lives in the project's
``data/checklist/<slug>.json``, rewritten with the project table, so old pages never go stale.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import modelkb
from modelkb import task
from modelkb.errors import BundleSchemaError, OutputFolderError
from modelkb.example_inputs import EXAMPLES_FILE, read_examples
from modelkb.fsutil import atomic_target, is_temp_file
from modelkb.reproducibility import checklist as checklist_items
from modelkb.site_builder import (
    assets,
    mkdocs_shell,
    pages,
    run_summary,
    table_data,
    try_examples,
    usage,
)
from modelkb.site_builder import checklist as site_checklist
from modelkb.site_builder.catalog import ExperimentSummary, load_metadata, scan, summary_from_json
from modelkb.site_builder.search_index import write_search_index
from modelkb.store import Problem, Store

logger = logging.getLogger(__name__)

WORK_DIR = ".modelkb-build"
MANIFEST_FORMAT = 1
ProgressCallback = Callable[[int, int], None]


@dataclass
class BuildReport:
    """What a build did.

    Attributes:
        out: The site folder.
        experiments: Experiments in the catalog.
        rendered: Experiment pages (re)written in this build.
        projects: Projects in the catalog.
        shell_rebuilt: Whether mkdocs ran.
        problems: Bundles skipped because they could not be read.
        notices: What the catalog lacks and why (e.g. onnxruntime-web not installed).
        seconds: Wall time.
    """

    out: Path
    experiments: int = 0
    rendered: int = 0
    projects: int = 0
    shell_rebuilt: bool = False
    problems: list[Problem] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _write_text(path: Path, text: str) -> None:
    """Write through a temporary file and ``os.replace`` (no fsync: the site is rebuildable)."""
    with atomic_target(path, durable=False) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _templates_fingerprint() -> str:
    digest = hashlib.sha256(modelkb.__version__.encode())
    folder = mkdocs_shell.site_sources() / "templates"
    for path in sorted(folder.glob("*.j2")):
        digest.update(path.name.encode() + path.read_bytes())
    # What goes into a page's HTML and data.json (task: the model's task, which way metrics improve).
    for module in (pages, run_summary, usage, try_examples, site_checklist, checklist_items, task):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:16]


class _Manifest:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.render_key = ""
        self.summaries: dict[str, ExperimentSummary] = {}
        self.projects: dict[str, str] = {}

    def load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if data.get("format") != MANIFEST_FORMAT:
            return
        self.render_key = data.get("render_key", "")
        self.projects = data.get("projects", {})
        self.summaries = {
            key: summary_from_json(value) for key, value in data.get("summaries", {}).items()
        }

    def save(self) -> None:
        data = {
            "format": MANIFEST_FORMAT,
            "render_key": self.render_key,
            "projects": self.projects,
            "summaries": {key: value.to_json() for key, value in self.summaries.items()},
        }
        _write_text(self.path, json.dumps(data, ensure_ascii=False, separators=(",", ":")))


def _bundle_files(folder: Path) -> list[str]:
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            full = Path(root) / name
            if is_temp_file(name) or full.is_symlink():
                continue
            files.append(full.relative_to(folder).as_posix())
    return files


def _write_zip(folder: Path, files: list[str], target: Path, experiment_id: str) -> None:
    with (
        atomic_target(target, durable=False) as tmp,
        zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive,
    ):
        for rel in files:
            archive.write(folder / rel, f"{experiment_id}/{rel}")


def render_experiment_dir(
    summary: ExperimentSummary,
    metadata: dict[str, Any],
    chrome: mkdocs_shell.Chrome,
    out: Path,
    *,
    zip_bundle: bool = True,
) -> None:
    """Write ``experiments/<id>/`` for one experiment."""
    folder = Path(summary.path)
    target = out / "experiments" / summary.id
    target.mkdir(parents=True, exist_ok=True)
    files = _bundle_files(folder)
    file_set = set(files)
    examples = _page_examples(folder, metadata) if summary.has_model else []
    data = pages.experiment_data(metadata, summary, examples=len(examples))
    body = pages.render_experiment(metadata, summary, files=file_set, data=data)
    _write_text(target / "index.html", chrome.wrap(body, escape(summary.name)))
    _write_text(
        target / "data.json",
        json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str),
    )
    if examples:
        _write_text(
            target / EXAMPLES_FILE,
            json.dumps({"examples": examples}, ensure_ascii=False, separators=(",", ":")),
        )
    else:
        (target / EXAMPLES_FILE).unlink(missing_ok=True)
    for name in ("README.md", "model.onnx"):
        if name in file_set:
            assets.link_or_copy(folder / name, target / name)
        elif (target / name).exists():
            (target / name).unlink()
    if zip_bundle:
        _write_zip(folder, files, target / "bundle.zip", summary.id)


def _page_examples(folder: Path, metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's example inputs as try-the-model feeds them; a bad ``examples.json`` costs only
    the examples (a warning), never the page."""
    try:
        return try_examples.page_examples(read_examples(folder), metadata)
    except BundleSchemaError as err:
        logger.warning("no example inputs for %s: %s", folder, err)
        return []


def _copy_shell_static(shell_dir: Path, out: Path, skip: set[str]) -> None:
    """Copy mkdocs' output (theme assets, 404 page, sitemap, our JS/CSS) except the pages we fill."""
    for root, dirs, files in os.walk(shell_dir):
        rel_root = Path(root).relative_to(shell_dir)
        if rel_root.as_posix() == mkdocs_shell.CHROME_PAGE:
            dirs[:] = []
            continue
        for name in files:
            rel = (rel_root / name).as_posix()
            if rel in skip:
                continue
            assets.link_or_copy(Path(root) / name, out / rel)


def check_output_folder(out_dir: Path, store: Store, *, force: bool = False) -> None:
    """Refuse an output folder whose files the build could overwrite or delete.

    The build owns its folder: it replaces ``index.html``, ``assets/``, ``projects/`` and more. So
    the folder must be new, empty or an earlier build (it holds ``.modelkb-build/``); ``force``
    allows another folder (the build then deletes only what its own manifest lists). A folder
    inside the store, or one that holds the store, is refused always: a published site would
    carry the whole store, and a rebuild could delete bundles.

    Raises:
        OutputFolderError: The folder is one of the above (a ValueError).
    """
    if out_dir == store.root or store.root in out_dir.parents:
        raise OutputFolderError(
            f"Expected an output folder outside the store. Received: out={str(out_dir)!r}",
            hint="Build the catalog beside the store, e.g. --out modelkb-site.",
        )
    if out_dir in store.root.parents:
        raise OutputFolderError(
            f"Expected an output folder that does not hold the store {store.root}. "
            f"Received: out={str(out_dir)!r}",
            hint=f"Choose a new folder, e.g. --out {out_dir / 'modelkb-site'}.",
        )
    if force or not out_dir.is_dir() or (out_dir / WORK_DIR).is_dir():
        return
    other = next(iter(sorted(os.listdir(out_dir))), None)
    if other is not None:
        raise OutputFolderError(
            f"Expected a new or empty folder, or an earlier catalog build. Received: out={str(out_dir)!r}, "
            f"which holds other files (such as {other!r}) that the build would replace",
            hint="Choose another folder, or pass --force to build into it anyway.",
        )


def _remove_stale(
    out: Path,
    summaries: dict[str, ExperimentSummary],
    slugs: set[str],
    built_ids: Iterable[str],
    built_slugs: Iterable[str],
) -> None:
    """Delete pages of runs and projects that an earlier build wrote and the store no longer has.

    Only names the previous manifest lists are candidates: a folder the build did not write is
    never deleted, even in a folder built into with ``--force``.
    """
    for experiment_id in set(built_ids) - summaries.keys():
        shutil.rmtree(out / "experiments" / experiment_id, ignore_errors=True)
    for slug in set(built_slugs) - slugs:
        shutil.rmtree(out / "projects" / slug, ignore_errors=True)
        table_data.remove_project_table(out / "data" / "projects", slug)
        (out / "data" / "checklist" / f"{slug}.json").unlink(missing_ok=True)


def _regroup(
    catalog: list[pages.ProjectInfo], summaries: dict[str, ExperimentSummary]
) -> list[pages.ProjectInfo]:
    """The projects again after some runs were dropped; a project left empty keeps its (empty) page."""
    regrouped = {project.slug: project for project in pages.group_projects(summaries.values())}
    return [
        regrouped.get(project.slug) or pages.ProjectInfo(project.title, project.slug)
        for project in catalog
    ]


def build_site(
    store: Store,
    out: str | os.PathLike[str],
    *,
    projects: Iterable[str] | None = None,
    incremental: bool = True,
    zip_bundles: bool = True,
    progress: ProgressCallback | None = None,
    force: bool = False,
) -> BuildReport:
    """Render every bundle of ``store`` into a static catalog at ``out``.

    Args:
        store: The store to read.
        out: The site folder (created; the build owns it).
        projects: Only these project titles or slugs (default: all).
        incremental: Reuse the previous build's output for unchanged bundles.
        zip_bundles: Write ``bundle.zip`` for each experiment.
        progress: Called with ``(done, total)`` while experiment pages are rendered.
        force: Build into a non-empty folder that is not an earlier build (see ``check_output_folder``).

    Returns:
        A :class:`BuildReport`; unreadable bundles are listed in ``problems`` and skipped.
    """
    started = time.perf_counter()
    out_dir = Path(out).resolve()
    check_output_folder(out_dir, store, force=force)
    work = out_dir / WORK_DIR
    work.mkdir(parents=True, exist_ok=True)
    manifest = _Manifest(work / "manifest.json")
    manifest.load()  # also what the last build wrote, so a full build still removes stale pages
    built_ids, built_slugs = list(manifest.summaries), list(manifest.projects)
    if not incremental:
        manifest.render_key, manifest.projects = "", {}

    result = scan(store, previous=manifest.summaries if incremental else {}, projects=projects)
    summaries = result.summaries
    catalog = pages.group_projects(summaries.values())
    slugs = [project.slug for project in catalog]

    shell_dir, shell_rebuilt = mkdocs_shell.build_shell(work, slugs)
    shell = mkdocs_shell.shell_pages(slugs)
    filled = {page.url + "index.html" for page in shell} | {"search/search_index.json"}
    if shell_rebuilt or not (out_dir / "assets").is_dir():
        _copy_shell_static(shell_dir, out_dir, filled)
    assets.install_netron(out_dir)
    notices = assets.install_vendor(out_dir)

    chrome = mkdocs_shell.Chrome.from_shell(shell_dir)
    render_key = f"{chrome.sha}:{_templates_fingerprint()}:{int(zip_bundles)}"
    if render_key != manifest.render_key:
        todo = list(summaries)
    else:
        pages_dir = str(out_dir / "experiments")
        todo = [
            key
            for key in summaries
            if key in result.changed
            or not os.path.isfile(os.path.join(pages_dir, key, "index.html"))
        ]
    total = len(todo)
    unrenderable: list[Problem] = []
    for done, experiment_id in enumerate(todo, 1):
        summary = summaries[experiment_id]
        try:
            metadata = result.metadata.get(experiment_id)
            if metadata is None:
                metadata = load_metadata(summary)
            render_experiment_dir(summary, metadata, chrome, out_dir, zip_bundle=zip_bundles)
        except Exception as err:
            logger.debug("cannot render %s", summary.path, exc_info=True)
            unrenderable.append(
                Problem(
                    summary.path,
                    f"cannot be shown in the catalog ({type(err).__name__}: {err}); skipped",
                )
            )
            shutil.rmtree(out_dir / "experiments" / experiment_id, ignore_errors=True)
            del summaries[experiment_id]
        if progress is not None and (done % 100 == 0 or done == total):
            progress(done, total)
    if unrenderable:
        result.problems.extend(unrenderable)
        catalog = _regroup(catalog, summaries)

    _remove_stale(out_dir, summaries, set(slugs), built_ids, built_slugs)
    project_keys = {}
    for project in catalog:
        key = hashlib.sha256(
            json.dumps([[s.id, s.stamp] for s in project.experiments]).encode()
        ).hexdigest()[:16]
        key += ":" + render_key
        project_keys[project.slug] = key
        table_dir = out_dir / "data" / "projects" / project.slug
        checklist_file = out_dir / "data" / "checklist" / f"{project.slug}.json"
        if (
            manifest.projects.get(project.slug) != key
            or not (table_dir / table_data.MANIFEST).is_file()
            or not checklist_file.is_file()
        ):
            (out_dir / "data" / "projects" / f"{project.slug}.json").unlink(
                missing_ok=True
            )  # pre-columns
            table_data.write_project_table(
                table_dir,
                title=project.title,
                slug=project.slug,
                version=key.split(":", 1)[0],
                experiments=project.experiments,
                write_text=_write_text,
            )
            _write_text(
                checklist_file,
                json.dumps(
                    site_checklist.project_checklist(project.experiments),
                    ensure_ascii=False,
                    separators=(",", ":"),
                    allow_nan=False,
                    default=str,
                ),
            )
    _fill_shell(shell_dir, out_dir, shell, catalog, summaries, [str(p) for p in result.problems])
    write_search_index(
        shell_dir / "search" / "search_index.json",
        out_dir / "search" / "search_index.json",
        catalog,
        summaries.values(),
    )

    if (
        result.changed
        or render_key != manifest.render_key
        or project_keys != manifest.projects
        or summaries.keys() != manifest.summaries.keys()
    ):
        manifest.summaries = summaries
        manifest.render_key = render_key
        manifest.projects = project_keys
        manifest.save()
    return BuildReport(
        out=out_dir,
        experiments=len(summaries),
        rendered=total,
        projects=len(catalog),
        shell_rebuilt=shell_rebuilt,
        problems=list(result.problems),
        notices=notices,
        seconds=time.perf_counter() - started,
    )


def _fill_shell(
    shell_dir: Path,
    out: Path,
    shell: list[mkdocs_shell.ShellPage],
    catalog: list[pages.ProjectInfo],
    summaries: dict[str, ExperimentSummary],
    problems: list[str],
) -> None:
    by_slug = {project.slug: project for project in catalog}
    bodies: dict[str, tuple[str, str | None]] = {
        "": (pages.render_dashboard(catalog, summaries.values()), None),
        "projects/": (pages.render_projects_index(catalog), None),
        "compare/": (pages.render_compare(), None),
        "about/": (
            pages.render_about(
                version=modelkb.__version__, count=len(summaries), problems=problems
            ),
            None,
        ),
    }
    for slug, project in by_slug.items():
        bodies[f"projects/{slug}/"] = (pages.render_project(project), escape(project.title))
    for page in shell:
        if page.url not in bodies:
            continue
        body, title = bodies[page.url]
        html = (shell_dir / page.url / "index.html").read_text(encoding="utf-8")
        _write_text(out / page.url / "index.html", mkdocs_shell.fill(html, body, title))
