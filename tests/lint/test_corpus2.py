"""Precision on real code: the corpus in tests/lint/corpus2 (idiomatic Lightning 2.x in the styles of public
projects) lints clean, and one-line changes of the shapes that used to be judged wrong are reported.

Each mutation is a golden case of issue 13's "Precision on real code": the clean corpus shows the rule does
not fire on correct code (a class of the same name fitted elsewhere, a Trainer subclass's own argument, a
registered strategy, a dynamic `log_dict` in another module, a callback hook's `module.log`...), and the
mutation shows it still fires on the wrong variant.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from torchbolt_lsp.analysis.installed import installed_sources
from torchbolt_lsp.lint import LintConfig, Project, file_facts_of, lint_source
from torchbolt_lsp.lint import config as lint_config
from torchbolt_lsp.lint.cli import check_paths, internal_errors, iter_python_files

CORPUS = Path(__file__).parent / "corpus2"
LIGHTNING = importlib.util.find_spec("lightning") is not None
needs_lightning = pytest.mark.skipif(not LIGHTNING, reason="reads the installed Lightning's source")


def _files() -> list[Path]:
    return iter_python_files([str(CORPUS)])


def _project(texts: dict[Path, str]) -> Project:
    project = Project.of_files({}, [str(CORPUS)], installed_sources())
    for path, text in texts.items():
        facts = file_facts_of(text, str(path), project)
        assert facts is not None, path
        project.put(str(path), facts)
    return project


def test_corpus_has_at_least_40_files_and_no_findings():
    files = _files()
    assert len(files) >= 40
    reports, _, _ = check_paths(files, lint_config.load(CORPUS))
    assert [f"{r.path}:{f.line} {f.code} {f.message}" for r in reports for f in r.findings] == []
    assert internal_errors == []


@needs_lightning
def test_the_rules_see_the_corpus():
    texts = {p: p.read_text() for p in _files()}
    project = _project(texts)

    def resolved(rel: str, name: str):
        return project.resolved(str(CORPUS / rel), name)

    assert resolved("strategies/trainer_sub.py", "ResearchTrainer").kind == "trainer"
    boring = resolved("models/boring_subclass.py", "LoggingBoringModel")
    assert boring.kind == "module" and boring.complete
    assert {"configure_optimizers", "train_dataloader"} <= boring.methods  # inherited from BoringModel
    assert resolved("callbacks/logging_callbacks.py", "BatchTimer").kind == "callback"
    assert resolved("callbacks/writers.py", "EpochWriter").kind == "callback"
    assert resolved("data/boring_data.py", "ShortBoringData").kind == "datamodule"
    assert resolved("models/gan.py", "GAN").manual_optimization  # `= not manual`
    # which calls reach which class: the two `Model` classes are told apart
    assert project.run_fns(str(CORPUS / "models/eval_only.py"), "Model") == {"validate", "test"}
    assert "fit" in project.run_fns(str(CORPUS / "models/trainable.py"), "Model")
    assert project.run_fns(str(CORPUS / "models/predict_only.py"), "Predictor") == {"predict"}
    facts = project.get(str(CORPUS / "strategies/custom.py"))
    assert facts is not None and set(facts.registered) == {"quiet_ddp", "counting_cpu"}
    timer = project.get(str(CORPUS / "callbacks/logging_callbacks.py"))
    assert timer is not None and {"batch_time", "val_epoch_marker"} <= {m.name for m in timer.logged}


#: (file changed, old text, new text, file linted, expected code): the wrong variant of each correct shape.
MUTATIONS = [
    ("strategies/trainer_sub.py", "max_epochs=3", "gpus=1, max_epochs=3", None, "TB502"),
    ("strategies/trainer_sub.py", "max_epochs=3", "max_epoch=3", None, "TB501"),
    ("models/boring_subclass.py", "def on_train_epoch_end(self):", "def training_epoch_end(self, outputs):",
     None, "TB105"),
    ("scripts/evaluate.py", "trainer.validate(wrapper", "trainer.fit(wrapper", "models/eval_only.py", "TB102"),
    ("scripts/train_registered.py", 'strategy="quiet_ddp"', 'strategy="quiet_dpp"', None, "TB505"),
    ("scripts/train_registered.py", 'accelerator="counting_cpu"', 'accelerator="countin_cpu"', None, "TB505"),
    ("scripts/gan_main.py", 'monitor="g_loss"', 'monitor="g_los"', None, "TB404"),
    ("models/classifier.py", '"monitor": "val_MulticlassAccuracy"', '"monitor": "test_MulticlassAccuracy"',
     None, "TB404"),
    ("models/grad_norms.py", 'monitor="grad_2.0_norm_total"', 'monitor="grad_total"', None, "TB404"),
    ("scripts/callbacks_main.py", 'monitor="batch_time"', 'monitor="batch_tme"', None, "TB404"),
    ("models/dict_metrics.py", 'monitor="val_mae"', 'monitor="valid_mae"', None, "TB404"),
    ("models/gan.py", "        self.automatic_optimization = not manual\n", "", None, "TB302"),
    ("tests_style/test_trainer_args.py", 'limit_val_batches=limit,', 'limit_val_batches=-1,', None, "TB507"),
]


@needs_lightning
@pytest.mark.parametrize(("changed", "old", "new", "linted", "code"), MUTATIONS,
                         ids=[f"{m[4]}-{Path(m[0]).stem}-{i}" for i, m in enumerate(MUTATIONS)])
def test_the_wrong_variant_is_reported(changed: str, old: str, new: str, linted: str | None, code: str):
    texts = {p: p.read_text() for p in _files()}
    target = CORPUS / changed
    assert old in texts[target]
    texts[target] = texts[target].replace(old, new, 1)
    project = _project(texts)
    path = CORPUS / (linted or changed)
    findings = lint_source(texts[path], str(path), project, LintConfig()).findings
    assert code in {f.code for f in findings}, [(f.code, f.message) for f in findings]


def test_a_dynamic_log_dict_elsewhere_no_longer_silences_monitors():
    """PerTaskModel logs names built at run time; a typo in a monitor of another module is still reported,
    while a monitor inside PerTaskModel's own hierarchy (or a script fitting it) is excused."""
    texts = {p: p.read_text() for p in _files()}
    project = _project(texts)
    per_task = CORPUS / "models/dynamic_names.py"
    assert project.monitorable(str(per_task), "PerTaskModel") is None
    assert project.monitorable(str(CORPUS / "scripts/per_task_main.py"), None) is None
    assert project.monitorable(str(CORPUS / "scripts/gan_main.py"), None) is not None
    assert project.monitorable(str(CORPUS / "models/classifier.py"), "LitClassifier") is not None


