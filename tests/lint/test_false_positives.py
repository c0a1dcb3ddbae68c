"""False-positive guard: a corpus of correct Lightning 2.x code (tests/lint/corpus) produces no finding.

The corpus covers manual optimization (GAN), several optimizers and schedulers, multiple dataloaders,
DataModules, callbacks, prediction writers, inherited hooks split across files and every import style.
Two sanity checks keep the guard honest: the rules really see the corpus's Lightning classes, and a
one-line breakage in a base class is reported in the subclass that lives in another file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from torchbolt_lsp.lint import LintConfig, Project, file_facts_of
from torchbolt_lsp.lint.cli import check_paths, internal_errors, iter_python_files

CORPUS = Path(__file__).parent / "corpus"


def _project(paths: list[Path]) -> Project:
    project = Project([str(CORPUS)])
    for p in paths:
        facts = file_facts_of(p.read_text(), str(p), project)
        assert facts is not None, p
        project.put(str(p), facts)
    return project


def test_corpus_has_no_findings():
    files = iter_python_files([str(CORPUS)])
    reports, _, _ = check_paths(files, LintConfig())
    findings = [f"{r.path}:{f.line}:{f.col + 1} {f.code} {f.message}" for r in reports for f in r.findings]
    assert findings == []
    assert internal_errors == []  # no checker crashed on any file


def test_corpus_is_seen_as_lightning_code():
    files = iter_python_files([str(CORPUS)])
    project = _project(files)
    kinds = {c.name: project.resolved(path, c.name).kind for path, f in project.files().items() for c in f.classes}
    lightning = {name for name, kind in kinds.items() if kind is not None}
    assert len(lightning) >= 20, sorted(lightning)
    assert kinds["TinyResNet"] == "module"  # through vision/base.py
    assert kinds["Writer"] == "callback"  # a subclass of a built-in callback
    assert kinds["RandomDataModule"] == "datamodule"
    path = next(p for p, f in project.files().items() for c in f.classes if c.name == "TinyResNet")
    assert {"training_step", "configure_optimizers", "validation_step"} <= project.resolved(path, "TinyResNet").methods


def test_breaking_a_base_class_is_reported_across_files(tmp_path: Path):
    work = tmp_path / "corpus"
    shutil.copytree(CORPUS, work)
    base = work / "vision" / "base.py"
    base.write_text(base.read_text().replace("def configure_optimizers(self):", "def configure_optimiser(self):"))
    reports, _, _ = check_paths(iter_python_files([str(work)]), LintConfig())
    found = {(r.path.name, f.code) for r in reports for f in r.findings}
    assert ("base.py", "TB103") in found
    assert ("base.py", "TB101") in found
    assert ("resnetish.py", "TB101") in found  # the subclass in another file inherits the problem


def test_lightnings_own_package_has_no_findings():
    """Lightning 2.6.6's own callbacks, demos and modules implement hooks exactly as 2.x expects them."""
    import importlib.util

    import pytest

    spec = importlib.util.find_spec("lightning")  # top-level spec: locates the package without importing it
    if spec is None or spec.origin is None:
        pytest.skip("lightning is not installed")
    package = Path(spec.origin).parent / "pytorch"
    files = iter_python_files([str(package)])
    project = _project(files)
    kinds = [project.resolved(path, c.name).kind for path, f in project.files().items() for c in f.classes]
    assert kinds.count("callback") >= 20 and kinds.count("module") >= 3  # the rules really look at them
    reports, _, _ = check_paths(files, LintConfig())
    assert [f"{r.path}:{f.line} {f.code} {f.message}" for r in reports for f in r.findings] == []
