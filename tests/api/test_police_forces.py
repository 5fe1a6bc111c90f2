"""Police forces as data: GET /v1/police-forces, and every slug checked against it (cases, analyst
filters, `intake keys create --force`, `intake export --force`) with the closest matches named."""

from __future__ import annotations

import pytest

from tests.support.cases import MINIMAL_CASE, unique_force
from tests.support.cli import run_intake
from tests.support.http import bearer


def test_the_list_is_public_cacheable_data_with_slugs_and_names(client):
    listed = client.get("/v1/police-forces")
    assert listed.status_code == 200
    forces = {force["slug"]: force for force in listed.json()}
    assert forces["north-yorkshire"] == {
        "slug": "north-yorkshire",
        "name": "North Yorkshire Police",
        "nation": "England",
        "kind": "territorial",
    }
    assert forces["btp"]["kind"] == "national"
    assert {"police-scotland", "northern-ireland", "dyfed-powys", "metropolitan"} <= forces.keys()
    assert len([f for f in forces.values() if f["nation"] in ("England", "Wales")]) >= 43
    assert client.get("/v1/police-forces", headers={"If-None-Match": listed.headers["etag"]}).status_code == 304


def test_a_deployment_adds_its_own_forces(client):
    # The test deployment's content folder adds synthetic forces; they are served like the built-in ones.
    slugs = {force["slug"] for force in client.get("/v1/police-forces").json()}
    assert unique_force() in slugs


@pytest.mark.parametrize("typed", ["north-yorks", "North Yorkshire"])
def test_a_case_under_an_unknown_force_is_a_422_naming_the_closest_ones(client, keys, typed):
    response = client.post("/v1/cases", json={**MINIMAL_CASE, "police_force": typed}, headers=bearer(keys.submitter))
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "police_force"
    assert error["message"].startswith(
        f"There is no police force {typed!r}. Did you mean north-yorkshire (North Yorkshire Police), "
    )


def test_an_analyst_filter_on_an_unknown_force_is_a_422_not_an_empty_page(client, keys):
    response = client.get("/v1/cases", params={"force": "west-yorks"}, headers=bearer(keys.analyst))
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "force" and "Did you mean west-yorkshire (West Yorkshire Police)" in error["message"]
    assert client.get("/v1/cases", params={"force": "west-yorkshire"}, headers=bearer(keys.analyst)).status_code == 200


def test_intake_keys_create_refuses_an_unknown_force_and_makes_no_key(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert run_intake("db", "upgrade", database_url=url).returncode == 0
    refused = run_intake(
        "keys", "create", "--role", "analyst", "--name", "x", "--force", "north-yorks", database_url=url
    )
    assert refused.returncode == 2
    assert "Did you mean north-yorkshire (North Yorkshire Police)" in refused.stderr
    assert "isk_" not in refused.stdout
    made = run_intake(
        "keys", "create", "--role", "analyst", "--name", "x", "--force", "north-yorkshire", database_url=url
    )
    assert made.returncode == 0, made.stderr
    assert "It sees only cases of: north-yorkshire." in made.stdout
    listed = run_intake("keys", "list", database_url=url)
    assert listed.stdout.count("analyst") == 1


def test_intake_export_refuses_an_unknown_force(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert run_intake("db", "upgrade", database_url=url).returncode == 0
    refused = run_intake(
        "export", "--force", "metropolitan-police", "--output", str(tmp_path / "x.csv"), database_url=url
    )
    assert refused.returncode == 2 and "Did you mean metropolitan" in refused.stderr
    assert not (tmp_path / "x.csv").exists()
