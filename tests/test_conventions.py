"""Snakemake conventions every rule keeps: log, benchmark, threads, resources, conda env, wildcard
constraints, a GPU for training and sampling, and a report that `rule all` builds."""

import re
import subprocess
import sys

import pytest
from snakemake.io import WILDCARD_REGEX, is_flagged

from conftest import REPO, load_workflow

ENV_FILE = REPO / "envs" / "diffloc.yaml"
# Rules that train a network or sample a posterior: each asks SLURM for one GPU.
GPU_RULES = {"train_phi", "train_psi", "posterior"}


@pytest.fixture(scope="module")
def workflow():
    return load_workflow()


def job_rules(workflow):
    """Every rule that runs code (not target-only rules such as `all`)."""
    rules = [rule for rule in workflow.rules if not rule.norun]
    assert rules, "the workflow has no rules"
    return rules


def rule_bodies() -> dict[str, str]:
    """Source text of each `rule NAME:` block in workflow/rules/*.smk."""
    bodies = {}
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        blocks = re.split(r"^(?=\S)", smk.read_text(), flags=re.M)
        for block in blocks:
            match = re.match(r"(?:rule|checkpoint) (\w+):", block)
            if match:
                bodies[match.group(1)] = block
    return bodies


def test_every_rule_logs_benchmarks_and_names_its_resources(workflow):
    for rule in job_rules(workflow):
        assert rule.log, f"rule {rule.name} has no log:"
        assert rule.benchmark, f"rule {rule.name} has no benchmark:"
        missing = {"mem_mb", "runtime"} - set(rule.resources)
        assert not missing, f"rule {rule.name} lacks resources {sorted(missing)}"


def test_every_rule_declares_its_threads():
    bodies = rule_bodies()
    assert bodies
    for name, body in bodies.items():
        if not re.search(r"^    (script|shell|run):", body, flags=re.M):
            continue  # a target-only rule (e.g. `analyze`) runs nothing
        assert re.search(r"^    threads:", body, flags=re.M), f"rule {name} has no threads:"
    assert sum("threads:" in body for body in bodies.values()) >= 25


def test_every_rule_runs_in_the_project_conda_env(workflow):
    for rule in job_rules(workflow):
        assert rule.conda_env, f"rule {rule.name} has no conda:"
        path = (REPO / rule.snakefile).parent / rule.conda_env
        assert path.resolve() == ENV_FILE.resolve(), f"rule {rule.name}: conda {rule.conda_env}"


def test_every_wildcard_is_constrained(workflow):
    for rule in job_rules(workflow):
        for output in rule.output:
            for match in WILDCARD_REGEX.finditer(str(output)):
                name = match.group("name")
                assert match.group("constraint") or name in rule.wildcard_constraints, (
                    f"rule {rule.name}: wildcard {{{name}}} in {output} has no constraint"
                )


def test_training_and_sampling_rules_ask_for_a_gpu(workflow):
    """(test_layout checks that their jobs log the allocation they got)"""
    rules = {rule.name: rule for rule in job_rules(workflow)}
    assert "train_phi" in rules, "the phi training rule is missing"
    for name in GPU_RULES & set(rules):
        gpu = rules[name].resources.get("gpu")
        assert gpu is not None and gpu.value == 1, f"rule {name} must declare resources gpu=1"


def test_rule_all_builds_the_report_of_every_registered_item(workflow):
    globals_ = workflow.globals
    all_inputs = {str(f) for f in workflow.get_rule("all").input}
    assert globals_["REPORT_HTML"] in all_inputs
    report_rule = workflow.get_rule("report")
    assert report_rule.output[0] == globals_["REPORT_HTML"]
    assert report_rule.name in workflow._localrules
    targets = globals_["REPORT_TARGETS"]
    flagged = [(r, f) for r in job_rules(workflow) for f in r.output if is_flagged(f, "report")]
    assert any(r.name == "fig1" for r, _ in flagged)
    for rule, output in flagged:
        assert any(output.regex().match(t) for t in targets), (
            f"rule {rule.name}: {output} is flagged for the report but not registered; "
            "use report_item (workflow/rules/common.smk)"
        )
        caption = output.flags["report"].caption
        assert caption and (REPO / "workflow" / "report").samefile(
            (REPO / rule.snakefile).parent.joinpath(caption).parent
        ), f"rule {rule.name}: caption {caption} must live in workflow/report/"


def test_parsing_the_workflow_does_not_import_torch():
    """Snakemake parses the workflow for every job it starts on SLURM and for every dry run: the
    diffloc modules the workflow imports stay free of torch (about 2 s per parse)."""
    files = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").rglob("*.smk"))]
    modules = sorted(
        {
            m
            for f in files
            for m in re.findall(r"^from (diffloc[\w.]*) import", f.read_text(), flags=re.M)
        }
    )
    assert "diffloc.analyze.names" in modules and "diffloc.config" in modules
    code = f"import sys\nfor m in {modules!r}:\n    __import__(m)\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", f"one of {modules} imports torch"
