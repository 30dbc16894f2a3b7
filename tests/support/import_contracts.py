"""An import-linter contract for module-level import cycles inside a package.

import-linter's own `acyclic_siblings` compares siblings as whole packages: with it,
`sdk.integrations.celery` starting the process set-up in `sdk.lifecycle` while
`sdk.trace_provider` uses `sdk.integrations.patching` would be a cycle between
`sdk.integrations` and the rest of the SDK, though no module imports itself back.
What makes an import order fragile (and tempts people into function-local imports)
is a cycle between modules, so that is what this contract forbids.
"""

from __future__ import annotations

import itertools

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output

__all__ = ["AcyclicModulesContract"]

# One step of a cycle: importer, imported, the lines of the importer that import it.
Step = tuple[str, str, str]


class AcyclicModulesContract(Contract):
    """No module of `packages` imports, directly or through others, a module that imports it."""

    type_name = "acyclic_modules"

    packages = fields.ListField(subfield=fields.StringField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        cycles: list[list[Step]] = []
        reported: set[frozenset[str]] = set()
        for package in self.packages:  # type: ignore[attr-defined]
            if package not in graph.modules:
                raise ValueError(f"{package} is not a module of the graph")
            members = {package} | graph.find_descendants(package)
            for importer in sorted(members):
                for imported in sorted(graph.find_modules_directly_imported_by(importer) & members):
                    back = graph.find_shortest_chain(importer=imported, imported=importer)
                    if back is None or frozenset(back) in reported:
                        continue
                    reported.add(frozenset(back))
                    chain = (importer, *back)
                    cycles.append([_step(graph, a, b) for a, b in itertools.pairwise(chain)])
        return ContractCheck(kept=not cycles, metadata={"cycles": cycles})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for cycle in check.metadata["cycles"]:
            output.print_error(f"{cycle[0][0]} imports itself back:")
            for importer, imported, lines in cycle:
                output.print_error(f"- {importer} -> {imported} ({lines})")
            output.new_line()


def _step(graph: ImportGraph, importer: str, imported: str) -> Step:
    details = graph.get_import_details(importer=importer, imported=imported)
    lines = ", ".join(f"l.{detail['line_number']}" for detail in details)
    return importer, imported, lines
