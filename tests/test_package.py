"""The package as installed: its version, its declared dependencies, and what importing
the op loads."""

import ast
import importlib.metadata
import json
import re
import subprocess
import sys

import pytest
import tomllib

import sktdtw

from conftest import ROOT, subprocess_env


def test_installed_version_is_the_package_version():
    # pyproject.toml reads the version from sktdtw/__init__.py: one place to change it.
    assert importlib.metadata.version("sktdtw") == sktdtw.__version__


def _module_level_imports():
    """The distributions of the third-party modules that sktdtw's modules import when
    they are imported (optional extras are imported inside the functions that need them)."""
    distributions = importlib.metadata.packages_distributions()
    imported = set()
    for file in (ROOT / "sktdtw").rglob("*.py"):
        for node in ast.parse(file.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "sktdtw":
                    imported.update(d.lower() for d in distributions[top])
    return imported


def test_runtime_dependencies_are_those_imported():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[<>=!~;\[ ]", dep)[0].lower() for dep in project["dependencies"]}
    assert declared == _module_level_imports()


def test_importing_the_op_loads_no_estimator():
    # The op is usable on its own: importing it must not pay for scikit-learn, SciPy, the
    # estimators or the data stores.
    code = (
        "import json, sys\nimport sktdtw.dtw\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sklearn', 'scipy') or m.startswith(('sktdtw._classifier', 'sktdtw._sliding_encoder', "
        "'sktdtw._windows', 'sktdtw.io', 'sktdtw.video')))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=subprocess_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


@pytest.mark.parametrize("users_policy", [None, "ACTIVE"])
def test_openmp_threads_sleep_while_they_wait_unless_the_user_says_otherwise(users_policy):
    # Set before torch loads the OpenMP runtime, which reads it once.
    env = subprocess_env()
    env.pop("OMP_WAIT_POLICY", None)
    if users_policy:
        env["OMP_WAIT_POLICY"] = users_policy
    code = "import os, sktdtw, torch\nprint(os.environ['OMP_WAIT_POLICY'])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (users_policy or "PASSIVE")


def _architecture_table():
    """The rows of the README's architecture table, as text."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    return "\n".join(line for line in section.splitlines() if line.startswith("| "))


def _private_subpackages():
    """The private subpackages of sktdtw (``_cli``, ``_model``, ...), which group the
    modules of one layer."""
    return sorted(p for p in (ROOT / "sktdtw").iterdir()
                  if p.name.startswith("_") and (p / "__init__.py").exists())


def test_readme_architecture_table_matches_the_tree():
    table = _architecture_table()
    named = set(re.findall(r"`([\w./]+)", table))
    modules = [p for p in (ROOT / "sktdtw").glob("*.py") if not p.name.startswith("__")]
    packages = [p for p in (ROOT / "sktdtw").iterdir() if (p / "__init__.py").exists()]
    sources = list((ROOT / "src_cuda").iterdir())
    # Every module, subpackage and compiled source is placed in a layer ...
    missing = [p.name for p in modules + sources if p.name not in named]
    missing += [p.name for p in packages if f"{p.name}/" not in named
                and f"sktdtw/{p.name}/" not in named]
    # ... every module of a private subpackage in the row of its package ...
    for package in _private_subpackages():
        row = next((r for r in table.splitlines() if f"`{package.name}/`" in r), "")
        missing += [f"{package.name}/{m.name}" for m in package.glob("*.py")
                    if m.name != "__init__.py" and f"`{m.name}`" not in row]
    assert not missing, f"not in the README's architecture table: {missing}"
    # ... and every file the table names exists.
    files = {n for n in named if re.fullmatch(r"\w+\.(py|h|cpp|cu)", n)}
    tree = {p.name for p in modules + sources} | {
        p.name for p in (ROOT / "sktdtw").rglob("*.py")
    }
    assert files <= tree, f"named in the table but not in the tree: {files - tree}"


def _import_graph():
    """Every module of sktdtw (dotted name) and the sktdtw modules and packages it imports,
    anywhere in its code (function-level imports too), read with ``ast``."""
    root = ROOT / "sktdtw"

    def name_of(path):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    files = {name_of(p): p for p in root.rglob("*.py")}
    compiled = {"sktdtw._core"}  # the extension module: it imports nothing of sktdtw
    graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(parent + ([node.module] if node.module else []))
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names if alias.name in files)
                continue
            else:
                continue
            # ``from . import x``: the module x if there is one, the module the top package
            # loads x from on first use (PEP 562), else the package.
            modules = [t for t in targets[1:] if t in files or t in compiled]
            modules += [f"sktdtw{sktdtw._LAZY[alias.name]}" for alias in node.names
                        if base == "sktdtw" and alias.name in sktdtw._LAZY]
            imported.update(modules or [t for t in targets[:1] if t in files])
        imported.discard(name)
        graph[name] = imported
    graph.update({name: set() for name in compiled})
    return graph


def test_the_import_graph_has_no_cycle():
    graph = _import_graph()
    assert {"sktdtw._classifier", "sktdtw._model.initialization", "sktdtw._cli.demo"} <= set(graph)
    assert "sktdtw._model.barycenters" in graph["sktdtw._dba"]  # the graph sees imports
    assert "sktdtw._classifier" in graph["sktdtw._cli.demo"]  # and the top package's names
    done, cycles = set(), []

    def visit(module, stack):
        if module in stack:
            cycles.append(stack[stack.index(module):] + [module])
            return
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, stack + [module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert not cycles, cycles


# The layers, from the bottom; a module may import only from its own layer and those below.
_LAYERS = [
    ("utilities", ("_errors", "_atomic", "_csv", "_persistence", "_device", "_typing", "_core")),
    ("the op", ("dtw",)),
    ("data source", ("_source",)),
    ("model pieces", ("_model",)),
    ("training engine", ("_training",)),
    ("estimators", ("_classifier", "_inference", "_dba", "_sliding_encoder", "_windows")),
    ("command line", ("_cli",)),
]


def _layer(module):
    """The index in _LAYERS of a dotted module name, or None outside them (the top
    package, ``io``, ``video``, ``encoders``, ``datasets``)."""
    first = module.split(".")[1] if "." in module else None
    return next((i for i, (_, names) in enumerate(_LAYERS) if first in names), None)


def test_each_layer_imports_only_the_layers_below():
    graph = _import_graph()
    # The top package loads its names on first use (PEP 562): importing it (for
    # __version__) imports nothing else, so any layer may.
    assert graph["sktdtw"] == set()
    below_estimators = _layer("sktdtw._classifier")
    wrong = []
    for module, imported in graph.items():
        layer = _layer(module)
        if layer is None:
            continue
        for target in imported - {"sktdtw"}:
            target_layer = _layer(target)
            # Below the estimators, nothing but the layers: no estimator, no I/O.
            if (target_layer is None and layer < below_estimators) or (
                    target_layer is not None and target_layer > layer):
                wrong.append(f"{module} ({_LAYERS[layer][0]}) imports {target}")
    assert not wrong, wrong


def test_no_piece_below_the_estimators_takes_an_estimator():
    # The pieces get explicit settings: none of them imports scikit-learn's estimator
    # machinery (BaseEstimator, clone) or names a parameter after an estimator.
    below_estimators = _layer("sktdtw._classifier")
    found = []
    for path in (ROOT / "sktdtw").rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(
            ".__init__")
        layer = _layer(module)
        if layer is None or layer >= below_estimators:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "sklearn.base":
                found.append(f"{module} imports sklearn.base")
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found += [f"{module}.{node.name}({arg.arg})" for arg in node.args.args
                          + node.args.kwonlyargs
                          if arg.arg in ("estimator", "classifier", "clf", "initializer")]
    assert not found, found


def test_every_file_the_docs_cite_is_in_the_repository():
    # README, docs, docstrings and kernel comments cite files of the repository itself
    # (the specification, benchmarks, results, examples): a clone must have them all.
    texts = [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    texts += [*(ROOT / "sktdtw").rglob("*.py"), *(ROOT / "src_cuda").iterdir()]
    pattern = re.compile(r"\b((?:docs|benchmarks|examples|tests|src_cuda)/[\w./-]*\w\.\w+)")
    cited = {
        (text.name, path)
        for text in texts
        for path in pattern.findall(text.read_text(encoding="utf-8"))
    }
    missing = sorted((name, path) for name, path in cited if not (ROOT / path).exists())
    assert cited and not missing, missing


_PUBLIC_MODULES = ["sktdtw", "sktdtw.dtw", "sktdtw.io", "sktdtw.video", "sktdtw.datasets",
                   "sktdtw.encoders"]


def _public_callables():
    """Every public function, and every public method that sktdtw defines on a public
    class (not the estimators' ``__init__``, whose parameters ``_parameter_constraints``
    states), by qualified name."""
    import importlib
    import inspect

    for module_name in _PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj):
                yield f"{module_name}.{name}", obj
            elif inspect.isclass(obj) and not issubclass(obj, Exception):
                for attr, member in vars(obj).items():
                    if inspect.isfunction(member) and not attr.startswith("_"):
                        yield f"{module_name}.{name}.{attr}", member
                for base in obj.__mro__[1:]:  # methods of sktdtw's mixins, e.g. predict
                    if base.__module__.startswith("sktdtw"):
                        for attr, member in vars(base).items():
                            if inspect.isfunction(member) and not attr.startswith("_"):
                                yield f"{module_name}.{name}.{attr}", member


def test_the_public_api_is_typed_and_says_so():
    import importlib.resources
    import inspect
    import typing

    assert importlib.resources.files("sktdtw").joinpath("py.typed").is_file()
    package = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert package["tool"]["scikit-build"]["wheel"]["packages"] == ["sktdtw"]  # ships it
    missing, seen = [], set()
    for qualname, function in _public_callables():
        seen.add(qualname)
        hints = typing.get_type_hints(function)  # every annotation resolves
        parameters = [p for p in inspect.signature(function).parameters.values()
                      if p.name != "self"]
        missing += [f"{qualname}({p.name})" for p in parameters if p.name not in hints]
        if "return" not in hints:
            missing.append(f"{qualname} -> ?")
    assert not missing, missing
    # the walk reaches the methods users call
    assert {"sktdtw.DejaVidClassifier.predict_proba", "sktdtw.TSESlidingEncoder.transform",
            "sktdtw.dtw.weighted_dtw_path", "sktdtw.io.TSEStore.read_batch"} <= seen


def test_docstrings_cite_no_file_a_pip_install_lacks():
    # help() and the rendered API docs show docstrings to users who have the package, not
    # the repository: comments may cite its files (for maintainers), docstrings may not.
    pattern = re.compile(r"\b(?:docs|benchmarks|examples|tests|src_cuda)/|README|DESIGN\.md")
    citing = []
    for path in (ROOT / "sktdtw").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        nodes = [tree, *(n for n in ast.walk(tree) if isinstance(
            n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))]
        citing += [f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 1)}" for node in nodes
                   if pattern.search(ast.get_docstring(node) or "")]
    assert not citing, citing
