"""``sktdtw fit``'s estimator options: one per :class:`DejaVidClassifier` parameter.

They are generated from its ``get_params()`` and ``_parameter_constraints`` and documented
from its docstring, so a new parameter becomes an option without touching the command line.
"""

import argparse
import inspect
import re
from numbers import Integral

__all__ = ["add_estimator_options", "estimator_params"]

# Namespace prefix of the estimator options, apart from the command's own (--store, --out...).
_PARAM = "param_"


def _parameter_docs(docstring):
    """The first sentence of each parameter's numpydoc entry, as plain text."""
    lines = inspect.cleandoc(docstring).splitlines()
    start = lines.index("Parameters") + 2  # skip the underline
    docs, name = {}, None
    for line in lines[start:]:
        if line and not line[0].isspace():
            match = re.match(r"(\w+)\s*:", line)
            if not match:  # the next section's title
                break
            name = match.group(1)
            docs[name] = []
        elif name is not None and line.strip():
            docs[name].append(line.strip())
    sentences = {}
    for name, words in docs.items():
        text = " ".join(words)
        text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text).replace("``", "")
        match = re.match(r"(.*?\.)(\s|$)", text)
        sentences[name] = match.group(1) if match else text
    return sentences


def _named(function, name):
    # argparse names the type in "invalid <name> value" messages.
    function.__name__ = name
    return function


def _nullable(convert, name):
    def parse(text):
        return None if text.lower() == "none" else convert(text)

    return _named(parse, f"{name} or none")


def _choice(options, nullable):
    allowed = sorted(options) + (["none"] if nullable else [])

    def parse(text):
        if nullable and text.lower() == "none":
            return None
        if text not in options:
            raise argparse.ArgumentTypeError(
                f"invalid choice: {text!r} (choose from {', '.join(allowed)})"
            )
        return text

    return _named(parse, "choice"), "{" + ",".join(allowed) + "}"


def _option(constraints, default):
    """``add_argument`` keywords for a parameter, from its scikit-learn constraints."""
    from sklearn.utils._param_validation import Interval, StrOptions

    nullable = None in constraints
    words = [c for c in constraints if isinstance(c, StrOptions)]
    numbers = [c for c in constraints if isinstance(c, Interval)]
    if words and numbers:  # e.g. an int or "auto"
        convert = int if numbers[0].type is Integral else float
        options = sorted(words[0].options)

        def number_or_word(text):
            return text if text in options else convert(text)

        return {"type": _named(number_or_word, convert.__name__),
                "metavar": f"{convert.__name__.upper()}|{'|'.join(options)}"}
    for constraint in constraints:
        if constraint == "boolean":
            return {"action": argparse.BooleanOptionalAction}
        if isinstance(constraint, StrOptions):
            parse, metavar = _choice(constraint.options, nullable)
            return {"type": parse, "metavar": metavar}
        if isinstance(constraint, Interval):
            number = (int, "int") if constraint.type is Integral else (float, "float")
        elif constraint in ("verbose", Integral):
            number = (int, "int")
        elif constraint == "random_state":
            number, nullable = (int, "int"), True
        elif constraint is str:
            number = (str, "str")
        else:
            continue
        convert, name = number
        parse = _nullable(convert, name) if nullable else convert
        return {"type": parse, "metavar": name.upper() + ("|none" if nullable else "")}
    # Unknown constraints: go by the default value.
    if isinstance(default, bool):
        return {"action": argparse.BooleanOptionalAction}
    convert = type(default) if isinstance(default, (int, float)) else str
    return {"type": _nullable(convert, convert.__name__) if default is None or nullable
            else convert}


def _shown(value):
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def add_estimator_options(parser):
    """Add one option per DejaVidClassifier parameter to ``parser`` (imports PyTorch)."""
    from .. import DejaVidClassifier

    group = parser.add_argument_group(
        "estimator options",
        "DejaVidClassifier parameters, one option each (use none for None); unset options "
        "keep the estimator's defaults",
    )
    docs = _parameter_docs(DejaVidClassifier.__doc__)
    constraints = DejaVidClassifier._parameter_constraints
    for name, default in DejaVidClassifier().get_params().items():
        help_text = f"{docs.get(name, name)} (default: {_shown(default)})"
        group.add_argument(
            "--" + name.replace("_", "-"), dest=_PARAM + name, default=argparse.SUPPRESS,
            help=help_text.replace("%", "%%"), **_option(constraints.get(name, []), default),
        )


def estimator_params(args):
    """The estimator parameters set on the command line, by name."""
    return {dest[len(_PARAM):]: value for dest, value in vars(args).items()
            if dest.startswith(_PARAM)}
