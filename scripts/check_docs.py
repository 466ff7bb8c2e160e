"""Check that README.md and docs/*.md name only stages, params keys and files that exist.

    .venv/bin/python scripts/check_docs.py [FILE ...]    # default: README.md and docs/*.md

Prints one line per problem (`file:line: ...`) and exits 1 when there is any; CI runs it through
tests/unit/test_docs.py. "Code" below means inline code spans and fenced code blocks.

Stages, checked against the stages DVC generates from dvc.yaml (`dvc.repo.Repo(...).index`:
train@gan-0, ...) and its stage names (train, compare, ...):
- every `<name>@<item>` token, in code or prose, whose name is a stage name of dvc.yaml;
- in code, the targets of `dvc repro`, `dvc status` and `dvc dag`, the values of `--targets` and
  `--single-item` (paths and options aside; after `dvc metrics`/`dvc plots` they are files), and
  `stage 'X'` (DVC's log lines); `--targets` (pipelines.run) takes generated stages, not `train`;
- in prose, a code span right before "stage" or "stages" (the `compare` stage);
- the first column of a table whose first header is "stage".
A token there shaped like a stage name (a word, optionally `@` and an item) must be a stage or a
stage name. An item may hold placeholders (`<family>`, `*`, `{0,1,2}`): the template must match a
stage (each brace alternative on its own), and `<...>` stands for one matrix value, so
`train@<family>` (the seed missing) fails.

Params keys: in code, a dotted name (`evaluate.feature_spaces`, `-S gan.z_dim=32`) whose first part
is a top-level section of genbench.schema.SCHEMAS (seed, data, gan, vae, ddpm, evaluate, compare,
verdict, orchestration) must resolve through the pydantic models: a model's fields, nested models,
any key of a dict; `*` and `<...>` parts match anything. A name ending in a file extension
(`compare.json`) is a file, and one glued to `/`, `.`, `@`, `<` or a word (`eval/curve.fid`,
`tags.genbench.x`) is not a key; a name that is no key may still be a module path (`compare.stats`,
below). A fenced YAML block with a section among its top-level keys is a params snippet: all its
top-level keys must be sections and every nested key must resolve.

Module paths: in code, a dotted name of three parts or more starting with `genbench.`, or any
starting with a module or subpackage of src/genbench (`evaluation.evaluator_dir.x`), must name a
module there and then a name that module defines or imports (deeper parts are not checked).

Files: in code and in relative Markdown links, a path starting with a source folder (src/, stages/,
tests/, docs/, scripts/, benchmarks/, pipelines/, .ci/), or a `.py` path starting with a
subpackage of src/genbench (`families/common/sizes.py`), must exist; `<...>` and `*` match any
name, `{a,b}` each alternative. Outputs (models/, metrics/, data/, ...) are not checked.
"""

import argparse
import ast
import functools
import itertools
import re
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "genbench"
SOURCE_ROOTS = ("src", "stages", "tests", "docs", "scripts", "benchmarks", "pipelines", ".ci")
FILE_EXTENSIONS = {
    "py", "json", "yaml", "yml", "md", "csv", "png", "pt", "pth", "npy", "safetensors", "html",
    "db", "lock", "toml", "txt", "in", "sh", "cfg", "ini", "tmp", "log",
}  # fmt: skip

