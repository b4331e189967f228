"""``modelkb build``: render a store into a static catalog, incrementally.

Layout of the output folder::

    index.html, projects/, compare/, about/   the engine's shell pages, filled by ModelKB
    projects/<slug>/index.html                one page per project (table, query box, export)
    data/projects/<slug>/index.json, <n>.json the project table's data: manifest + one file per field
    data/checklist/<slug>.json                the project part of the runs' reproducibility checklists
    experiments/<id>/index.html               one Jinja-rendered page per experiment
    experiments/<id>/data.json                what the compare page and charts read
    experiments/<id>/examples.json            the run's example inputs, as try-the-model feeds them
    experiments/<id>/{model.onnx,README.md,bundle.zip}
    vendor/netron/, vendor/onnxruntime-web/   bundled viewers (copied once)
    search/search_index.json (mkdocs)         the engine's search index plus every project and
    search.json (zensical)                    experiment
    .modelkb-build/                           the build cache (build_cache.py, the engine's shell)

Incremental: the cache keeps each experiment's ``[mtime_ns, size]`` of its ``metadata.json``; only
new or changed bundles are read and rendered, and only their projects are redone (table,
checklist, cache files), unless the page chrome or templates changed, which re-renders
everything. What a page shows about the project's other runs (the checklist's number of runs,
hyperparameter ranges, group mean ± std) lives in the project's ``data/checklist/<slug>.json``,
rewritten with the project table, so old pages never go stale.
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
from contextlib import nullcontext
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import modelkb
from modelkb import task
from modelkb.bundle import artifact_kind
from modelkb.errors import BundleError, BundleSchemaError, OutputFolderError, ProjectSettingsError
from modelkb.example_inputs import EXAMPLES_FILE, read_examples
from modelkb.fsutil import atomic_target, is_temp_file
from modelkb.project_settings import read_settings
from modelkb.reproducibility import checklist as checklist_items
from modelkb.site_builder import (
    assets,
    pages,
    primary_metric,
    run_summary,
    shell,
    table_data,
    try_examples,
    usage,
)
from modelkb.site_builder import checklist as site_checklist
from modelkb.site_builder.build_cache import BuildCache, hydrate_project, project_digest
from modelkb.site_builder.catalog import ExperimentSummary, load_metadata, resummarize, scan
from modelkb.site_builder.engines import Engine, engine_named
from modelkb.site_builder.search_index import experiment_entry, write_search_index
from modelkb.store import Problem, Store

logger = logging.getLogger(__name__)

WORK_DIR = ".modelkb-build"
ProgressCallback = Callable[[int, int], None]


@dataclass
class BuildReport:
    """What a build did.

    Attributes:
        out: The site folder.
        experiments: Experiments in the catalog.
        rendered: Experiment pages (re)written in this build.
        projects: Projects in the catalog.
        engine: The site engine that rendered the shell (``mkdocs``, ``zensical``).
        shell_rebuilt: Whether the engine ran.
        problems: Bundles skipped because they could not be read.
        notices: What the catalog lacks and why (e.g. onnxruntime-web not installed).
        seconds: Wall time.
    """

    out: Path
    experiments: int = 0
    rendered: int = 0
    projects: int = 0
    engine: str = ""
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
    folder = shell.site_sources() / "templates"
    for path in sorted(folder.glob("*.j2")):
        digest.update(path.name.encode() + path.read_bytes())
    # What goes into a page's HTML and data.json (task: the model's task, which way metrics improve).
    modules = (pages, run_summary, primary_metric, usage, try_examples, site_checklist)
    for module in (*modules, checklist_items, task):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:16]


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


def _write_new(path: Path, text: str) -> None:
    """Write a file into a folder this build just created: nothing serves it yet and, should the
    build stop, the run is not in the cache and is rendered again, so no temporary file and
    rename (a rename costs ~2 ms on a busy disk: minutes over 100,000 pages)."""
    path.write_text(text, encoding="utf-8")


def _write_zip(
    folder: Path, files: list[str], target: Path, experiment_id: str, *, fresh: bool = False
) -> None:
    with (
        nullcontext(target) if fresh else atomic_target(target, durable=False) as tmp,
        zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive,
    ):
        for rel in files:
            archive.write(folder / rel, f"{experiment_id}/{rel}")


def render_experiment_dir(
    summary: ExperimentSummary,
    metadata: dict[str, Any],
    chrome: shell.Chrome,
    out: Path,
    *,
    zip_bundle: bool = True,
    metric_names: tuple[str | None, ...] = (),
) -> None:
    """Write ``experiments/<id>/`` for one experiment (``metric_names``: its project's primary
    metric choices)."""
    folder = Path(summary.path)
    target = out / "experiments" / summary.id
    fresh = not target.is_dir()
    target.mkdir(parents=True, exist_ok=True)
    write = _write_new if fresh else _write_text
    files = _bundle_files(folder)
    file_set = set(files)
    examples = _page_examples(folder, metadata) if summary.has_model else []
    data = pages.experiment_data(metadata, summary, examples=len(examples))
    body = pages.render_experiment(metadata, summary, files=file_set, metric_names=metric_names)
    write(target / "index.html", chrome.wrap(body, escape(summary.name)))
    write(
        target / "data.json",
        json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str),
    )
    if examples:
        write(
            target / EXAMPLES_FILE,
            json.dumps({"examples": examples}, ensure_ascii=False, separators=(",", ":")),
        )
    elif not fresh:
        (target / EXAMPLES_FILE).unlink(missing_ok=True)
    for name in ("README.md", "model.onnx"):
        if name in file_set:
            assets.link_or_copy(folder / name, target / name)
        elif not fresh and (target / name).exists():
            (target / name).unlink()
    if zip_bundle:
        _write_zip(folder, files, target / "bundle.zip", summary.id, fresh=fresh)


def _page_files(metadata: dict[str, Any] | None) -> set[str] | None:
    """The files of a bundle its page and checklist read: all but the native weights (which only
    ``bundle.zip`` carries); ``None`` (all) when the metadata was not read in this build."""
    if metadata is None:
        return None
    artifacts = metadata.get("artifacts")
    paths = (
        [a.get("path") for a in artifacts if isinstance(a, dict)]
        if isinstance(artifacts, list)
        else []
    )
    return {path for path in paths if isinstance(path, str) and artifact_kind(path) != "weights"}


def _page_examples(folder: Path, metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's example inputs as try-the-model feeds them; a bad ``examples.json`` costs only
    the examples (a warning), never the page."""
    try:
        return try_examples.page_examples(read_examples(folder), metadata)
    except BundleSchemaError as err:
        logger.warning("no example inputs for %s: %s", folder, err)
        return []


