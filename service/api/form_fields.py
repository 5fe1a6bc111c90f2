"""How a flat form names the fields of a case, derived from the domain model (`CaseSubmission`).

Forms carry the same fields as JSON, flattened: nested objects with dots (`reporter.relationship`),
lists of text as repeated fields (`platforms`), and lists of objects as their `FlatForm` mark says
(`payment.amount`; `mtcn=...` and `username.platform`). Every name a form may send, the mapping from a
form to the JSON-shaped case, and from a problem in that case back to the input it came from, are worked
out here from the model, so a field added there reaches the form, the form schema in the spec and the
report page's questions without another list to update.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from service.domain.cases import CaseSubmission, FlatForm


@dataclass(frozen=True)
class FormField:
    """One name a form may send, and the domain field it fills."""

    name: str  # as the form sends it: `reporter.email`, `payment.amount`, `mtcn`, `username.platform`
    path: tuple[str, ...]  # in the JSON case, list items skipped: ("payments", "amount"), ("identifiers", "value")
    model: type[BaseModel]  # the model that declares the field
    field: str  # its name there
    repeated: bool = False  # the form sends it once per item (`platforms`, `mtcn`)
    named_by: tuple[str, str] | None = None  # for `mtcn`-style names: (discriminating field, its value)

    @property
    def info(self) -> FieldInfo:
        return self.model.model_fields[self.field]


def bare_type(annotation: object) -> object:
    """A field's type with Optional and Annotated taken off."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            annotation = next(arg for arg in typing.get_args(annotation) if arg is not type(None))
        else:
            return annotation


def _model_of(annotation: object) -> type[BaseModel] | None:
    kind = bare_type(annotation)
    return kind if isinstance(kind, type) and issubclass(kind, BaseModel) else None


def _list_item(annotation: object) -> object | None:
    kind = bare_type(annotation)
    return bare_type(typing.get_args(kind)[0]) if typing.get_origin(kind) is list else None


def _flat_form(info: FieldInfo) -> FlatForm:
    marks = [item for item in info.metadata if isinstance(item, FlatForm)]
    for arg in typing.get_args(info.annotation):
        marks += [item for item in getattr(arg, "__metadata__", ()) if isinstance(item, FlatForm)]
    if not marks:
        raise TypeError(f"A list of objects needs a FlatForm mark to be sent by a form: {info}")
    return marks[0]


def derive_form_fields(model: type[BaseModel] = CaseSubmission) -> list[FormField]:
    """Every name a form may send for `model`, in the model's order."""
    fields: list[FormField] = []
    for name, info in model.model_fields.items():
        nested = _model_of(info.annotation)
        item = _list_item(info.annotation)
        if nested is not None:
            fields += [FormField(f"{name}.{sub}", (name, sub), nested, sub) for sub in nested.model_fields]
        elif isinstance(item, type) and issubclass(item, BaseModel):
            fields += _list_of_objects(name, item, _flat_form(info))
        else:
            fields.append(FormField(name, (name,), model, name, repeated=item is not None))
    return fields


def _list_of_objects(name: str, item: type[BaseModel], flat: FlatForm) -> list[FormField]:
    if flat.named_by is None:
        return [FormField(f"{flat.each}.{sub}", (name, sub), item, sub) for sub in item.model_fields]
    kinds = bare_type(item.model_fields[flat.named_by].annotation)
    assert isinstance(kinds, type) and issubclass(kinds, StrEnum), f"{item.__name__}.{flat.named_by} names inputs"
    details = [sub for sub in item.model_fields if sub not in (flat.named_by, flat.value)]
    fields: list[FormField] = []
    for kind in kinds:
        named_by = (flat.named_by, kind.value)
        fields.append(FormField(kind.value, (name, flat.value), item, flat.value, repeated=True, named_by=named_by))
        fields += [
            FormField(f"{kind.value}.{sub}", (name, sub), item, sub, repeated=True, named_by=named_by)
            for sub in details
        ]
    return fields