EXPECTED = """
import pytest
from lightning.pytorch import Trainer


def test_rejects_a_typo():
    with pytest.raises(ValueError, match="accelerator"):
        Trainer(accelerator="gpuu")
    Trainer(accelerator="cpuu")


def test_names_the_argument():
    try:
        Trainer(max_epochs=-5)
    except ValueError as err:
        assert "max_epochs" in str(err)
"""


def test_invalid_values_inside_pytest_raises_are_marked_and_can_be_ignored_per_path(tmp_path: Path):
    path = tmp_path / "tests" / "test_args.py"
    path.parent.mkdir()
    path.write_text(EXPECTED)
    findings = lint_source(EXPECTED, str(path), Project(), LintConfig()).findings
    by_line = {f.line: f for f in findings}
    assert set(by_line) == {8, 9, 14}
    assert by_line[14].context == "expected-error"  # a test that catches the error to assert on it
    assert by_line[8].context == "expected-error" and "expects to fail" in by_line[8].message
    assert by_line[8].fixes == ()  # never "fixed": the test wants the error
    assert by_line[9].context == "" and by_line[9].fixes
    (tmp_path / "pyproject.toml").write_text(
        '[tool.torchbolt.lint]\nper-file-ignores = {"tests/*" = ["expected-error"]}\n')
    config = lint_config.load(tmp_path)
    assert [f.line for f in lint_source(EXPECTED, str(path), Project(), config).findings] == [9]
    other = tmp_path / "train.py"
    assert len(lint_source(EXPECTED, str(other), Project(), config).findings) == 3  # only under tests/
    with pytest.raises(lint_config.ConfigError, match="expected-error"):
        lint_config.from_table({"ignore": ["expected-eror"]}, tmp_path)


FAKE_TRAINER = '''
class Trainer:
    def __init__(self, *, max_epochs=None, accelerator="auto", gpus=None, shiny_new_flag=False):
        self.max_epochs = max_epochs
'''
USES_NEW_FLAG = """
import lightning.pytorch as pl

pl.Trainer(shiny_new_flag=True, max_epochs=2)
pl.Trainer(gpus=1)
pl.Trainer(max_epoch=2)
"""


def _fake_site(root: Path) -> Path:
    """A site-packages holding a Lightning whose Trainer accepts one argument the catalog does not know and
    still accepts `gpus` (as a 1.x release would)."""
    site = root / "site"
    trainer = site / "lightning" / "pytorch" / "trainer"
    trainer.mkdir(parents=True)
    (site / "lightning" / "__init__.py").write_text("")
    (site / "lightning" / "pytorch" / "__init__.py").write_text("from lightning.pytorch.trainer import Trainer\n")
    (trainer / "__init__.py").write_text("from lightning.pytorch.trainer.trainer import Trainer\n")
    (trainer / "trainer.py").write_text(FAKE_TRAINER)
    return site


