"""The package layout's rules (docs/layout.md), read from the source: imports point down the layers,
and no module uses a private name of another."""

import ast
from pathlib import Path

UDC = Path(__file__).resolve().parents[1] / "udc"

# Lowest first; a package may import its own modules and any package of a lower layer.
LAYERS = (
    {"compat", "errors"},
    {"fileio", "tflite_file"},
    {"workdir_lock"},
    {"data", "models", "targets"},
    {"space", "training"},
    {"costs"},
    {"arch", "report"},
    {"deploy"},
    {"search", "ensemble"},
    {"workflows"},
    {"cli"},
)
LAYER_OF = {package: i for i, packages in enumerate(LAYERS) for package in packages}


def _modules():
    for path in sorted(UDC.rglob("*.py")):
        parts = path.relative_to(UDC.parent).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), ast.parse(path.read_text())


def _package(module: str) -> str:
    """The top-level package (or module) of udc that `module` belongs to: 'udc' for udc itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "udc"


def _imports(tree):
    """(imported udc module, names imported from it, line) of every import, lazy ones included."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "udc":
            names = [a.name for a in node.names]
            if node.module == "udc":  # `from udc import tflite_file`: the module named
                for name in names:
                    yield (f"udc.{name}" if name != "__version__" else "udc"), [], node.lineno
            else:
                yield node.module, names, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "udc":
                    yield alias.name, [], node.lineno


def test_every_package_has_a_layer():
    packages = {_package(module) for module, _ in _modules()} - {"udc"}
    assert packages == set(LAYER_OF), "add the new package to LAYERS and docs/layout.md"


def upward_imports(module, tree) -> list:
    """Imports of `module` (its parsed source `tree`) that do not point down the layers."""
    own, found = _package(module), []
    for imported, _, line in _imports(tree):
        other = _package(imported)
        if own == "udc" or other in (own, "udc"):
            continue  # udc/__init__ names the public API lazily; `import udc` sets the Keras flavour
        if LAYER_OF[other] >= LAYER_OF[own]:
            found.append(f"{module}:{line} imports {imported}")
    return found


def private_uses(module, tree) -> list:
    """Private names of other udc modules that `module` imports or reads as `alias._name`."""
    found, aliases = [], {}  # local name -> the udc module or name it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "udc":
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{module}:{node.lineno} imports {node.module}.{alias.name}")
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "udc" and alias.asname:
                    aliases[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            found.append(f"{module}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}")
    return found


def test_imports_point_down_the_layers():
    upward = [line for module, tree in _modules() for line in upward_imports(module, tree)]
    assert not upward, "imports that do not point down (docs/layout.md):\n" + "\n".join(upward)


def test_space_and_targets_never_import_each_other_and_ensemble_runs_files_only():
    for module, tree in _modules():
        banned = {"space": {"targets", "costs"}, "targets": {"space", "costs"},
                  "ensemble": {"space", "search", "costs", "workflows"}}.get(_package(module), set())
        for imported, _, line in _imports(tree):
            assert _package(imported) not in banned, f"{module}:{line} imports {imported}"


def test_no_module_uses_a_private_name_of_another():
    used = [line for module, tree in _modules() for line in private_uses(module, tree)]
    assert not used, "\n".join(used)


def test_the_checks_catch_what_they_look_for():
    source = ast.parse("from udc.space import layers as search_layers\nfrom udc.deploy.strip import _cut\n"
                       "import udc.search.loop\nx = search_layers._Hidden\n")
    assert private_uses("udc.costs.size_model", source) == [
        "udc.costs.size_model:2 imports udc.deploy.strip._cut",
        "udc.costs.size_model:4 uses udc.space.layers._Hidden"]
    assert upward_imports("udc.costs.size_model", source) == [
        "udc.costs.size_model:2 imports udc.deploy.strip", "udc.costs.size_model:3 imports udc.search.loop"]