FORM_FIELDS = derive_form_fields()
FORM_FIELDS_BY_NAME = {field.name: field for field in FORM_FIELDS}
# Prefixes a form uses for one object (`reporter.`) or for an item of a list (`payment.`), with the JSON field.
_OBJECT_PREFIXES = {f.name.split(".")[0]: f.path[0] for f in FORM_FIELDS if f.named_by is None and len(f.path) == 2}
_GROUPED = {json_name for prefix, json_name in _OBJECT_PREFIXES.items() if prefix != json_name}


def case_from_form_fields(fields: list[tuple[str, str]]) -> dict[str, Any]:
    """The JSON-shaped case a flat form describes. Empty fields are absent fields (a browser sends every
    input, filled in or not). Unknown names are kept, so that validation names them as unknown fields
    rather than dropping what someone typed."""
    case: dict[str, Any] = {}
    objects: dict[str, Any] = {}
    details: dict[tuple[str, str, str], list[str]] = {}
    for name, value in fields:
        value = value.strip()
        if value == "":
            continue
        known = FORM_FIELDS_BY_NAME.get(name)
        head, _, rest = name.partition(".")
        if known is not None and known.named_by is not None:
            _add_named(objects, details, known, name, value)
        elif head in _OBJECT_PREFIXES and rest:
            _add_to_object(objects, _OBJECT_PREFIXES[head], rest, value)
        elif known is not None and known.repeated:
            case.setdefault(name, []).append(value)
        else:
            _set_once(case, name, value)
    for (json_name, kind, field), values in details.items():
        items = [item for item in objects.get(json_name, []) if kind in item.values()]
        for item, value in zip(items, values, strict=False):
            item[field] = value
    # A field also sent bare (`reporter=x` beside `reporter.relationship`) is kept beside the built
    # value, so that validation names it as wrong instead of one silently replacing the other.
    for name, built in objects.items():
        case[name] = [*_as_list(case[name]), built] if name in case else built
    return case


def _add_named(objects: dict[str, Any], details: dict, known: FormField, name: str, value: str) -> None:
    """`mtcn=...` starts an item; `username.platform=...` is kept for the usernames, in order."""
    discriminator, kind = known.named_by  # type: ignore[misc]
    if name == kind:
        objects.setdefault(known.path[0], []).append({discriminator: kind, known.field: value})
    else:
        details.setdefault((known.path[0], kind, known.field), []).append(value)


def _add_to_object(objects: dict[str, Any], json_name: str, field: str, value: str) -> None:
    if json_name in _GROUPED:  # one item per group: a name seen again starts the next item
        items = objects.setdefault(json_name, [])
        target = next((item for item in items if field not in item), None)
        if target is None:
            target = {}
            items.append(target)
        target[field] = value
    else:
        _set_once(objects.setdefault(json_name, {}), field, value)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _set_once(target: dict[str, Any], name: str, value: str) -> None:
    if name in target:
        existing = target[name]
        target[name] = (existing if isinstance(existing, list) else [existing]) + [value]
    else:
        target[name] = value


def form_name_of(problem_field: str, case: dict[str, Any]) -> str:
    """The form input a problem in the JSON-shaped `case` came from (`identifiers[1].value` → `mtcn`,
    `payments[0].amount` → `payment.amount`), or the problem's own path if no input matches it."""
    head, bracket, rest = problem_field.partition("[")
    if not bracket:
        return problem_field
    index_text, _, after = rest.partition("]")
    sub = after.lstrip(".")
    items = case.get(head)
    position = int(index_text) if index_text.isdigit() else len(items or [])
    item = items[position] if isinstance(items, list) and position < len(items) else None
    for field in FORM_FIELDS:
        if field.path[0] != head or len(field.path) != 2:
            continue
        if field.named_by is not None:
            kind = item.get(field.named_by[0]) if isinstance(item, dict) else None
            if kind == field.named_by[1] and field.field == (sub.split(".")[0] or field.path[1]):
                return field.name
        elif field.field == sub.split(".")[0] or not sub:
            return field.name  # a problem with a whole item is shown at its first input
    return problem_field
