"""Check that every ${Placeholder} in each state machine's ASL has a DefinitionSubstitutions entry and back.

Neither cfn-lint nor `sam validate` reads a DefinitionUri file, so this closes that gap.
Usage: python -m localcloud.check_asl template.yaml
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from localcloud.deploy import load_sam

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def problems(template_path: Path) -> list[str]:
    found = []
    sam = load_sam(template_path)
    for logical_id, resource in sam.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::StateMachine":
            continue
        props = resource.get("Properties", {})
        uri = props.get("DefinitionUri")
        if not isinstance(uri, str):
            found.append(f"{logical_id}: DefinitionUri must point at a statemachine/*.asl.json file")
            continue
        used = set(_PLACEHOLDER.findall((template_path.parent / uri).read_text()))
        given = set(props.get("DefinitionSubstitutions", {}))
        found += [f"{logical_id}: ${{{name}}} in {uri} has no DefinitionSubstitutions entry"
                  for name in sorted(used - given)]
        found += [f"{logical_id}: DefinitionSubstitutions.{name} is not used in {uri}" for name in sorted(given - used)]
    return found


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else "template.yaml")
    issues = problems(path)
    for line in issues:
        print(f"check_asl: {line}", file=sys.stderr)
    if not issues:
        print(f"check_asl: placeholders and DefinitionSubstitutions match in {path}")
    return 1 if issues else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