def test_arguments_the_installed_lightning_accepts_are_never_unknown(tmp_path: Path):
    from torchbolt_lsp.analysis.installed import InstalledSources

    installed = InstalledSources("fake-python", search_path=[str(_fake_site(tmp_path))])
    with_lightning = Project.of_files({}, [str(tmp_path)], installed)
    codes = {(f.line, f.code) for f in lint_source(USES_NEW_FLAG, str(tmp_path / "t.py"), with_lightning).findings}
    assert codes == {(6, "TB501")}  # the typo only: shiny_new_flag and gpus are accepted by this Lightning
    catalog_only = {(f.line, f.code) for f in lint_source(USES_NEW_FLAG, str(tmp_path / "t.py"), Project()).findings}
    assert catalog_only == {(4, "TB501"), (5, "TB502"), (6, "TB501")}


def test_the_run_interpreter_is_asked_for_its_path_once(tmp_path: Path):
    import os
    import sys

    from torchbolt_lsp.analysis.installed import InstalledSources, run_interpreter

    python = tmp_path / "bin" / "python"
    python.parent.mkdir()
    os.symlink(sys.executable, python)
    (tmp_path / "pyproject.toml").write_text('[tool.torchbolt.run]\ninterpreter = "bin/python"\n')
    assert run_interpreter(str(tmp_path)) == str(python)
    sources = InstalledSources(str(python))
    assert sources.search_path  # from the subprocess (the interpreter is not the server's own path)
    assert sources.module_file("torchbolt_lsp.lint.facts") is not None or sources.module_file("json") is not None


FLASH = """
import flash

flash.Trainer(gpus=1, serve_sanity_check=True, max_epochs=1)
"""


def test_an_uninstalled_trainer_subclass_gets_the_removed_argument_rule_only(tmp_path: Path):
    findings = lint_source(FLASH, str(tmp_path / "f.py"), Project()).findings
    assert [(f.code, f.message.split("(")[0]) for f in findings] == [("TB502", "flash.Trainer")]


SAME_NAME = {
    "a/model.py": """
        import lightning as L


        class Net(L.LightningModule):
            def validation_step(self, batch, batch_idx):
                self.log("val_loss", 1.0)
    """,
    "b/model.py": """
        import torch
        import lightning as L


        class Net(L.LightningModule):
            def training_step(self, batch, batch_idx):
                return batch.sum()

            def configure_optimizers(self):
                return torch.optim.SGD(self.parameters(), lr=0.1)


        L.Trainer().fit(Net())
    """,
}


@pytest.mark.parametrize("fit_a", [False, True])
def test_a_namesake_fitted_elsewhere_is_not_this_class(tmp_path: Path, fit_a: bool):
    import textwrap

    files = dict(SAME_NAME)
    if fit_a:
        files["c/run.py"] = "import lightning as L\nfrom a.model import Net\n\nL.Trainer().fit(Net())\n"
    project = Project.of_files({}, [str(tmp_path)])
    texts = {}
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        texts[path] = textwrap.dedent(text).lstrip("\n")
        path.write_text(texts[path])
        project.put(str(path), file_facts_of(texts[path], str(path), project))
    a = tmp_path / "a/model.py"
    codes = [f.code for f in lint_source(texts[a], str(a), project, LintConfig(select=("TB102",))).findings]
    assert codes == (["TB102"] if fit_a else [])


@needs_lightning
def test_the_catalog_covers_the_installed_lightning_release():
    """Every argument of the installed Lightning's Trainer and of the catalog's callbacks and loggers (read
    statically, as the rules read them) is in the catalog, unless the class takes **kwargs."""
    from torchbolt.catalog import CALLBACKS, LOGGERS, TRAINER_ARGS

    project = Project.of_files({}, [], installed_sources())
    owners = [("lightning.pytorch.Trainer", {a.name for a in TRAINER_ARGS})]
    owners += [(f"lightning.pytorch.callbacks.{spec.name}", {a.name for a in spec.args}) for spec in CALLBACKS
               if spec.args]
    owners += [(f"lightning.pytorch.loggers.{spec.name}", {a.name for a in spec.args}) for spec in LOGGERS]
    missing = {}
    for qualified, known in owners:
        hit = project.resolve_qualified(qualified)
        assert hit is not None, qualified
        params = project.resolved(hit[0], hit[1].name).init_params or ()
        if any(p.startswith("**") for p in params):
            continue  # accepts anything: the rules read the real signature instead
        extra = {p for p in params if not p.startswith("*")} - known
        if extra:
            missing[qualified] = sorted(extra)
    assert missing == {}
