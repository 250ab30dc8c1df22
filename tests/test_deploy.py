"""Deploying as the README says (remove the last deploy's files, `cp -r out/.` into Grafana's provisioning folder) gives Grafana readable
dashboards, datasources, alert rules, a contact point and a notification policy, in one folder, and nothing
else Grafana would read. No Grafana server can run here: the checks read the copied tree as Grafana's file
provisioning does (its documented folders and formats); test_provisioning.py checks each file's format."""

from __future__ import annotations

import glob
import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

# The folders of a provisioning directory Grafana reads; anything else in it is never looked at.
GRAFANA_READS = {"dashboards", "datasources", "alerting", "plugins", "access-control"}
RECEIVER_ENV = {"ALERT_EMAIL_ADDRESSES", "ALERT_SLACK_URL", "ALERT_WEBHOOK_URL"}
DATASOURCE_ENV = {"MIMIR_URL", "LOKI_URL", "TEMPO_URL", "MIMIR_TENANT", "LOKI_TENANT", "TEMPO_TENANT"}


def readme_deploy_commands() -> list[list[str]]:
    """The Deploy section's commands as written (sudo dropped: the tests deploy into folders of their own)."""
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("\n## Deploy", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    commands = [shlex.split(line.split("#", 1)[0].removeprefix("sudo ")) for line in block.splitlines() if line.strip()]
    assert [c[0] for c in commands] == ["rm", "cp"], "the README removes the last deploy's files, then copies out/"
    return commands


def deploy(out: Path, provisioning: Path) -> None:
    """Run the README's deploy lines with Grafana's provisioning path replaced by `provisioning`, under a
    strict umask (root's may be 077), globs expanded as the shell would."""
    defaults = yaml.safe_load((ROOT / "values" / "defaults.yaml").read_text(encoding="utf-8"))
    server = defaults["grafana"]["provisioning_path"].rstrip("/")
    for words in readme_deploy_commands():
        args = []
        for word in words:
            local = word.replace(server, str(provisioning), 1) if word.startswith(server) else word
            args += sorted(glob.glob(local)) if glob.has_magic(local) else [local]
        subprocess.run(args, cwd=out.parent, check=True, timeout=60, preexec_fn=lambda: os.umask(0o077))


def run_build(root: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(root / "build.py"), "--out", str(out)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )


def build_into(root: Path, out: Path) -> None:
    result = run_build(root, out)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def deployed(tmp_path_factory) -> tuple[Path, dict]:
    """A fresh build, deployed as the README says into a stand-in for /etc/grafana/provisioning that
    already holds another team's datasource."""
    work = tmp_path_factory.mktemp("deploy")
    build_into(ROOT, work / "out")
    provisioning = work / "etc-grafana-provisioning"
    (provisioning / "datasources").mkdir(parents=True)
    (provisioning / "datasources" / "other-team.yaml").write_text(OTHER_TEAM, encoding="utf-8")
    deploy(work / "out", provisioning)
    return provisioning, yaml.safe_load((ROOT / "values" / "defaults.yaml").read_text(encoding="utf-8"))


OTHER_TEAM = "apiVersion: 1\ndatasources: []\n"


def test_the_deploy_keeps_other_files_of_the_provisioning_folder(deployed):
    provisioning, _ = deployed
    assert (provisioning / "datasources" / "other-team.yaml").read_text(encoding="utf-8") == OTHER_TEAM


def test_a_redeploy_after_removing_a_service_leaves_no_trace_of_it(project, tmp_path):
    project.write(
        "values/services/zz-test-deploy.yaml",
        "service: zz-test-deploy\ntitle: Zz Test Deploy\nport: 65520\ndescription: A service that is removed again.\nrows: []\n",
    )
    provisioning = tmp_path / "provisioning"
    provisioning.mkdir()
    build_into(project.path, project.path / "out")
    deploy(project.path / "out", provisioning)
    assert list(provisioning.rglob("zz-test-deploy.json"))
    project.file("values/services/zz-test-deploy.yaml").unlink()
    build_into(project.path, project.path / "out")
    deploy(project.path / "out", provisioning)
    assert not list(provisioning.rglob("zz-test-deploy.json"))
    copied = sorted(p.relative_to(provisioning).as_posix() for p in provisioning.rglob("*") if p.is_file())
    built = sorted(
        p.relative_to(project.path / "out").as_posix() for p in (project.path / "out").rglob("*") if p.is_file()
    )
    assert copied == built, "after a redeploy the folder holds exactly the new build"


def test_a_build_never_replaces_a_provisioning_folder_it_was_copied_into(deployed):
    """cp copies the manifest too; a later `--out` at Grafana's folder must not take the other files with it."""
    provisioning, _ = deployed
    before = {p: p.read_bytes() for p in provisioning.rglob("*") if p.is_file()}
    result = run_build(ROOT, provisioning)
    assert (
        result.returncode == 1 and "datasources/other-team.yaml" in result.stderr and "Traceback" not in result.stderr
    )
    assert {p: p.read_bytes() for p in provisioning.rglob("*") if p.is_file()} == before


def documents(folder: Path) -> dict[str, dict]:
    return {p.name: yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.yaml"))}


def test_the_copy_holds_only_what_grafana_and_the_ruler_read(deployed):
    provisioning, _ = deployed
    names = {p.name for p in provisioning.iterdir() if not p.name.startswith(".")}  # Grafana skips dotfiles
    assert names - GRAFANA_READS == {"rules"}, "no previews, reports or diffs: only provisioning and the ruler's files"
    assert {p.suffix for p in (provisioning / "rules").iterdir()} == {".yaml"}


def test_every_copied_file_is_readable_by_grafanas_own_user(deployed):
    provisioning, _ = deployed
    for path in [provisioning, *provisioning.rglob("*")]:
        mode = path.stat().st_mode
        needed = (stat.S_IROTH | stat.S_IXOTH) if path.is_dir() else stat.S_IROTH
        assert mode & needed == needed, f"{path.relative_to(provisioning)}: mode {oct(mode & 0o777)}"


def test_the_provider_reads_the_copied_dashboards_into_the_alert_rules_folder(deployed):
    provisioning, defaults = deployed
    providers = [p for doc in documents(provisioning / "dashboards").values() for p in doc["providers"]]
    assert len(providers) == 1
    provider = providers[0]
    # The provider's path is where the copy put the dashboards, seen from the Grafana server.
    server_root = defaults["grafana"]["provisioning_path"].rstrip("/")
    local = provisioning / provider["options"]["path"].removeprefix(server_root + "/")
    dashboards = sorted(local.rglob("*.json"))
    services = sorted((ROOT / "values" / "services").glob("*.yaml"))
    assert len(dashboards) == len(services) + 1, "every service dashboard and the overview"
    folders = {g["folder"] for doc in documents(provisioning / "alerting").values() for g in doc.get("groups", [])}
    assert folders == {provider["folder"]} == {defaults["grafana"]["folder"]}, (
        "dashboards and alert rules share one folder"
    )
    assert not provider["options"]["foldersFromFilesStructure"] and not provider["allowUiUpdates"]


def test_alerts_reach_the_contact_point_through_the_policy(deployed):
    provisioning, defaults = deployed
    alerting = documents(provisioning / "alerting")
    points = {c["name"]: c for doc in alerting.values() for c in doc.get("contactPoints", [])}
    policies = [p for doc in alerting.values() for p in doc.get("policies", [])]
    assert list(points) == [defaults["grafana"]["contact_point"]] and len(policies) == 1
    policy = policies[0]
    receivers = [policy["receiver"], *(r["receiver"] for r in policy.get("routes", []))]
    assert set(receivers) <= set(points), "every route ends at a provisioned contact point"
    assert {r["type"] for r in points[policy["receiver"]]["receivers"]} == set(defaults["grafana"]["receivers"])
    severities = {m[2] for r in policy["routes"] for m in r["object_matchers"] if m[0] == "severity"}
    rules = [r for doc in alerting.values() for g in doc.get("groups", []) for r in g["rules"]]
    assert {r["labels"]["severity"] for r in rules} <= severities, "every alert's severity has a route"
    assert {r["repeat_interval"] for r in policy["routes"]} == set(defaults["grafana"]["repeat_interval"].values())


def test_no_address_or_secret_is_in_the_files_only_the_allowed_environment_variables(deployed):
    provisioning, _ = deployed
    for path in sorted(provisioning.rglob("*.yaml")):
        if path.parent.name == "rules":
            continue  # the ruler's files: not read by Grafana, no environment expansion
        text = path.read_text(encoding="utf-8")
        document = yaml.safe_load(text)
        for rule in [r for g in document.get("groups", []) for r in g["rules"]]:
            # Grafana expands neither annotations nor query models ($labels, $values are alert templating)
            del rule["annotations"]
            rule["data"] = [{k: v for k, v in q.items() if k != "model"} for q in rule["data"]]
        expanded = yaml.safe_dump(document).replace("$$", "")
        named = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", expanded))
        assert named <= RECEIVER_ENV | DATASOURCE_ENV, f"{path.name} reads {sorted(named)} from Grafana's environment"
        assert "://" not in expanded and "@" not in expanded, (
            f"{path.name}: addresses and URLs belong in Grafana's environment"
        )


def test_renaming_the_platform_is_an_edit_of_values_only(project):
    """The README's rename: replace the platform's name in values/ (uid_prefix, grafana.folder, titles)."""
    for path in sorted((project.path / "values").rglob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("PyAirtable", "Acme Ops").replace("pyairtable", "acme"), encoding="utf-8")
    result = project.build()
    assert result.returncode == 0, result.stdout + result.stderr
    out = project.path / "out"
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files and not [p for p in files if "pyairtable" in p.relative_to(out).as_posix()]
    assert not [p.name for p in files if "pyairtable" in p.read_text(encoding="utf-8").lower()]
    dashboards = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in files if p.suffix == ".json"]
    assert all(d["uid"].startswith("acme-") for d in dashboards)
    provider = yaml.safe_load((out / "dashboards" / "acme.yaml").read_text(encoding="utf-8"))["providers"][0]
    assert provider["folder"] == "Acme Ops" and provider["options"]["path"].endswith("/dashboards/acme")
