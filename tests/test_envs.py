"""The conda environment the rules name lists the same packages as pyproject.toml."""

import re
import tomllib

import yaml

from conftest import REPO


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\s\[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_conda_env_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"]}
    env = yaml.safe_load((REPO / "envs" / "diffloc.yaml").read_text())
    listed = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            listed |= {_name(r) for r in dep["pip"] if not r.startswith("-")}
        else:
            listed.add(_name(dep))
    listed -= {"python", "pip"}
    assert listed == wanted, (
        f"only in envs: {listed - wanted}; only in pyproject: {wanted - listed}"
    )


def test_every_rule_names_the_env():
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        text = smk.read_text()
        # named rules, and rules made in a loop (`rule:` + `name:`, indented)
        blocks = re.split(r"^(?=(?:rule \w+|    rule):)", text, flags=re.M)
        jobs = [b for b in blocks if b.lstrip().startswith("rule") and "    script:" in b]
        assert text.count('"../../envs/diffloc.yaml"') == len(jobs), smk.name
