"""Query parameters a route does not know are refused, never ignored.

On a search or an export a misspelt filter (`?priorty=urgent`) that is ignored answers with every case,
which is both wrong and a disclosure: the caller is told which names it got wrong instead.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant

from service.api.problems import validation_problem


def _query_names(dependant: Dependant) -> set[str]:
    names = {parameter.alias for parameter in dependant.query_params}
    for dependency in dependant.dependencies:
        names |= _query_names(dependency)
    return names


def refuse_unknown_query_parameters(request: Request) -> None:
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None or not request.query_params:
        return
    known = _query_names(dependant)
    unknown = [name for name in dict.fromkeys(request.query_params.keys()) if name not in known]
    if unknown:
        listed = ", ".join(sorted(known)) or "none"
        raise validation_problem(
            [
                {"field": name, "message": f"This is not a parameter here; the known ones are: {listed}."}
                for name in unknown
            ]
        )
