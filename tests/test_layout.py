"""The package layout: stages import only the ground floor and earlier stages, never Snakemake,
and every rule script is a thin adapter of one keyword-only job function of its stage."""

import ast
import importlib
import inspect
import re

import pytest

from conftest import REPO, load_workflow

PACKAGE = REPO / "src" / "diffloc"
# The pipeline order: a module may import its own stage and any stage listed before it.
ORDER = [
    {"config", "seeding", "runtime", "provenance", "__init__"},  # ground floor
    {"physics"},
    {"data"},
    {"simulate"},
    {"training"},
    {"phi"},
    {"localize"},
    {"psi"},
    {"mcmc"},
    {"calibration"},
    {"analyze"},
    {"figures"},
    {"report"},
]
# The ground floor is ordered too: provenance may read the package version, nothing else.
GROUND = ["__init__", "seeding", "config", "runtime", "provenance"]


def rank(parts: tuple[str, ...]) -> int:
    """Position of module `diffloc.<parts>` in ORDER."""
    return next(i for i, stage in enumerate(ORDER) if parts[0] in stage)


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        yield path, parts


def imported(path) -> set[tuple[str, ...]]:
    """diffloc modules (as parts after `diffloc`) a file imports, and any top-level package."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            bits = tuple(name.split("."))
            if (
                bits[0] == "diffloc"
                and len(bits) > 1
                and (PACKAGE / bits[1]).exists() | (PACKAGE / f"{bits[1]}.py").exists()
            ):
                out.add(bits[1:])
            elif bits[0] != "diffloc":
                out.add(("<external>", bits[0]))
    return out


def test_every_module_belongs_to_a_stage():
    for _, parts in modules():
        assert any(parts[0] in stage for stage in ORDER), f"{'/'.join(parts)} is in no stage"


def test_imports_point_down_the_pipeline_only():
    for path, parts in modules():
        for target in imported(path):
            if target[0] == "<external>":
                assert target[1] != "snakemake", f"{path}: the package never imports snakemake"
                continue
            assert rank(target) <= rank(parts), (
                f"{'/'.join(parts)} (stage {rank(parts)}) imports diffloc.{'.'.join(target)} "
                f"(stage {rank(target)}), a later stage"
            )
            if rank(parts) == 0 and target[0] in GROUND and parts[0] in GROUND:
                assert GROUND.index(target[0]) <= GROUND.index(parts[0]), (
                    f"ground floor: {parts[0]} imports {target[0]}"
                )


@pytest.fixture(scope="module")
def workflow():
    return load_workflow()


def job_of(rule):
    """The rule's script, and the job function (module, name) it imports."""
    script = (REPO / rule.snakefile).parent / rule.script
    text = script.read_text()
    match = re.search(r"^from (diffloc\.\w+\.jobs) import (\w+)$", text, flags=re.M)
    assert match, f"{script.name} (rule {rule.name}) imports no diffloc.<stage>.jobs function"
    return script, text, getattr(importlib.import_module(match.group(1)), match.group(2))


def test_rule_scripts_are_thin_adapters_of_keyword_only_jobs(workflow):
    rules = [r for r in workflow.rules if not r.norun]
    assert rules
    for rule in rules:
        script, text, job = job_of(rule)
        assert job.__name__ == rule.name, f"{script.name} calls {job.__name__} for rule {rule.name}"
        assert "def " not in text and "job_log(" in text, f"{script.name} is not a thin adapter"
        body = ast.parse(text).body
        statements = [n for n in body if not isinstance(n, ast.Expr | ast.Import | ast.ImportFrom)]
        assert len(statements) <= 3, f"{script.name}: {len(statements)} statements, expected <= 3"
        params = inspect.signature(job).parameters.values()
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params), (
            f"{job.__module__}.{job.__name__} must take keyword-only arguments"
        )
        assert job.__doc__, f"{job.__module__}.{job.__name__} has no docstring"


def test_training_and_sampling_jobs_log_their_allocation(workflow):
    for rule in workflow.rules:
        if not rule.norun and "gpu" in rule.resources:
            _, _, job = job_of(rule)
            assert "log_allocation(" in inspect.getsource(job), (
                f"rule {rule.name} asks for a GPU but {job.__module__}.{job.__name__} does not "
                "call diffloc.runtime.log_allocation"
            )