PLACEHOLDER = re.compile(r"<[^<>]+>")
STAGE_SHAPE = re.compile(r"[A-Za-z_]\w*(?:@[\w<>{},*-]+)?")
NAME_AT_ITEM = re.compile(r"(?<![\w.@/-])([A-Za-z_]\w*)@([\w<>{},*-]+)")
DOTTED = re.compile(r"(?<![\w./@$<-])([A-Za-z_]\w*(?:\.(?:[\w*-]+|<[^<>\s]+>))+)")
ROOTS = "|".join(map(re.escape, SOURCE_ROOTS))
PATH = re.compile(rf"(?<![\w./-])((?:{ROOTS})/[\w./<>{{}},*-]*)")
PY_PATH = re.compile(r"(?<![\w./-])([a-z_]\w*/[\w/<>*-]*\.py)\b")
LINK = re.compile(r"\]\(([^)\s]+)\)")
SPAN = re.compile(r"(`+)([^`]+?)\1(?!`)")
FENCE = re.compile(r"^\s*(```+|~~~+)\s*(\S*)")
ARGS = r"((?:\s+[^\s;&|#)`-][^\s;&|#)`]*)+)"  # words up to a shell separator, option or comment
DVC_TARGETS = re.compile(r"\bdvc\s+(?:--\S+\s+)*(?:repro|status|dag)\b((?:\s+[^\s;&|#)`]+)*)")
OPTION_TARGETS = re.compile(r"--(targets|single-item)\b" + ARGS)
FILE_TARGETS = re.compile(r"\bdvc\s+(?:metrics|plots|params)\b")
LOG_STAGE = re.compile(r"\b[Ss]tage '([^']+)'")
PROSE_STAGE = re.compile(r"`([^`]+)`\s+stages?\b")


# ---------------------------------------------------------------- what exists


@functools.cache
def stages() -> tuple[frozenset[str], frozenset[str]]:
    """The stages DVC generates from dvc.yaml (train@gan-0, ...) and the stage names in it."""
    from dvc.repo import Repo  # a script, not the package: DVC's own reading of dvc.yaml

    with Repo(str(ROOT)) as repo:
        generated = frozenset(stage.addressing for stage in repo.index.stages)
    return generated, frozenset(name.split("@")[0] for name in generated)


@functools.cache
def sections() -> dict[str, typing.Any]:
    """genbench.schema.SCHEMAS: every top-level params section and its model."""
    from genbench.schema import SCHEMAS

    return dict(SCHEMAS)


