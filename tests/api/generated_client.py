"""Calls every operation of a client generated from /openapi.json by openapi-python-client.

Usage: generated_client.py PACKAGE_DIR BASE_URL TOKEN PLAN_JSON

PACKAGE_DIR is the generated package (its name is the import name). Every module under
its `api` package is one operation; each is called with `sync_detailed`, the path
parameters from the plan's "path" values (or its "path_by_operation" ones), and then once more for each of the plan's extra
calls (query parameters given as JSON values, converted to the types the generated
signature asks for). Prints one JSON object per call: the operation, the status code, the
type of the parsed answer and a few facts about it (row count), for the test to check.
"""

import datetime
import enum
import importlib
import inspect
import json
import pkgutil
import sys
import typing
from pathlib import Path


def convert(value, annotation):
    """A JSON value as the type a generated signature asks for."""
    candidates = typing.get_args(annotation) or (annotation,)
    if isinstance(value, list):
        for kind in candidates:
            if typing.get_origin(kind) is list:
                (item,) = typing.get_args(kind)
                return [convert(v, item) for v in value]
        return value
    for kind in candidates:
        if inspect.isclass(kind) and issubclass(kind, enum.Enum):
            return kind(value)
        if kind is datetime.datetime:
            return datetime.datetime.fromisoformat(value)
        if kind is datetime.date:
            return datetime.date.fromisoformat(value)
    return value


def describe(parsed):
    """What the test checks of a parsed answer."""
    facts = {"type": type(parsed).__name__}
    data = getattr(parsed, "data", None)
    if isinstance(data, list):
        facts["rows"] = len(data)
        if data:
            facts["first_row_type"] = type(data[0]).__name__
            facts["first_row"] = data[0].to_dict() if hasattr(data[0], "to_dict") else None
    elif data is not None and hasattr(data, "to_dict"):
        facts["rows"] = 1
        facts["first_row_type"] = type(data).__name__
    if hasattr(parsed, "to_dict"):
        facts["keys"] = sorted(parsed.to_dict().keys())
    if isinstance(parsed, str):
        facts["length"] = len(parsed)
    return facts


def main():
    package_dir, base_url, token, plan_path = sys.argv[1:5]
    plan = json.loads(Path(plan_path).read_text())
    package_dir = Path(package_dir)
    sys.path.insert(0, str(package_dir.parent))
    package = importlib.import_module(package_dir.name)
    client = package.AuthenticatedClient(base_url=base_url, token=token, raise_on_unexpected_status=True)
    api = importlib.import_module(f"{package_dir.name}.api")
    operations = {}
    for group in pkgutil.iter_modules(api.__path__):
        module = importlib.import_module(f"{api.__name__}.{group.name}")
        for op in pkgutil.iter_modules(module.__path__):
            operations[op.name] = importlib.import_module(f"{module.__name__}.{op.name}")
    calls = [(name, {}) for name in sorted(operations)] + [
        (c["operation"], c["query"]) for c in plan["extra"]
    ]
    for name, query in calls:
        function = operations[name].sync_detailed
        signature = inspect.signature(function)
        kwargs = {}
        path_values = {**plan["path"], **plan.get("path_by_operation", {}).get(name, {})}
        for param in signature.parameters.values():
            if param.name in path_values and param.kind == param.POSITIONAL_OR_KEYWORD:
                kwargs[param.name] = convert(path_values[param.name], param.annotation)
        for key, value in query.items():
            param = signature.parameters[key]
            kwargs[key] = convert(value, param.annotation)
        try:
            response = function(client=client, **kwargs)
            result = {"status": int(response.status_code), **describe(response.parsed)}
        except Exception as error:  # reported, and failed by the test
            result = {"status": None, "error": f"{type(error).__name__}: {error}"}
        print(json.dumps({"operation": name, "query": query, **result}), flush=True)


if __name__ == "__main__":
    main()