def _copy_shell_static(shell_dir: Path, out: Path, skip: set[str]) -> set[str]:
    """Copy the engine's output (theme assets, 404 page, sitemap, our JS/CSS) except the pages
    we fill; the copied files' paths."""
    copied = set()
    for root, dirs, files in os.walk(shell_dir):
        rel_root = Path(root).relative_to(shell_dir)
        if rel_root.as_posix() == shell.CHROME_PAGE:
            dirs[:] = []
            continue
        for name in files:
            rel = (rel_root / name).as_posix()
            if rel in skip:
                continue
            assets.link_or_copy(Path(root) / name, out / rel)
            copied.add(rel)
    return copied


def _remove_shell_files(out: Path, names: Iterable[str]) -> None:
    """Delete files an earlier shell put in the site (another engine's or version's assets), and
    the folders that leaves empty."""
    for rel in names:
        path = out / rel
        path.unlink(missing_ok=True)
        for folder in path.parents:
            if folder == out or not folder.is_dir() or any(folder.iterdir()):
                break
            folder.rmdir()


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


def _group(
    titles: dict[str, str],
    summaries: dict[str, ExperimentSummary],
    metric_names: dict[str, tuple[str | None, ...]],
) -> list[pages.ProjectInfo]:
    """The projects (runs newest first); one whose runs were all dropped keeps its (empty) page."""
    grouped = {
        project.slug: project
        for project in pages.group_projects(summaries.values(), metric_names=metric_names)
    }
    projects = [
        grouped.get(slug) or pages.ProjectInfo(title, slug, metric_names=metric_names.get(slug, ()))
        for slug, title in titles.items()
    ]
    return sorted(projects, key=lambda p: (p.title.lower(), p.slug))


