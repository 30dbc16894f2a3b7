"""`lightkeeper init | generate | check | test-rules | schema | slo`: observability as code.

Each command imports the spec, the generators and rich's widgets it needs when it runs,
so `lightkeeper --help` loads none of them.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from rich.progress import Progress

    from lightkeeper.spec.loader import Problem
    from lightkeeper.spec.models import Spec
    from lightkeeper.stack.errors import GenerationError

SpecPath = Annotated[Path, typer.Option("--spec", "-s", help="The spec file to read.")]
OutPath = Annotated[Path, typer.Option("--out", "-o", help="Folder the stack configuration goes to.")]
WriteTo = Annotated[Path | None, typer.Option("--out", "-o", help="Write here instead of standard output.")]
Target = Literal["compose", "kubernetes"]
DEFAULT_SPEC = Path("lightkeeper.yaml")
DEFAULT_OUT = Path("observability")

console = Console()
err = Console(stderr=True)
slo_app = typer.Typer(help="Import SLOs from, or export them to, OpenSLO v1 YAML.", no_args_is_help=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    # Messages quote the user's YAML (`[a, b]`, `{high: 0.1}`): never let rich read it as markup.
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _print_problems(spec_path: Path, problems: list[Problem]) -> None:
    err.print(f"[bold red]{escape(str(spec_path))} has {len(problems)} problem(s):[/]", highlight=False)
    for problem in problems:
        err.print(f"  {problem}", highlight=False, markup=False, soft_wrap=True)


def _generation_failed(spec_path: Path, exc: GenerationError) -> typer.Exit:
    """Point a generator's complaint at the spec value at fault, like a validation error."""
    from lightkeeper.spec.loader import problem_at

    _print_problems(spec_path, [problem_at(spec_path, exc.loc, str(exc))])
    return typer.Exit(1)  # 2 stays "the spec does not validate"; this one validated


def _load(spec_path: Path) -> Spec:
    from lightkeeper.spec.loader import SpecError, load_spec

    try:
        return load_spec(spec_path)
    except SpecError as exc:
        _print_problems(spec_path, exc.problems)
        raise typer.Exit(2) from None


def _spinner() -> Progress:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=True
    )


