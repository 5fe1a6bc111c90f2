"""The police forces as data: the built-in list, a deployment's additions, and unknown slugs refused with
the closest matches."""

from __future__ import annotations

import pytest

from service.domain.police_forces import UnknownPoliceForce
from service.storage.content import ContentError, load_content

FORCES = load_content().police_forces


def test_the_built_in_list_has_the_43_forces_of_england_and_wales_and_the_uk_wide_ones():
    territorial_england_and_wales = [f for f in FORCES.forces if f.nation in ("England", "Wales")]
    assert len(territorial_england_and_wales) == 43
    assert {"police-scotland", "northern-ireland", "btp"} <= set(FORCES.slugs)
    assert FORCES.get("north-yorkshire").name == "North Yorkshire Police"
    assert FORCES.get("btp").name == "British Transport Police"
    assert len(FORCES.slugs) == len(set(FORCES.slugs)) == 46


@pytest.mark.parametrize(
    ("typed", "first_suggestion"),
    [
        ("north-yorks", "north-yorkshire"),
        ("North Yorkshire", "north-yorkshire"),
        ("North Yorkshire Police", "north-yorkshire"),
        ("west-yorkshre", "west-yorkshire"),
        ("met", "metropolitan"),
        ("Metropolitan Police Service", "metropolitan"),
        ("devon-cornwall", "devon-and-cornwall"),
        ("British Transport Police", "btp"),
        ("Police Scotland", "police-scotland"),
        ("Police Service of Northern Ireland", "northern-ireland"),
    ],
)
def test_an_unknown_slug_is_refused_naming_the_closest_forces(typed, first_suggestion):
    assert [force.slug for force in FORCES.closest(typed)][0] == first_suggestion
    with pytest.raises(UnknownPoliceForce, match=f"Did you mean {first_suggestion} "):
        FORCES.check(typed)


def test_a_slug_like_nothing_on_the_list_points_to_the_list():
    with pytest.raises(UnknownPoliceForce, match="GET /v1/police-forces"):
        FORCES.check("zzzzzzzz")


@pytest.mark.parametrize("slug", ["north-yorkshire", "metropolitan", "dyfed-powys", "police-scotland", "btp"])
def test_a_known_slug_is_accepted_as_it_is(slug):
    assert FORCES.check(slug) == slug


def test_a_deployment_adds_renames_and_hides_forces_in_its_own_content_folder(tmp_path):
    (tmp_path / "guidance").mkdir()
    (tmp_path / "police-forces.yaml").write_text(
        "- {slug: isle-of-man, name: Isle of Man Constabulary, nation: Isle of Man}\n"
        "- {slug: kent, name: Kent Police (test wording)}\n"
        "- {slug: btp, disabled: true}\n"
    )
    forces = load_content(tmp_path).police_forces
    assert forces.check("isle-of-man") == "isle-of-man"
    assert forces.get("kent").name == "Kent Police (test wording)" and forces.get("kent").nation == "England"
    assert "btp" not in forces
    with pytest.raises(UnknownPoliceForce):
        forces.check("btp")


def test_a_deployment_force_without_a_name_stops_the_service_at_start(tmp_path):
    (tmp_path / "guidance").mkdir()
    (tmp_path / "police-forces.yaml").write_text("- {slug: isle-of-man, nation: Isle of Man}\n")
    with pytest.raises(ContentError, match="police-forces.yaml"):
        load_content(tmp_path)