@functools.cache
def package_names() -> frozenset[str]:
    """The modules and subpackages of src/genbench (cli, config, evaluation, ...)."""
    found = {p.stem for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    return frozenset(found - {"__init__"})


@functools.cache
def defined_names(module: Path) -> frozenset[str]:
    """The names a module defines or imports at its top level."""
    names = set()
    for node in ast.parse(module.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return frozenset(names)


def is_placeholder(part: str) -> bool:
    return part == "*" or bool(PLACEHOLDER.fullmatch(part))


def key_resolves(schema: typing.Any, parts: list[str]) -> bool:
    """Whether `parts` lead from `schema` (a pydantic model, a dict or a leaf type) to a key."""
    if not parts or is_placeholder(parts[0]):
        return True
    for option in _options(schema):
        fields = getattr(option, "model_fields", None)
        if fields is not None and parts[0] in fields:
            if key_resolves(fields[parts[0]].annotation, parts[1:]):
                return True
        elif typing.get_origin(option) is dict:
            return key_resolves(typing.get_args(option)[1], parts[1:])
    return False


def _options(schema: typing.Any) -> list[typing.Any]:
    """The types a value of `schema` may take: Optional, unions and Annotated unwrapped."""
    origin = typing.get_origin(schema)
    if origin is typing.Annotated:
        return _options(typing.get_args(schema)[0])
    if origin in (typing.Union, types.UnionType):
        return [option for arg in typing.get_args(schema) for option in _options(arg)]
    return [schema]


def module_resolves(parts: list[str]) -> bool:
    """Whether `parts` (after `genbench`) name a module of the package and a name it defines."""
    here = PACKAGE
    for i, part in enumerate(parts):
        if is_placeholder(part):
            return True
        if (here / part).is_dir():
            here = here / part
        elif (here / f"{part}.py").is_file():
            rest = parts[i + 1 :]
            return not rest or rest[0] in defined_names(here / f"{part}.py")
        else:  # a name the package itself defines or re-exports
            init = here / "__init__.py"
            return here != PACKAGE and init.is_file() and part in defined_names(init)
    return True


def expand_braces(text: str) -> list[str]:
    """`a-{0,1}` -> [`a-0`, `a-1`] (every brace group, one level deep)."""
    parts = re.split(r"\{([^{}]*)\}", text)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def path_exists(token: str, base: Path) -> bool:
    """Whether a path written in the docs exists under `base` (placeholders match any name)."""
    pattern = PLACEHOLDER.sub("*", token.split("#")[0]).rstrip("/") or "."
    if "..." in pattern:
        return True
    return all(
        any(base.glob(each)) if "*" in each else (base / each).exists()
        for each in expand_braces(pattern)
    )


# ---------------------------------------------------------------- what a token is


def stage_problem(token: str, groups: bool = True) -> str | None:
    """Why `token` is not a stage of dvc.yaml (a generated stage, a template, or a stage name)."""
    token = token.strip("'\".,;:()")
    if not STAGE_SHAPE.fullmatch(token) or PLACEHOLDER.fullmatch(token):
        return None  # a path, a command, or `<stage>` itself
    generated, names = stages()
    for each in expand_braces(token):
        if each in generated or (groups and each in names):
            continue
        name, _, item = each.partition("@")
        if not groups and each in names:
            return f"`{each}` names several stages; --targets takes one ({name}@...)"
        if not re.search(r"[<*]", item):
            return f"`{each}` is not a stage of dvc.yaml"
        pieces = re.split(r"(<[^<>]+>|\*)", item)  # <x>: one matrix value (no `-`); *: any
        item = "".join(
            "[^-@]+" if p[:1] == "<" else ".*" if p == "*" else re.escape(p) for p in pieces
        )
        if not any(re.fullmatch(f"{re.escape(name)}@{item}", stage) for stage in generated):
            return f"`{each}` matches no stage of dvc.yaml"
    return None


def stage_tokens(text: str, code: bool) -> dict[int, tuple[str, bool]]:
    """{offset: (token, whether a stage name will do)} of every stage a piece of text names."""
    found = {}

    def add(offset: int, token: str, groups: bool = True) -> None:
        groups = groups and found.get(offset, (token, True))[1]  # the stricter reading wins
        found[offset] = (token, groups)

    spans_blanked = text if code else SPAN.sub(lambda m: " " * len(m.group(0)), text)
    for match in NAME_AT_ITEM.finditer(spans_blanked):  # in prose, the code spans' are code's
        if match.group(1) in stages()[1]:
            add(match.start(), match.group(0))
    for match in PROSE_STAGE.finditer("" if code else text):
        add(match.start(1), match.group(1))
    targets = [(m, 1, True) for m in DVC_TARGETS.finditer(text)] + [
        (m, 2, m.group(1) != "targets")
        for m in OPTION_TARGETS.finditer(text)
        if not FILE_TARGETS.search(text[: m.start()])
    ]
    for match, group, groups in targets if code else []:
        for word in re.finditer(r"[^\s:]+(?=\s|$)", match.group(group)):  # dvc.yaml:x -> x
            if not word.group().startswith("-") and not re.search(r"[/.]", word.group()):
                add(match.start(group) + word.start(), word.group(), groups)
    for match in LOG_STAGE.finditer(text if code else ""):
        add(match.start(1), match.group(1))
    return found


def dotted_problem(token: str) -> str | None:
    """Why a dotted name in code is neither a params key nor a module path (None: it is one)."""
    parts = token.split(".")
    if parts[-1] in FILE_EXTENSIONS:
        return None
    schemas = sections()
    if parts[0] in schemas:
        if key_resolves(schemas[parts[0]], parts[1:]):
            return None
        if parts[0] in package_names() and module_resolves(parts):
            return None
        return f"params key `{token}` does not exist (genbench.schema.SCHEMAS)"
    modules = parts[1:] if parts[0] == "genbench" and len(parts) >= 3 else parts
    if modules[0] not in package_names() or module_resolves(modules):
        return None
    return f"module path `{token}` does not exist under src/genbench"


def yaml_problems(text: str, first_line: int) -> Iterator[tuple[int, str]]:
    """(line, problem) of a fenced YAML block that is a params snippet (a section at the top)."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return
    schemas = sections()
    if not isinstance(node, yaml.MappingNode) or not any(k.value in schemas for k, _ in node.value):
        return
    todo = [([], node)]
    while todo:
        path, mapping = todo.pop()
        for key_node, value in mapping.value:
            here = [*path, str(key_node.value)]
            line = first_line + key_node.start_mark.line
            if here[0] not in schemas:
                yield line, f"params section `{here[0]}` does not exist (SCHEMAS)"
            elif not key_resolves(schemas[here[0]], here[1:]):
                yield line, f"params key `{'.'.join(here)}` does not exist (SCHEMAS)"
            elif isinstance(value, yaml.MappingNode):
                todo.append((here, value))


# ---------------------------------------------------------------- reading Markdown


def split_markdown(text: str) -> tuple[list[tuple[int, str]], str, list[tuple[str, int, str]]]:
    """The code ((line, text) of every span and fenced line), the prose (fenced lines blanked,
    so offsets map to lines) and the fenced blocks (language, first line, text)."""
    code, prose, blocks = [], [], []
    fence, lang, start, body = None, "", 0, []
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if fence is None and match:
            fence, lang, start, body = match.group(1), match.group(2), number + 1, []
        elif fence is not None and not line.strip().strip(fence[0]) and fence in line:
            blocks.append((lang, start, "\n".join(body)))
            fence = None
        elif fence is not None:
            code.append((number, line))
            body.append(line)
        prose.append(line if fence is None and not match else "")
    joined = "\n".join(prose)
    for span in SPAN.finditer(joined):
        if "\n\n" not in span.group(2):
            code.append((joined.count("\n", 0, span.start(2)) + 1, span.group(2)))
    return code, joined, blocks


def table_stage_tokens(text: str) -> Iterator[tuple[int, str]]:
    """(line, token) of the code spans in the first column of tables headed `| stage |`."""
    in_table = False
    for number, line in enumerate(text.splitlines(), 1):
        first = line.strip().strip("|").split("|")[0].strip()
        if not line.lstrip().startswith("|"):
            in_table = False
        elif first.lower() == "stage":
            in_table = True
        elif in_table:
            yield from ((number, span.group(2)) for span in SPAN.finditer(first))


def check_file(path: Path) -> list[tuple[int, str]]:
    """Every (line, problem) of one Markdown file."""
    text = path.read_text(encoding="utf-8")
    code, prose, blocks = split_markdown(text)
    problems = []

    def add(line: int, problem: str | None) -> None:
        if problem:
            problems.append((line, problem))

    def line_of(start: int, text: str, offset: int) -> int:
        return start + text.count("\n", 0, offset)

    for offset, (token, groups) in stage_tokens(prose, code=False).items():
        add(line_of(1, prose, offset), stage_problem(token, groups))
    for match in LINK.finditer(prose):
        target = match.group(1)
        if not re.match(r"[a-z]+:|#", target) and not path_exists(target, path.parent):
            add(line_of(1, prose, match.start()), f"link target `{target}` does not exist")
    for line, piece in code:
        for offset, (token, groups) in stage_tokens(piece, code=True).items():
            add(line_of(line, piece, offset), stage_problem(token, groups))
        for match in DOTTED.finditer(piece):
            add(line_of(line, piece, match.start()), dotted_problem(match.group(1).rstrip("-")))
        for pattern, base in ((PATH, ROOT), (PY_PATH, PACKAGE)):
            for match in pattern.finditer(piece):
                token = match.group(1).rstrip(".,;:")
                if pattern is PY_PATH and token.split("/")[0] not in package_names():
                    continue
                if not path_exists(token, base) and not path_exists(token, ROOT):
                    add(line_of(line, piece, match.start()), f"`{token}` does not exist")
    for line, token in table_stage_tokens(text):
        add(line, stage_problem(token))
    for lang, start, body in blocks:
        if lang in ("yaml", "yml"):
            problems.extend(yaml_problems(body, start))
    return sorted(set(problems))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="default: README.md and docs/*.md")
    args = parser.parse_args(argv)
    files = args.files or [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    count = 0
    for path in files:
        shown = path.resolve()
        shown = shown.relative_to(ROOT) if shown.is_relative_to(ROOT) else path
        for line, problem in check_file(path):
            print(f"{shown}:{line}: {problem}")
            count += 1
    return 1 if count else 0


if __name__ == "__main__":
    sys.exit(main())
