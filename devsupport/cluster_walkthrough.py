"""Build a small offender network through the real API (in-process, on a throwaway SQLite database) and
print what docs/clusters.md shows: the API's answers and a Mermaid diagram drawn from them.

    .venv/bin/python -m devsupport.cluster_walkthrough > /tmp/walkthrough.md
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from fastapi.testclient import TestClient

from devsupport.images import encoded, synthetic_picture
from service.app import create_app
from service.cli import upgrade_database
from service.settings import Settings
from service.storage.database import create_database_engine, session_scope
from service.storage.keys import create_api_key

REPORTS = [
    {
        "victim": {"age": 15},
        "police_force": "north-yorkshire",
        "identifiers": [{"type": "mtcn", "value": "111-222-3333"}],
        "payments": [{"amount": "150", "currency": "GBP", "method": "western_union"}],
    },
    {
        "victim": {"age": 24},
        "police_force": "west-yorkshire",
        "identifiers": [
            {"type": "mtcn", "value": "1112223333"},
            {"type": "profile_url", "value": "https://www.instagram.com/synthetic.bait/?igsh=x"},
        ],
        "payments": [{"amount": "300", "currency": "GBP"}],
    },
    {
        "victim": {"age": 31},
        "police_force": "cleveland",
        "identifiers": [{"type": "profile_url", "value": "instagram.com/Synthetic.Bait"}],
    },
    {"victim": {"age": 19}, "police_force": "cleveland", "payments": [{"amount": "100", "currency": "USD"}]},
]


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(
            data_dir=Path(scratch),
            development=True,
            rate_case_creation_per_key="off",
            rate_case_creation_per_address="off",
        )
        upgrade_database(settings.resolved_database_url)
        engine = create_database_engine(settings.resolved_database_url)
        with session_scope(engine) as session:
            submitter = create_api_key(session, "submitter", "walkthrough website")[1]
            analyst = create_api_key(session, "analyst", "walkthrough analyst")[1]
        engine.dispose()
        app = create_app(settings)
        with TestClient(app) as client:
            made = []
            for report in REPORTS:
                body = {"reporter": {"relationship": "self"}, "account": "Synthetic walkthrough report.", **report}
                made.append(
                    client.post("/v1/cases", json=body, headers={"Authorization": f"Bearer {submitter}"}).json()
                )
            bait = synthetic_picture(2024)
            for index, image in ((2, encoded(bait)), (3, encoded(bait, quality=70))):
                client.post(
                    f"/v1/cases/{made[index]['reference']}/evidence",
                    headers={"Authorization": f"Bearer {made[index]['reporter_token']}"},
                    files={"file": ("bait.jpg", image, "image/jpeg")},
                )
            analyst_headers = {"Authorization": f"Bearer {analyst}", "X-Access-Reason": "walkthrough"}
            listed = client.get("/v1/clusters", headers=analyst_headers).json()
            cluster = client.get(f"/v1/cases/{made[0]['reference']}/cluster", headers=analyst_headers).json()
        app.state.engine.dispose()
    print("GET /v1/clusters\n\n```json\n" + json.dumps(listed, indent=2) + "\n```\n")
    print(f"GET /v1/cases/{made[0]['reference']}/cluster\n\n```json\n" + json.dumps(cluster, indent=2) + "\n```\n")
    print(mermaid(cluster))


def mermaid(answer: dict) -> str:
    """The network as a Mermaid graph: a node per case (child victims marked), an edge per link."""
    lines = ["```mermaid", "graph LR"]
    for case in answer["cases"]:
        label = f"{case['reference']}<br/>{case['police_force']}" + (
            "<br/>child victim" if case["child_victim"] else ""
        )
        lines.append(f'  c{case["reference"].replace("-", "")}["{label}"]')
    for link in answer["links"]:
        left, right = "c" + link["case"].replace("-", ""), "c" + link["other_case"].replace("-", "")
        lines.append(f'  {left} ---|"{link["kind"]}: {link["via"]}"| {right}')
    lines.append("```")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