def init(
    path: Annotated[Path, typer.Option("--path", "-p", help="Where to write the spec.")] = DEFAULT_SPEC,
    app: Annotated[
        str | None,
        typer.Option(
            "--app", help="module:attribute of your FastAPI app; its routes become route groups and SLOs."
        ),
    ] = None,
    service: Annotated[
        str | None,
        typer.Option("--service", help="Service name (default: the app's title, else the folder's name)."),
    ] = None,
    slo: Annotated[
        str | None,
        typer.Option("--slo", help="Route groups that get a latency SLO, e.g. reads,writes (with --app)."),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Accept every proposed SLO without asking.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing spec.")] = False,
) -> None:
    """Write a commented starter lightkeeper.yaml (and its JSON Schema for editors)."""
    import sys

    from lightkeeper.spec import starter
    from lightkeeper.spec.models import model_json_schema

    if path.exists() and not force:
        raise _fail(f"{path} already exists; pass --force to overwrite it, or --path to write elsewhere")
    try:
        found = starter.load_app(app) if app else None
    except starter.AppImportError as exc:
        raise _fail(str(exc)) from None
    routes = found.routes if found else None
    groups = starter.group_routes(routes) if routes else {}
    if slo is not None:
        chosen: list[str] | None = [g.strip() for g in slo.split(",") if g.strip()]
        unknown = sorted(set(chosen or []) - set(groups))
        if unknown:
            offered = ", ".join(groups) or "none (pass --app)"
            raise _fail(f"--slo {', '.join(unknown)}: not a route group of this app; found: {offered}")
    elif groups and not yes and sys.stdin.isatty():
        chosen = _ask_slos(groups)
    else:
        chosen = None  # every proposed group
    name = service or (found.title if found and found.title else Path.cwd().name)
    text = starter.render(name, routes, chosen)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    schema = path.parent / "lightkeeper.schema.json"
    schema.write_text(json.dumps(model_json_schema(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    console.print(f"wrote {path} and {schema}")
    console.print("next: edit the targets and receivers, then run `lightkeeper generate`")


def _ask_slos(groups: dict[str, list[str]]) -> list[str]:
    """One yes/no per route group, showing the routes it covers, so the user picks what matters."""
    from rich.prompt import Confirm

    from lightkeeper.spec.starter import GROUPS

    chosen = []
    for group, routes in groups.items():
        shown = ", ".join(routes[:4]) + (f" and {len(routes) - 4} more" if len(routes) > 4 else "")
        console.print(f"[bold]{group}[/]: {escape(shown)}", highlight=False)
        if Confirm.ask(f"  latency SLO: {GROUPS[group][1]}", default=True, console=console):
            chosen.append(group)
    return chosen


def generate(
    spec: SpecPath = DEFAULT_SPEC,
    out: OutPath = DEFAULT_OUT,
    profile: Annotated[
        str,
        typer.Option(
            "--profile", help="`test` shortens windows, `for:` and intervals 60x for end-to-end tests."
        ),
    ] = "default",
    target: Annotated[
        Target,
        typer.Option(
            "--target",
            help="`compose`: config files for one Docker host; `kubernetes`: Prometheus Operator resources"
            " and Helm values.",
        ),
    ] = "compose",
) -> None:
    """Write Prometheus, Alertmanager, Grafana, Loki, Tempo, Alloy configs, runbooks and rule tests."""
    from rich.table import Table

    from lightkeeper.stack.errors import GenerationError
    from lightkeeper.stack.generate import generate as run
    from lightkeeper.stack.writer import OutputError

    loaded = _load(spec)
    with _spinner() as progress:
        progress.add_task(f"generating {out}/ from {spec}", total=None)
        try:
            files = run(loaded, out, profile, target)
        except GenerationError as exc:
            raise _generation_failed(spec, exc) from None
        except (OutputError, ValueError) as exc:
            raise _fail(str(exc)) from None
    tops: dict[str, int] = {}
    for path in files:
        top = path.split("/", 1)[0] if "/" in path else path
        tops[top] = tops.get(top, 0) + 1
    table = Table("folder", "files", title=f"{out}/ ({len(files)} files)")
    for top, count in sorted(tops.items()):
        table.add_row(top, str(count))
    console.print(table)
    if target == "kubernetes":
        console.print(f"next: `kubectl apply --server-side -R -f {out}/kubernetes`; Helm values: {out}/helm")
    else:
        console.print(f"next: `lightkeeper check --out {out}` validates it with promtool and amtool")


def check(
    out: OutPath = DEFAULT_OUT,
    spec: Annotated[
        Path, typer.Option("--spec", "-s", help="Spec the folder came from (for routing expectations).")
    ] = DEFAULT_SPEC,
) -> None:
    """Validate a generated folder: promtool, amtool (when installed) and Lightkeeper's own checks."""
    from rich.table import Table

    from lightkeeper.stack.validate import passed, run_checks

    loaded = _load(spec) if spec.exists() else None
    if loaded is None:
        err.print(f"[yellow]note:[/] {spec} not found; routing and template tests are skipped")
    with _spinner() as progress:
        task = progress.add_task("checking", total=None)
        results = run_checks(out, loaded, lambda msg: progress.update(task, description=msg))
    table = Table("check", "result", "detail", title=f"lightkeeper check {out}")
    style = {"ok": "[green]ok[/]", "failed": "[bold red]FAILED[/]", "skipped": "[yellow]skipped[/]"}
    for result in results:
        table.add_row(result.name, style[result.status], result.detail)
    console.print(table)
    for result in results:
        if result.problems:
            console.print(f"[bold red]{result.name}[/]", highlight=False)
            for problem in result.problems:
                console.print(f"  {problem}", highlight=False, markup=False, soft_wrap=True)
    if not passed(results):
        raise _fail("some checks failed (see above); fix the spec and run `lightkeeper generate` again")
    console.print("[green]all checks passed[/]")


def test_rules(
    spec: SpecPath = DEFAULT_SPEC,
    keep: Annotated[
        Path | None, typer.Option("--keep", help="Write the rules and tests here instead of a temp dir.")
    ] = None,
) -> None:
    """Generate the alert rules and their promtool cases, then run `promtool test rules`."""
    from lightkeeper.stack import prometheus, rule_tests
    from lightkeeper.stack.errors import GenerationError
    from lightkeeper.stack.validate import check_test_coverage, promtool_checks

    loaded = _load(spec)
    try:
        files = {**prometheus.render(loaded), **rule_tests.render(loaded)}
    except GenerationError as exc:
        raise _generation_failed(spec, exc) from None
    with tempfile.TemporaryDirectory(prefix="lk-test-rules-") as tmp:
        root = keep or Path(tmp)
        for rel, text in files.items():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        from lightkeeper.stack.validate import _load_rules

        with _spinner() as progress:
            task = progress.add_task("promtool", total=None)
            results = [
                check_test_coverage(_load_rules(root), root),
                *promtool_checks(root, lambda msg: progress.update(task, description=msg)),
            ]
    for result in results:
        mark = {"ok": "[green]ok[/]", "failed": "[bold red]FAILED[/]", "skipped": "[yellow]skipped[/]"}
        console.print(f"{mark[result.status]} {result.name}: {result.detail}", highlight=False)
        for problem in result.problems:
            console.print(f"  {problem}", highlight=False, markup=False, soft_wrap=True)
    if any(r.status == "failed" for r in results):
        raise _fail("rule tests failed")
    if any(r.status == "skipped" for r in results):
        raise _fail("promtool is not installed, so the rule tests could not run", code=3)


def schema(out: WriteTo = None) -> None:
    """Print the JSON Schema of lightkeeper.yaml (for yaml-language-server and editors)."""
    from lightkeeper.spec.models import model_json_schema

    text = json.dumps(model_json_schema(), indent=2, sort_keys=True) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}")


@slo_app.command("export")
def slo_export(spec: SpecPath = DEFAULT_SPEC, out: WriteTo = None) -> None:
    """Write the spec's SLOs as OpenSLO v1 documents (burn-rate tiers in annotations)."""
    from lightkeeper.stack.openslo import export_yaml

    text = export_yaml(_load(spec))
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}")


@slo_app.command("import")
def slo_import(
    file: Annotated[Path, typer.Argument(help="OpenSLO v1 YAML (SLO and SLI documents).")],
    service: Annotated[
        str | None, typer.Option("--service", help="Only SLOs of this OpenSLO service.")
    ] = None,
) -> None:
    """Print the `slos:` section (and route_groups) for lightkeeper.yaml from OpenSLO v1 YAML."""
    from lightkeeper.stack.openslo import OpenSLOError, import_yaml

    try:
        text = import_yaml(file.read_text(encoding="utf-8"), service)
    except OSError as exc:
        raise _fail(f"cannot read {file}: {exc.strerror}") from None
    except OpenSLOError as exc:
        where = f"{file}:{exc.line}:{exc.column}" if exc.line else str(file)
        raise _fail(f"{where}: {exc}") from None
    typer.echo(text, nl=False)


def register(app: typer.Typer) -> None:
    """Add the stack commands to the root `lightkeeper` command."""
    app.command("init")(init)
    app.command("generate")(generate)
    app.command("check")(check)
    app.command("test-rules")(test_rules)
    app.command("schema")(schema)
    app.add_typer(slo_app, name="slo")
