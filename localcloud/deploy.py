"""Deploy template.yaml into moto: SAM transform offline, local code zipped to S3, CloudFormation create_stack.

The template stays the single source of truth: nothing here names a table, a function or a state machine.
"""

from __future__ import annotations

import copy
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parent.parent
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


@dataclass
class Translated:
    template: dict[str, Any]
    function_folders: dict[str, Path] = field(default_factory=dict)  # logical id -> code folder
    layer_folders: dict[str, Path] = field(default_factory=dict)
    uploads: dict[str, bytes] = field(default_factory=dict)  # s3 key -> zip
    unsupported: list[str] = field(default_factory=list)  # "LogicalId (Type)" moto cannot create


def load_sam(path: Path) -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse(path.read_text())


def _zip_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts:
                archive.write(file, file.relative_to(folder).as_posix())
    return buffer.getvalue()


def asl_with_substitutions(definition: str, substitutions: dict[str, Any]) -> dict[str, Any]:
    """Fold DefinitionSubstitutions into an Fn::Join (moto's CloudFormation ignores DefinitionSubstitutions)."""
    parts: list[Any] = []
    last = 0
    for match in _PLACEHOLDER.finditer(definition):
        name = match.group(1)
        if name not in substitutions:
            raise ValueError(f"ASL placeholder ${{{name}}} has no DefinitionSubstitutions entry")
        parts += [definition[last:match.start()], substitutions[name]]
        last = match.end()
    parts.append(definition[last:])
    return {"Fn::Join": ["", [p for p in parts if p != ""]]}


def translate(template_path: Path, bucket: str, region: str) -> Translated:
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    base = template_path.parent
    sam = load_sam(template_path)
    out = Translated(template={})
    state_machines: dict[str, tuple[str, dict[str, Any]]] = {}
    for logical_id, resource in sam.get("Resources", {}).items():
        props = resource.get("Properties", {})
        kind = resource.get("Type")
        if kind == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            folder = (base / props["CodeUri"]).resolve()
            key = f"functions/{logical_id}.zip"
            out.uploads[key] = _zip_folder(folder)
            out.function_folders[logical_id] = folder
            props["CodeUri"] = f"s3://{bucket}/{key}"
        elif kind == "AWS::Serverless::LayerVersion" and isinstance(props.get("ContentUri"), str):
            folder = (base / props["ContentUri"]).resolve()
            key = f"layers/{logical_id}.zip"
            out.uploads[key] = _zip_folder(folder)
            out.layer_folders[logical_id] = folder
            props["ContentUri"] = f"s3://{bucket}/{key}"
        elif kind == "AWS::Serverless::StateMachine" and isinstance(props.get("DefinitionUri"), str):
            text = (base / props.pop("DefinitionUri")).read_text()
            state_machines[logical_id] = (text, props.pop("DefinitionSubstitutions", {}))
            props["Definition"] = json.loads(text)

    translator = Translator(managed_policy_map=None, sam_parser=Parser(),
                            boto_session=boto3.session.Session(region_name=region))
    cfn = translator.translate(sam_template=copy.deepcopy(sam), parameter_values={},
                               get_managed_policy_map=dict)
    for logical_id, (text, substitutions) in state_machines.items():
        props = cfn["Resources"][logical_id]["Properties"]
        props.pop("Definition", None)
        props.pop("DefinitionSubstitutions", None)
        props["DefinitionString"] = asl_with_substitutions(text, substitutions)
    out.template = cfn
    out.unsupported = unsupported_resources(cfn)
    return out


def unsupported_resources(cfn: dict[str, Any]) -> list[str]:
    """Resources moto's CloudFormation would skip: listed at deploy time, never dropped silently."""
    from moto.cloudformation.parsing import NULL_MODELS, get_model_map

    supported = get_model_map()
    skipped = []
    for logical_id, resource in cfn.get("Resources", {}).items():
        kind = resource.get("Type", "")
        if kind in NULL_MODELS or kind.startswith("Custom::") or kind in supported:
            continue
        condition = f", only when {resource['Condition']}" if resource.get("Condition") else ""
        skipped.append(f"{logical_id} ({kind}{condition})")
    return skipped


def uncreated_markdown(template_path: Path = ROOT / "template.yaml") -> str:
    """The README's list of resources the local cloud does not create, as the deploy reports them."""
    from localcloud import patches

    patches.register_local_models()
    return "\n".join(f"- `{line}`" for line in translate(template_path, "artifacts", "us-east-1").unsupported)