def _metric_names(
    store: Store, summaries: Iterable[ExperimentSummary], default: str | None, notices: list[str]
) -> dict[str, tuple[str | None, ...]]:
    """Each project's primary metric choices, by slug: its ``project.json`` setting, then
    ``default`` (``--primary-metric``). A settings file that cannot be used is a notice."""
    titles = {summary.slug: summary.project for summary in summaries}
    names = {}
    for slug, title in sorted(titles.items()):
        try:
            setting = read_settings(store.root, title).get("primary_metric")
        except ProjectSettingsError as err:
            logger.warning("%s", err)
            notices.append(f"ignored the settings of project {title!r}: {err}")
            setting = None
        names[slug] = tuple(name for name in (setting, default) if name)
    return names


def build_site(
    store: Store,
    out: str | os.PathLike[str],
    *,
    projects: Iterable[str] | None = None,
    incremental: bool = True,
    zip_bundles: bool = True,
    progress: ProgressCallback | None = None,
    force: bool = False,
    engine: str | Engine | None = None,
    primary_metric: str | None = None,
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
        engine: The site engine or its name (default: ``$MODELKB_ENGINE``, else ``mkdocs``).
        primary_metric: The metric name projects are ranked by unless their own setting names
            one (see :mod:`modelkb.site_builder.primary_metric`); default: accuracy, then loss.

    Returns:
        A :class:`BuildReport`; unreadable bundles are listed in ``problems`` and skipped.

    Raises:
        UnknownEngineError: ``engine`` names no engine.
        MissingExtraError: The engine is not installed.
        SiteEngineError: The engine failed.
    """
    started = time.perf_counter()
    site_engine = engine if isinstance(engine, Engine) else engine_named(engine)
    out_dir = Path(out).resolve()
    check_output_folder(out_dir, store, force=force)
    work = out_dir / WORK_DIR
    work.mkdir(parents=True, exist_ok=True)
    cache = BuildCache(work)
    cache.load()  # also what the last build wrote, so a full build still removes stale pages
    built_ids, built_slugs = list(cache.runs), list(cache.projects)
    if not incremental:
        cache.render_key, cache.projects = "", {}

    store.sync()  # a team store pulls what changed in S3 first
    # Cached runs come back as stubs (no cells); a project's full summaries are read below only
    # when it must be redone.
    result = scan(store, previous=cache.stubs() if incremental else {}, projects=projects)
    summaries = result.summaries
    titles = {s.slug: s.project for s in summaries.values()}
    slugs = sorted(titles)
    notices: list[str] = []
    metric_names = _metric_names(store, summaries.values(), primary_metric, notices)

    shell_dir, shell_rebuilt = shell.build_shell(work, slugs, site_engine)
    shell_pages = shell.shell_pages(slugs)
    filled = {page.url + "index.html" for page in shell_pages} | {site_engine.search_index}
    shell_files = cache.shell_files
    if shell_rebuilt or not (out_dir / "assets").is_dir():
        copied = _copy_shell_static(shell_dir, out_dir, filled)
        shell_files = sorted(copied | {site_engine.search_index})
        _remove_shell_files(out_dir, set(cache.shell_files) - set(shell_files) - filled)
    assets.install_netron(out_dir)
    notices += assets.install_vendor(out_dir)

    chrome = shell.Chrome.from_shell(shell_dir, site_engine.name)
    render_key = f"{chrome.sha}:{_templates_fingerprint()}:{int(zip_bundles)}"
    # A project's primary metric choices reach its experiment pages' headers: new choices
    # re-render that project's pages (and only those).
    names = {slug: list(choice) for slug, choice in metric_names.items()}
    renamed = {slug for slug, choice in names.items() if cache.metric_names.get(slug, []) != choice}
    if render_key != cache.render_key:
        todo = list(summaries)
    else:
        # One listing, not a stat per page: a deleted page folder is rendered again.
        pages_dir = out_dir / "experiments"
        present = set(os.listdir(pages_dir)) if pages_dir.is_dir() else set()
        todo = [
            key
            for key in summaries
            if key in result.changed or summaries[key].slug in renamed or key not in present
        ]
    redo = _projects_to_redo(cache, out_dir, summaries, result.changed, todo, render_key)
    _hydrate(cache, summaries, redo, result.changed, result.problems)

    # a team store's files, all fetched at once (one by one in the loop, 10,000 runs took minutes)
    todo = [key for key in todo if key in summaries]  # _hydrate may have dropped unreadable ones
    unrenderable: list[Problem] = store.prefetch(
        (summaries[key].path, None if zip_bundles else _page_files(result.metadata.get(key)))
        for key in todo
    )
    for problem in unrenderable:
        summaries.pop(Path(problem.path).name, None)
    todo = [key for key in todo if key in summaries]
    total = len(todo)
    for done, experiment_id in enumerate(todo, 1):
        summary = summaries.get(experiment_id)
        if summary is None:  # unreadable now: already a problem
            continue
        try:
            metadata = result.metadata.get(experiment_id)
            if metadata is None:
                metadata = load_metadata(summary)
            render_experiment_dir(
                summary,
                metadata,
                chrome,
                out_dir,
                zip_bundle=zip_bundles,
                metric_names=metric_names.get(summary.slug, ()),
            )
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
    result.problems.extend(unrenderable)
    catalog = _group(titles, summaries, metric_names)

    _remove_stale(out_dir, summaries, set(slugs), built_ids, built_slugs)
    project_keys = {project.slug: _project_key(project, render_key) for project in catalog}
    recent_runs: list[ExperimentSummary] = []
    fragments: list[str] = []
    for project in catalog:
        if project.slug not in redo:
            digest = cache.digests[project.slug]
            recent_runs.extend(hydrate_project(project, digest))
            fragments.append(cache.search_fragment(project.slug) or "[]")
            continue
        _write_project_data(out_dir, project, project_keys[project.slug])
        recent_runs.extend(pages.recent(project.experiments))
        fragments.append(
            cache.save_project(
                project.slug,
                project.experiments,
                project_digest(project),
                [experiment_entry(s, site_engine) for s in project.experiments],
                _write_text,
            )
        )
    _fill_shell(
        shell_dir, out_dir, shell_pages, catalog, recent_runs, len(summaries), result.problems
    )
    write_search_index(
        shell_dir / site_engine.search_index,
        out_dir / site_engine.search_index,
        catalog,
        fragments,
        site_engine,
    )

    if (
        redo
        or render_key != cache.render_key
        or project_keys != cache.projects
        or summaries.keys() != cache.runs.keys()
        or shell_files != cache.shell_files
        or names != cache.metric_names
    ):
        cache.shell_files = shell_files
        cache.metric_names = names
        cache.save(
            render_key=render_key,
            projects=project_keys,
            summaries=summaries.values(),
            write_text=_write_text,
        )
    return BuildReport(
        out=out_dir,
        experiments=len(summaries),
        rendered=total,
        projects=len(catalog),
        engine=site_engine.name,
        shell_rebuilt=shell_rebuilt,
        problems=list(result.problems),
        notices=notices,
        seconds=time.perf_counter() - started,
    )


def _project_key(project: pages.ProjectInfo, render_key: str) -> str:
    """Changes exactly when the project's set of runs (ids and stamps) or the render key does."""
    runs = sorted([s.id, s.stamp] for s in project.experiments)
    return hashlib.sha256(json.dumps(runs).encode()).hexdigest()[:16] + ":" + render_key


def _projects_to_redo(
    cache: BuildCache,
    out: Path,
    summaries: dict[str, ExperimentSummary],
    changed: set[str],
    todo: list[str],
    render_key: str,
) -> set[str]:
    """Projects whose table, checklist, digest and search entries must be rebuilt: new, changed
    or removed runs, a page to render, a new render key, or a file or cache entry missing."""
    slugs = {s.slug for s in summaries.values()}
    if render_key != cache.render_key:
        return slugs
    redo = {summaries[i].slug for i in changed} | {summaries[i].slug for i in todo}
    redo |= {slug for i, (slug, _path, _stamp) in cache.runs.items() if i not in summaries}
    for slug in slugs - redo:
        if (
            slug not in cache.digests
            or slug not in cache.projects
            or cache.search_fragment(slug) is None
            or not (out / "data" / "projects" / slug / table_data.MANIFEST).is_file()
            or not (out / "data" / "checklist" / f"{slug}.json").is_file()
        ):
            redo.add(slug)
    return redo & slugs


def _hydrate(
    cache: BuildCache,
    summaries: dict[str, ExperimentSummary],
    redo: set[str],
    changed: set[str],
    problems: list[Problem],
) -> None:
    """Replace the stubs of the projects to redo by their cached full summaries (a run missing
    from the cache is read again from its bundle)."""
    stubs: dict[str, list[str]] = {}
    for experiment_id, summary in summaries.items():
        if summary.slug in redo and experiment_id not in changed:
            stubs.setdefault(summary.slug, []).append(experiment_id)
    for slug, ids in stubs.items():
        shard = cache.shard(slug)
        for experiment_id in ids:
            full = shard.get(experiment_id)
            if full is not None and full.stamp == summaries[experiment_id].stamp:
                summaries[experiment_id] = full
                continue
            try:
                summaries[experiment_id] = resummarize(summaries[experiment_id])
            except (BundleError, OSError, ValueError, KeyError, TypeError) as err:
                problems.append(Problem.from_error(summaries[experiment_id].path, err))
                del summaries[experiment_id]


def _write_project_data(out: Path, project: pages.ProjectInfo, key: str) -> None:
    """The project's table data and checklist data."""
    (out / "data" / "projects" / f"{project.slug}.json").unlink(missing_ok=True)  # pre-columns
    table_data.write_project_table(
        out / "data" / "projects" / project.slug,
        title=project.title,
        slug=project.slug,
        version=key.split(":", 1)[0],
        experiments=project.experiments,
        write_text=_write_text,
    )
    _write_text(
        out / "data" / "checklist" / f"{project.slug}.json",
        json.dumps(
            site_checklist.project_checklist(project.experiments),
            ensure_ascii=False,
            separators=(",", ":"),
            allow_nan=False,
            default=str,
        ),
    )


def _fill_shell(
    shell_dir: Path,
    out: Path,
    shell_pages: list[shell.ShellPage],
    catalog: list[pages.ProjectInfo],
    recent_runs: list[ExperimentSummary],
    count: int,
    problems: list[Problem],
) -> None:
    by_slug = {project.slug: project for project in catalog}
    plots = assets.echarts_installed()
    bodies: dict[str, tuple[str, str | None]] = {
        "": (pages.render_dashboard(catalog, recent_runs), None),
        "projects/": (pages.render_projects_index(catalog), None),
        "compare/": (pages.render_compare(), None),
        "about/": (
            pages.render_about(
                version=modelkb.__version__, count=count, problems=[str(p) for p in problems]
            ),
            None,
        ),
    }
    for slug, project in by_slug.items():
        body = pages.render_project(project, plots=plots)
        bodies[f"projects/{slug}/"] = (body, escape(project.title))
    for page in shell_pages:
        if page.url not in bodies:
            continue
        body, title = bodies[page.url]
        html = (shell_dir / page.url / "index.html").read_text(encoding="utf-8")
        _write_text(out / page.url / "index.html", shell.fill(html, body, title))
