"""An import-linter contract type for the modular monolith's one rule of the house:

a bounded context may import another context only through that context's ``facade`` module
(and read its ``events`` schemas). import-linter's built-in contracts cannot say "everything
except these two modules", so this contract says it directly. Configured in pyproject.toml.
"""

import grimp
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


class ContextBoundaryContract(Contract):
    type_name = "context_boundaries"

    contexts = fields.ListField(subfield=fields.StringField())
    public_modules = fields.ListField(subfield=fields.StringField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        contexts = list(self.contexts)  # type: ignore[arg-type]
        public = set(self.public_modules)  # type: ignore[arg-type]
        violations = []
        for importer_ctx in contexts:
            for imported_ctx in contexts:
                if importer_ctx == imported_ctx:
                    continue
                for imported in sorted(graph.find_descendants(imported_ctx) | {imported_ctx}):
                    relative = imported[len(imported_ctx) + 1 :]
                    if relative in public:
                        continue
                    for importer in sorted(graph.find_modules_that_directly_import(imported)):
                        if importer == importer_ctx or importer.startswith(importer_ctx + "."):
                            details = graph.get_import_details(importer=importer, imported=imported)
                            line = details[0]["line_number"] if details else "?"
                            violations.append(f"{importer}:{line} imports {imported}")
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for violation in check.metadata["violations"]:
            output.print_error(f"- {violation} (use the context's facade or events module)")
        output.new_line()
