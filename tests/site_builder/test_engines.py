"""The site engines: choosing one, and the errors when one is unknown, missing or failing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from support.synthetic_store import make_store

from modelkb.cli import cli, main
from modelkb.errors import MissingExtraError, SiteEngineError, UnknownEngineError
from modelkb.site_builder.build import build_site
from modelkb.site_builder.engines import ENGINE_ENV, ENGINES, engine_named
from modelkb.site_builder.shell import shell_config
from modelkb.store import Store


def test_engine_is_chosen_by_name_then_environment_then_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENGINE_ENV, raising=False)
    assert engine_named().name == "mkdocs"
    monkeypatch.setenv(ENGINE_ENV, "Zensical")
    assert engine_named().name == "zensical"
    assert engine_named("mkdocs").name == "mkdocs"
    with pytest.raises(UnknownEngineError, match="engine='hugo'") as err:
        engine_named("hugo")
    assert isinstance(err.value, ValueError) and "--engine" in (err.value.hint or "")


def test_unknown_engine_in_the_environment_is_one_line_with_a_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    make_store(tmp_path / "store", count=2, projects=1)
    monkeypatch.setenv(ENGINE_ENV, "hugo")
    monkeypatch.delenv("MODELKB_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["build", "--store", str(tmp_path / "store"), "--out", str(tmp_path / "site")])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "Error: Expected a site engine among mkdocs, zensical. Received: engine='hugo'" in err
    assert "Hint: Pass --engine mkdocs or --engine zensical" in err


def test_build_refuses_an_unknown_engine_option(tmp_path: Path) -> None:
    args = ["build", "--store", str(tmp_path / "store"), "--engine", "hugo"]
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code == 2 and "'hugo' is not one of 'mkdocs', 'zensical'" in refused.output


def test_missing_zensical_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_store(tmp_path / "store", count=2, projects=1)
    monkeypatch.setitem(sys.modules, "zensical", None)  # as if it were not installed
    with pytest.raises(MissingExtraError, match="'zensical'") as err:
        build_site(Store(tmp_path / "store"), tmp_path / "site", engine="zensical")
    assert err.value.hint == "pip install 'modelkb[site]'"


def test_a_failing_zensical_build_becomes_a_site_engine_error(tmp_path: Path) -> None:
    pytest.importorskip("zensical")
    engine = ENGINES["zensical"]
    config = shell_config(engine)
    config["docs_dir"] = str(tmp_path / "nowhere")  # Zensical refuses a docs_dir that is missing
    path = tmp_path / "mkdocs.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(SiteEngineError, match="the zensical engine could not build") as err:
        engine.run(path)
    assert "nowhere" in str(err.value) and err.value.engine == "zensical"


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_each_engine_builds_the_shell_and_rebuilds_only_on_change(
    name: str, tmp_path: Path
) -> None:
    pytest.importorskip(ENGINES[name].packages[0])
    make_store(tmp_path / "store", count=4, projects=2)
    store = Store(tmp_path / "store")
    first = build_site(store, tmp_path / "site", engine=name, zip_bundles=False)
    assert (first.engine, first.shell_rebuilt, first.experiments) == (name, True, 4)
    again = build_site(store, tmp_path / "site", engine=name, zip_bundles=False)
    assert (again.shell_rebuilt, again.rendered) == (False, 0)
    index = (tmp_path / "site" / ENGINES[name].search_index).read_text(encoding="utf-8")
    assert "experiments/" in index and "projects/" in index


def test_switching_engines_leaves_no_file_of_the_other(tmp_path: Path) -> None:
    pytest.importorskip("zensical")
    make_store(tmp_path / "store", count=2, projects=1)
    store, out = Store(tmp_path / "store"), tmp_path / "site"
    build_site(store, out, engine="mkdocs", zip_bundles=False)
    mkdocs_files = {p.relative_to(out) for p in out.rglob("*") if ".modelkb-build" not in p.parts}
    build_site(store, out, engine="zensical", zip_bundles=False)
    assert not (out / "search" / "search_index.json").exists() and (out / "search.json").is_file()
    build_site(store, out, engine="mkdocs", zip_bundles=False)
    assert not (out / "search.json").exists()
    again = {p.relative_to(out) for p in out.rglob("*") if ".modelkb-build" not in p.parts}
    assert again == mkdocs_files
