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
    assert not missing, f"not in the README's architecture table: {missing}"
    # ... and every file the table names exists.
    files = {n for n in named if re.fullmatch(r"\w+\.(py|h|cpp|cu)", n)}
    tree = {p.name for p in modules + sources} | {
        p.name for p in (ROOT / "sktdtw").rglob("*.py")
    }
    assert files <= tree, f"named in the table but not in the tree: {files - tree}"


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
