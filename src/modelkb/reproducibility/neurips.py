"""The NeurIPS paper checklist (16 questions), drafted from one run or a project's runs.

ModelKB answers what its bundles record: experimental details from the hyperparameters and data
splits, statistical significance from a ``modelkb repeat`` group, compute from the host, time
and peak memory, code from the captured source and lockfile, licenses from the locked
distributions. Every other question is ``needs_authors`` with what to write. Each answer is a draft
for the authors to review, in the form the paper needs (:func:`render_tex`: the template's
``\\answerYes{}`` / ``\\answerNo{}`` / ``\\answerNA{}`` / ``\\answerTODO{}`` macros).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata as importlib_metadata
from typing import Any

from modelkb.bundle import LOCK_FILE, Bundle
from modelkb.ids import utc_now

ANSWERS = ("yes", "no", "na", "needs_authors")

# (id, title, question, what the authors write when ModelKB cannot answer)
QUESTIONS: tuple[tuple[str, str, str, str], ...] = (
    (
        "claims",
        "Claims",
        "Do the main claims made in the abstract and introduction accurately reflect the paper's "
        "contributions and scope?",
        "Say where the paper states its claims and how the results support them.",
    ),
    (
        "limitations",
        "Limitations",
        "Does the paper discuss the limitations of the work performed by the authors?",
        "Point to the limitations section: assumptions, data sets tested, where the method fails.",
    ),
    (
        "theory",
        "Theory assumptions and proofs",
        "For each theoretical result, does the paper provide the full set of assumptions and a "
        "complete (and correct) proof?",
        "Answer NA if the paper has no theoretical results; else point to the proofs.",
    ),
    (
        "reproducibility",
        "Experimental result reproducibility",
        "Does the paper fully disclose all the information needed to reproduce the main "
        "experimental results of the paper to the extent that it affects the main claims and/or "
        "conclusions of the paper (regardless of whether the code and data are provided or not)?",
        "",
    ),
    (
        "open_access",
        "Open access to data and code",
        "Does the paper provide open access to the data and code, with sufficient instructions to "
        "faithfully reproduce the main experimental results, as described in supplemental "
        "material?",
        "",
    ),
    (
        "experimental_details",
        "Experimental setting/details",
        "Does the paper specify all the training and test details (e.g., data splits, "
        "hyperparameters, how they were chosen, type of optimizer, etc.) necessary to understand "
        "the results?",
        "",
    ),
    (
        "significance",
        "Experiment statistical significance",
        "Does the paper report error bars suitably and correctly defined or other appropriate "
        "information about the statistical significance of the experiments?",
        "",
    ),
    (
        "compute",
        "Experiments compute resources",
        "For each experiment, does the paper provide sufficient information on the computer "
        "resources (type of compute workers, memory, time of execution) needed to reproduce the "
        "experiments?",
        "",
    ),
    (
        "ethics",
        "Code of ethics",
        "Does the research conducted in the paper conform, in every respect, with the NeurIPS Code "
        "of Ethics https://neurips.cc/public/EthicsGuidelines?",
        "Confirm after reading the Code of Ethics; explain any special circumstances.",
    ),
    (
        "broader_impacts",
        "Broader impacts",
        "Does the paper discuss both potential positive societal impacts and negative societal "
        "impacts of the work performed?",
        "Point to the discussion of positive and negative societal impacts, or say why there are none.",
    ),
    (
        "safeguards",
        "Safeguards",
        "Does the paper describe safeguards that have been put in place for responsible release of "
        "data or models that have a high risk for misuse (e.g., pretrained language models, image "
        "generators, or scraped datasets)?",
        "Answer NA when the released models and data pose no such risk; else describe the safeguards.",
    ),
    (
        "licenses",
        "Licenses for existing assets",
        "Are the creators or original owners of assets (e.g., code, data, models), used in the "
        "paper, properly credited and are the license and terms of use explicitly mentioned and "
        "properly respected?",
        "",
    ),
    (
        "new_assets",
        "New assets",
        "Are new assets introduced in the paper well documented and is the documentation provided "
        "alongside the assets?",
        "",
    ),
    (
        "human_subjects",
        "Crowdsourcing and research with human subjects",
        "For crowdsourcing experiments and research with human subjects, does the paper include the "
        "full text of instructions given to participants and screenshots, if applicable, as well as "
        "details about compensation (if any)?",
        "Answer NA if no crowdsourcing or human subjects were involved.",
    ),
    (
        "irb",
        "Institutional review board (IRB) approvals or equivalent for research with human subjects",
        "Does the paper describe potential risks incurred by study participants, whether such risks "
        "were disclosed to the subjects, and whether Institutional Review Board (IRB) approvals (or "
        "an equivalent approval/review based on the requirements of your country or institution) "
        "were obtained?",
        "Answer NA if no human subjects were involved.",
    ),
    (
        "llm_usage",
        "Declaration of LLM usage",
        "Does the paper describe the usage of LLMs if it is an important, original, or non-standard "
        "component of the core methods in this research?",
        "Answer NA if LLMs were used only for writing, editing or formatting.",
    ),
)


def paper_checklist(
    runs: Sequence[tuple[Bundle, Mapping[str, Any]]], *, scope: str
) -> dict[str, Any]:
    """Draft the NeurIPS paper checklist for ``runs``.

    Args:
        runs: ``(bundle, reproducibility checklist)`` of each run answered for (one run, or every
            sealed run of a project), the checklists from
            :func:`~modelkb.reproducibility.checklist.checklist`.
        scope: What the answers cover, for the title (``"Digits / 01j..."``, ``"project Digits"``).

    Returns:
        ``{"list": "neurips", "scope", "computed", "runs", "items": [16 items], "summary"}``; each
        item is ``{"id", "title", "question", "answer", "justification", "how_to_complete"?}``.
    """
    if not runs:
        raise ValueError("no runs to answer for")
    items = []
    for item_id, title, question, authors in QUESTIONS:
        builder = _BUILDERS.get(item_id)
        answer, justification, how = (
            builder(runs)
            if builder
            else ("needs_authors", "", authors or "Answer from the paper itself.")
        )
        entry = {
            "id": item_id,
            "title": title,
            "question": question,
            "answer": answer,
            "justification": justification,
        }
        if how:
            entry["how_to_complete"] = how
        items.append(entry)
    return {
        "list": "neurips",
        "scope": scope,
        "computed": utc_now(),
        "runs": [bundle.id for bundle, _ in runs],
        "items": items,
        "summary": dict(Counter(item["answer"] for item in items)),
    }


# -- answers drafted from the bundles -----------------------------------------------------------
Answer = tuple[str, str, str | None]


def _items(repro: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in repro["items"]}


def _lacking(runs: Sequence[tuple[Bundle, Mapping[str, Any]]], ids: Sequence[str]) -> list[str]:
    """``"01j... lacks source code: ..."`` for every run whose reproducibility item is missing."""
    out = []
    for bundle, repro in runs:
        for item_id in ids:
            item = _items(repro)[item_id]
            if item["status"] == "missing":
                who = f"{bundle.id} lacks " if len(runs) > 1 else ""
                out.append(f"{who}{item['title'].lower()}: {item['text']}")
    return out


def _authors_words(
    runs: Sequence[tuple[Bundle, Mapping[str, Any]]], ids: Sequence[str]
) -> str | None:
    """What the authors still add to these items (their ``how_to_complete``), once each."""
    wanted = {
        _items(repro)[item_id]["how_to_complete"]
        for _, repro in runs
        for item_id in ids
        if _items(repro)[item_id]["status"] == "needs_user_input"
    }
    return " ".join(sorted(wanted)) or None


def _of_runs(runs: Sequence[Any]) -> str:
    return "this run" if len(runs) == 1 else f"each of the {len(runs)} runs"


def _reproducibility(runs: Sequence[tuple[Bundle, Mapping[str, Any]]]) -> Answer:
    needed = ("code", "dependencies", "hyperparameters", "data_splits", "data_preprocessing")
    lacking = _lacking(runs, needed)
    first = runs[0][0].id
    if lacking:
        return (
            "no",
            "Not recorded: " + "; ".join(lacking[:5]),
            "Record what is missing (see `modelkb checklist ID --list reproducibility`).",
        )
    return (
        "yes",
        f"The bundle of {_of_runs(runs)} records the training source, a lockfile of every "
        "installed distribution, all hyperparameters, the seed, the data splits and the "
        f"preprocessing; `modelkb reproduce {first}` re-runs it from the bundle.",
        _authors_words(runs, needed),
    )


def _open_access(runs: Sequence[tuple[Bundle, Mapping[str, Any]]]) -> Answer:
    code = _lacking(runs, ("code", "dependencies"))
    data = _lacking(runs, ("data_location",))
    if code:
        return (
            "no",
            "Not recorded: " + "; ".join(code[:5]),
            "Keep capture_code=True.",
        )
    if data:
        return (
            "needs_authors",
            f"The training source and lockfile of {_of_runs(runs)} are in its bundle "
            "(`modelkb push` publishes it); no public data location was recorded.",
            "State where the data can be obtained: exp.set_dataset(location='https://...').",
        )
    where = sorted({str(_items(repro)["data_location"]["text"]) for _, repro in runs})
    return (
        "yes",
        f"The training source and lockfile of {_of_runs(runs)} are in its bundle (`modelkb push` "
        f"publishes it, `modelkb clone` fetches it); data: {'; '.join(where)}.",
        "Confirm that the code and data are released with the paper.",
    )


def _experimental_details(runs: Sequence[tuple[Bundle, Mapping[str, Any]]]) -> Answer:
    lacking = _lacking(runs, ("hyperparameters", "data_splits"))
    if lacking:
        return ("no", "; ".join(lacking[:5]), "Record the hyperparameters and data splits.")
    first = _items(runs[-1][1])
    text = (
        f"Hyperparameters: {first['hyperparameters']['text']}. "
        f"Data splits: {first['data_splits']['text']}."
    )
    if len(runs) > 1:
        text = f"Over the {len(runs)} runs of the project; the latest: {text}"
    return (
        "yes",
        text,
        _authors_words(runs, ("hyperparameters", "data_splits"))
        or "Say how the hyperparameters were chosen (search method, budget).",
    )


def _significance(runs: Sequence[tuple[Bundle, Mapping[str, Any]]]) -> Answer:
    filled = {}
    for bundle, repro in runs:
        variation = _items(repro)["variation"]
        if variation["status"] == "filled":
            filled[str(bundle.metadata.get("group"))] = variation["text"]
        elif variation["status"] == "project_level":  # the catalog's page: the group is elsewhere
            filled[str(bundle.metadata.get("group"))] = "see the project's checklist"
    if filled:
        groups = "; ".join(f"group {group}: {text}" for group, text in sorted(filled.items()))
        return (
            "yes",
            f"Mean ± standard deviation over runs with different seeds ({groups}).",
            "Say in the paper that the error bars are one standard deviation over seeds.",
        )
    first = runs[0][0].id
    return (
        "no",
        "Each reported result comes from a single run; no mean or spread over seeds was recorded.",
        f"Run `modelkb repeat {first} -n 5` to get mean ± std over seeds.",
    )


def _compute(runs: Sequence[tuple[Bundle, Mapping[str, Any]]]) -> Answer:
    lacking = _lacking(runs, ("infrastructure",))
    if lacking:
        return ("no", "; ".join(lacking[:5]), "Keep Experiment(capture_environment=True).")
    hosts = sorted({str(_items(r)["infrastructure"]["text"]) for _, r in runs})
    seconds = [b.metadata.get("duration_s") for b, _ in runs]
    total = sum(s for s in seconds if isinstance(s, (int, float)))
    peaks = [
        (b.metadata.get("resources") or {}).get("peak_rss_mb")
        for b, _ in runs
        if isinstance((b.metadata.get("resources") or {}).get("peak_rss_mb"), (int, float))
    ]
    memory = f"; peak memory {max(peaks):.0f} MB" if peaks else ""
    return (
        "yes",
        f"{'; '.join(hosts)}. Training time {_duration(total)} for {_of_runs(runs)} "
        f"in total{memory}.",
        None,
    )


def _licenses(runs: Sequence[tuple[Bundle, Mapping[str, Any]]]) -> Answer:
    locked: dict[str, str] = {}
    for bundle, _ in runs:
        locked.update(_locked_versions(bundle))
    if not locked:
        return (
            "needs_authors",
            "No lockfile was recorded, so the licenses of the code used are not known.",
            "Credit the data sets, code and models used, with their licenses.",
        )
    licenses, unknown = Counter(), []
    for name, version in sorted(locked.items()):
        found = _license_of(name, version)
        if found:
            licenses[found] += 1
        else:
            unknown.append(f"{name}=={version}")
    shown = ", ".join(f"{name} ({count})" for name, count in licenses.most_common(8))
    text = f"The {len(locked)} locked dependencies are under: {shown}"
    if unknown:
        text += f"; not known here for {len(unknown)}: {', '.join(unknown[:8])}"
    return (
        "needs_authors" if unknown else "yes",
        text + ".",
        "Credit the data sets and pretrained models used, with their licenses"
        + (", and look up the unknown licenses." if unknown else "."),
    )


def _new_assets(runs: Sequence[tuple[Bundle, Mapping[str, Any]]]) -> Answer:
    cards = [b for b, _ in runs if (b.path / "README.md").is_file()]
    if not cards:
        return ("needs_authors", "No model card was written.", "Document the released models.")
    share = "" if len(runs) == 1 else f" ({len(cards)} of {len(runs)} runs)"
    return (
        "yes",
        "The model card (README.md: architecture, data, hyperparameters, metrics) and "
        f"metadata.json ship with each released model{share}.",
        "Add the intended use and the license of the released models to the card.",
    )


_BUILDERS: dict[str, Callable[[Sequence[tuple[Bundle, Mapping[str, Any]]]], Answer]] = {
    "reproducibility": _reproducibility,
    "open_access": _open_access,
    "experimental_details": _experimental_details,
    "significance": _significance,
    "compute": _compute,
    "licenses": _licenses,
    "new_assets": _new_assets,
}


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _locked_versions(bundle: Bundle) -> dict[str, str]:
    try:
        text = (bundle.path / LOCK_FILE).read_text(encoding="utf-8")
    except OSError:
        return {}
    pins = {}
    for line in text.splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and name and not name.startswith("#"):
            pins[name] = version
    return pins


@functools.lru_cache(maxsize=4096)
def _license_of(name: str, version: str) -> str | None:
    """The license of an installed distribution of exactly that version (never another version's)."""
    try:
        dist = importlib_metadata.distribution(name)
    except importlib_metadata.PackageNotFoundError:
        return None
    if dist.version != version:
        return None
    meta = dist.metadata
    expression = meta.get("License-Expression")
    if expression:
        return expression.strip()
    classifiers = [
        c.rsplit("::", 1)[-1].strip()
        for c in meta.get_all("Classifier") or []
        if c.startswith("License ::") and c.count("::") > 1
    ]
    if classifiers:
        return _LICENSE_NAMES.get(classifiers[0], classifiers[0])
    text = (meta.get("License") or "").strip()
    return text.splitlines()[0][:40] if text and text.upper() != "UNKNOWN" else None


_LICENSE_NAMES = {
    "MIT License": "MIT",
    "BSD License": "BSD",
    "Apache Software License": "Apache",
    "Python Software Foundation License": "PSF",
    "ISC License (ISCL)": "ISC",
}
"""Trove classifier names shortened to the usual ones (the version is kept only where stated)."""


# -- rendering ------------------------------------------------------------------------------------
_MARK = {"yes": "[Yes]", "no": "[No]", "na": "[NA]", "needs_authors": "[TODO] needs the authors"}
_TEX_ANSWER = {
    "yes": r"\answerYes{}",
    "no": r"\answerNo{}",
    "na": r"\answerNA{}",
    "needs_authors": r"\answerTODO{}",
}
_TEX_MACROS = r"""% The NeurIPS style defines these; \providecommand keeps its definitions when it is loaded.
\providecommand{\answerYes}[1][]{\textcolor{blue}{[Yes] #1}}
\providecommand{\answerNo}[1][]{\textcolor{orange}{[No] #1}}
\providecommand{\answerNA}[1][]{\textcolor{gray}{[NA] #1}}
\providecommand{\answerTODO}[1][]{\textcolor{red}{\bf [TODO]}}
\providecommand{\justificationTODO}[1][]{\textcolor{red}{\bf [TODO]}}
"""


def render_markdown(result: Mapping[str, Any]) -> str:
    """The checklist as Markdown: question, drafted answer, justification, what to complete."""
    summary = ", ".join(f"{n} {answer}" for answer, n in sorted(result["summary"].items()))
    lines = [f"# NeurIPS paper checklist — {result['scope']}", "", f"16 questions: {summary}.", ""]
    for number, item in enumerate(result["items"], 1):
        lines.append(f"{number}. **{item['title']}** {_MARK[item['answer']]}")
        lines.append(f"   - _{item['question']}_")
        if item["justification"]:
            lines.append(f"   - Justification: {item['justification']}")
        if item.get("how_to_complete"):
            lines.append(f"   - To complete: {item['how_to_complete']}")
    return "\n".join(lines) + "\n"


def render_tex(result: Mapping[str, Any]) -> str:
    """The checklist in the LaTeX form NeurIPS papers include (``\\answerYes{}`` ... macros)."""
    lines = [
        f"% NeurIPS paper checklist for {_comment(result['scope'])}, drafted by ModelKB on "
        f"{result['computed']}.",
        "% Review every answer; replace each \\answerTODO{} and \\justificationTODO{}.",
        _TEX_MACROS,
        r"\section*{NeurIPS Paper Checklist}",
        "",
        r"\begin{enumerate}",
        "",
    ]
    for item in result["items"]:
        justification = (
            latex_escape(item["justification"])
            if item["justification"]
            else r"\justificationTODO{}"
        )
        lines += [
            rf"\item {{\bf {latex_escape(item['title'])}}}",
            rf"    \item[] Question: {latex_escape(item['question'])}",
            rf"    \item[] Answer: {_TEX_ANSWER[item['answer']]}",
            rf"    \item[] Justification: {justification}",
        ]
        if item.get("how_to_complete"):
            lines.append(f"    % To complete: {_comment(item['how_to_complete'])}")
        lines.append("")
    lines.append(r"\end{enumerate}")
    return "\n".join(lines) + "\n"


_TEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "#": r"\#",
    "^": r"\^{}",
    "_": r"\_",
    "%": r"\%",
    "~": r"\textasciitilde{}",
    "±": r"\ensuremath{\pm}",
    "→": r"\ensuremath{\to}",
    "—": "---",
    "–": "--",
}
_TEX_RE = re.compile("|".join(re.escape(c) for c in _TEX_SPECIALS))


def latex_escape(text: str) -> str:
    """``text`` as LaTeX prose: every special character escaped, control characters dropped."""
    clean = "".join(c for c in str(text) if c >= " " or c in "\t")
    escaped = _TEX_RE.sub(lambda m: _TEX_SPECIALS[m.group()], clean)
    return re.sub(r"`([^`]+)`", r"\\texttt{\1}", escaped)  # `modelkb repeat ID`: a command


def _comment(text: str) -> str:
    """Text for a ``%`` comment: one line (a newline would end the comment)."""
    return " ".join(str(text).split())
