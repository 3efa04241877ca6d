#!/usr/bin/env python3
"""Static checks of Fjord's terraform, for CI machines without a terraform binary.

Usage: check_terraform.py [TERRAFORM_DIR]   (default: the terraform/ folder beside checks/)

Every configuration directory (a folder holding .tf files) under TERRAFORM_DIR is parsed with
python-hcl2, then checked:

  parse        every .tf file parses.
  modules      every `module` block with a local source points at an existing module folder;
               every argument it passes names a variable that module declares; every variable
               of that module without a default is set.
  variables    every `var.X` referenced in a folder is declared there; every variable has a
               description and a type, and its validations refer only to itself (terraform < 1.9);
               every output has a description.
  module refs  every `module.M.O` referenced names a module block M of the same folder whose
               source declares output O.
  locals       every `local.X` referenced is defined in a locals block of the same folder.
  resources    every `aws_T.N` / `data.aws_T.N` referenced is declared in the same folder.
  files        every file()/templatefile() path under ${path.module} exists; a template uses
               only variables its templatefile() call passes.
  providers    a folder that declares AWS resources declares hashicorp/aws in required_providers.
  skips        every `#checkov:skip=CKV..._N:reason` carries a written reason.

Problems are printed one per line as `path:line: [check] message`; the exit status is 1 if there
is any, 0 otherwise.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

try:
    import hcl2  # python-hcl2
except ImportError:  # pragma: no cover - environment problem, reported clearly
    sys.exit("check_terraform: the python-hcl2 package is missing (pip install python-hcl2)")

MODULE_META_ARGS = {"source", "version", "providers", "count", "for_each", "depends_on"}
INTERNAL_KEYS = {"__is_block__", "__comments__", "__start_line__", "__end_line__"}
REQUIRED_MODULES = ["network", "data", "gateways", "storage-nodes", "control-plane", "observability"]

VAR_REF = re.compile(r"(?<![\w.])var\.([A-Za-z_][\w-]*)")
LOCAL_REF = re.compile(r"(?<![\w.])local\.([A-Za-z_][\w-]*)")
MODULE_REF = re.compile(r"(?<![\w.])module\.([A-Za-z_][\w-]*)(?:\.([A-Za-z_][\w-]*)|\[[^\]]*\]\.([A-Za-z_][\w-]*))?")
DATA_REF = re.compile(r"(?<![\w.])data\.([a-z][a-z0-9_]*)\.([A-Za-z_][\w-]*)")
RESOURCE_REF = re.compile(r"(?<![\w.])(aws_[a-z0-9_]+)\.([A-Za-z_][\w-]*)")
CHECKOV_SKIP = re.compile(r"checkov:skip=([A-Z0-9_]+)(?::(.*))?")


def unquote(s: str) -> str:
    """python-hcl2 (>= 5) keeps the quotes of labels and string literals."""
    if isinstance(s, str) and len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        return s[1:-1]
    return s


@dataclass
class Config:
    """One terraform configuration directory."""

    path: Path
    files: dict[Path, dict] = field(default_factory=dict)
    variables: dict[str, dict] = field(default_factory=dict)
    outputs: dict[str, dict] = field(default_factory=dict)
    locals: set[str] = field(default_factory=set)
    modules: dict[str, tuple[Path, dict]] = field(default_factory=dict)
    resources: set[tuple[str, str]] = field(default_factory=set)
    data: set[tuple[str, str]] = field(default_factory=set)
    required_providers: set[str] = field(default_factory=set)
    # (file, line or None, text) of every string that holds an expression.
    expressions: list[tuple[Path, str]] = field(default_factory=list)


class Checker:
    def __init__(self, root: Path):
        self.root = root.resolve()
        self.problems: list[str] = []
        self.configs: dict[Path, Config] = {}

    # --- reporting -------------------------------------------------------------------------------

    def problem(self, path: Path, check: str, message: str, line: int | None = None) -> None:
        try:
            shown = path.resolve().relative_to(self.root.parent)
        except ValueError:
            shown = path
        where = f"{shown}:{line}" if line else f"{shown}"
        self.problems.append(f"{where}: [{check}] {message}")

    @staticmethod
    def line_of(path: Path, pattern: str) -> int | None:
        try:
            for number, text in enumerate(path.read_text().splitlines(), 1):
                if re.search(pattern, text):
                    return number
        except OSError:
            pass
        return None

    # --- loading ---------------------------------------------------------------------------------

    def load(self) -> None:
        dirs = sorted({p.parent for p in self.root.rglob("*.tf") if ".terraform" not in p.parts})
        for d in dirs:
            config = Config(path=d)
            for tf in sorted(d.glob("*.tf")):
                try:
                    with tf.open() as f:
                        parsed = hcl2.load(f)
                except Exception as e:  # noqa: BLE001 - any parse error is a finding
                    self.problem(tf, "parse", f"does not parse: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
                    continue
                config.files[tf] = parsed
                self.index(config, tf, parsed)
            self.configs[d] = config

    def index(self, config: Config, tf: Path, parsed: dict) -> None:
        for block in parsed.get("variable", []):
            for name, body in block.items():
                config.variables[unquote(name)] = body | {"__file__": tf}
        for block in parsed.get("output", []):
            for name, body in block.items():
                config.outputs[unquote(name)] = body | {"__file__": tf}
        for block in parsed.get("locals", []):
            config.locals.update(k for k in block if k not in INTERNAL_KEYS)
        for block in parsed.get("module", []):
            for name, body in block.items():
                config.modules[unquote(name)] = (tf, body)
        for block in parsed.get("resource", []):
            for rtype, named in block.items():
                for rname in named:
                    config.resources.add((unquote(rtype), unquote(rname)))
        for block in parsed.get("data", []):
            for dtype, named in block.items():
                for dname in named:
                    config.data.add((unquote(dtype), unquote(dname)))
        for block in parsed.get("terraform", []):
            for rp in block.get("required_providers", []):
                for pname, spec in rp.items():
                    if pname in INTERNAL_KEYS:
                        continue
                    source = spec.get("source") if isinstance(spec, dict) else None
                    config.required_providers.add(unquote(source) if source else pname)
        for text in self.strings(parsed):
            if "${" in text:
                config.expressions.append((tf, text))

    def strings(self, value):
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for k, v in value.items():
                if k in ("__comments__",):
                    continue
                if isinstance(k, str) and "${" in k:
                    yield k
                yield from self.strings(v)
        elif isinstance(value, list):
            for v in value:
                yield from self.strings(v)

    # --- checks ----------------------------------------------------------------------------------

    def check_layout(self) -> None:
        for name in REQUIRED_MODULES:
            d = self.root / "modules" / name
            if d not in self.configs:
                self.problem(d, "layout", f"module {name} is missing (no .tf files)")
        examples = [d for d in self.configs if d.parent == self.root / "examples"]
        if not examples:
            self.problem(self.root / "examples", "layout", "no root example under examples/")

    def check_declarations(self, config: Config) -> None:
        for name, body in config.variables.items():
            tf = body["__file__"]
            line = self.line_of(tf, rf'^\s*variable\s+"{re.escape(name)}"')
            if not unquote(str(body.get("description", ""))).strip():
                self.problem(tf, "variables", f'variable "{name}" has no description', line)
            if "type" not in body:
                self.problem(tf, "variables", f'variable "{name}" has no type', line)
            # Before terraform 1.9 a validation may only refer to the variable it belongs to.
            for validation in body.get("validation", []) or []:
                for text in self.strings(validation):
                    for m in VAR_REF.finditer(text):
                        if m.group(1) != name:
                            self.problem(tf, "variables", f'validation of variable "{name}" refers to var.{m.group(1)} (terraform < 1.9 allows only var.{name})', line)
        for name, body in config.outputs.items():
            tf = body["__file__"]
            if not unquote(str(body.get("description", ""))).strip():
                line = self.line_of(tf, rf'^\s*output\s+"{re.escape(name)}"')
                self.problem(tf, "outputs", f'output "{name}" has no description', line)

    def check_references(self, config: Config) -> None:
        seen: set[tuple[str, str]] = set()
        for tf, text in config.expressions:
            for m in VAR_REF.finditer(text):
                name = m.group(1)
                if name not in config.variables and ("var", name) not in seen:
                    seen.add(("var", name))
                    self.problem(tf, "variables", f"var.{name} is referenced but not declared in {config.path.name}/", self.line_of(tf, rf"var\.{re.escape(name)}\b"))
            for m in LOCAL_REF.finditer(text):
                name = m.group(1)
                if name not in config.locals and ("local", name) not in seen:
                    seen.add(("local", name))
                    self.problem(tf, "locals", f"local.{name} is referenced but not defined", self.line_of(tf, rf"local\.{re.escape(name)}\b"))
            for m in MODULE_REF.finditer(text):
                mod, out = m.group(1), m.group(2) or m.group(3)
                key = ("module", f"{mod}.{out}")
                if key in seen:
                    continue
                seen.add(key)
                line = self.line_of(tf, rf"module\.{re.escape(mod)}(\[[^\]]*\])?\.{re.escape(out)}\b" if out else rf"module\.{re.escape(mod)}\b")
                if mod not in config.modules:
                    self.problem(tf, "module refs", f"module.{mod} is referenced but there is no module \"{mod}\" block", line)
                    continue
                target = self.module_config(config, mod)
                if target is not None and out and out not in target.outputs:
                    self.problem(tf, "module refs", f"module.{mod}.{out}: module {target.path.name}/ has no output \"{out}\"", line)
            for m in DATA_REF.finditer(text):
                key = (m.group(1), m.group(2))
                if key not in config.data and ("data",) + key not in seen:
                    seen.add(("data",) + key)
                    self.problem(tf, "resources", f"data.{key[0]}.{key[1]} is referenced but not declared", self.line_of(tf, rf"data\.{key[0]}\.{key[1]}\b"))
            for m in RESOURCE_REF.finditer(text):
                start = m.start()
                if text[max(0, start - 5):start] == "data.":
                    continue
                key = (m.group(1), m.group(2))
                if key not in config.resources and ("res",) + key not in seen:
                    seen.add(("res",) + key)
                    self.problem(tf, "resources", f"{key[0]}.{key[1]} is referenced but not declared", self.line_of(tf, rf"{key[0]}\.{key[1]}\b"))

    def module_config(self, config: Config, mod: str) -> Config | None:
        tf, body = config.modules[mod]
        source = unquote(str(body.get("source", "")))
        if not source.startswith(("./", "../")):
            return None  # registry or remote module: not checked here
        return self.configs.get((config.path / source).resolve())

    def check_module_calls(self, config: Config) -> None:
        for mod, (tf, body) in config.modules.items():
            line = self.line_of(tf, rf'^\s*module\s+"{re.escape(mod)}"')
            source = unquote(str(body.get("source", "")))
            if not source:
                self.problem(tf, "modules", f'module "{mod}" has no source', line)
                continue
            if not source.startswith(("./", "../")):
                continue
            target_dir = (config.path / source).resolve()
            target = self.configs.get(target_dir)
            if target is None:
                self.problem(tf, "modules", f'module "{mod}": source {source} is not a folder with .tf files', line)
                continue
            passed = {k for k in body if k not in INTERNAL_KEYS and k not in MODULE_META_ARGS}
            for arg in sorted(passed - set(target.variables)):
                self.problem(tf, "modules", f'module "{mod}" passes {arg}, which {target_dir.name}/ does not declare', self.line_of(tf, rf"^\s*{re.escape(arg)}\s*=") or line)
            for var, vbody in sorted(target.variables.items()):
                if "default" not in vbody and var not in passed:
                    self.problem(tf, "modules", f'module "{mod}" does not set {var}, which {target_dir.name}/ requires (no default)', line)

    def check_files(self, config: Config) -> None:
        for tf in config.files:
            text = tf.read_text()
            for m in re.finditer(r'\b(file|templatefile)\(\s*"\$\{path\.module\}/([^"]+)"', text):
                func, rel = m.group(1), m.group(2)
                target = config.path / rel
                line = text.count("\n", 0, m.start()) + 1
                if not target.is_file():
                    self.problem(tf, "files", f"{func}() reads {rel}, which does not exist", line)
                    continue
                if func == "templatefile":
                    passed = self.template_args(text, m.end())
                    if passed is None:
                        continue
                    used = self.template_identifiers(target.read_text())
                    for name in sorted(used - passed):
                        self.problem(tf, "files", f"template {rel} uses {name}, which templatefile() does not pass", line)
                    for name in sorted(passed - used):
                        self.problem(tf, "files", f"templatefile() passes {name}, which {rel} never uses", line)

    @staticmethod
    def template_args(text: str, pos: int) -> set[str] | None:
        """Keys of the object literal that follows `templatefile("...",` at pos, if literal."""
        rest = text[pos:]
        m = re.match(r"\s*,\s*\{", rest)
        if not m:
            return None
        i, depth = m.end(), 1
        body_start = i
        while i < len(rest) and depth:
            c = rest[i]
            if c in "{([":
                depth += 1
            elif c in "})]":
                depth -= 1
            elif c == '"':
                i += 1
                while i < len(rest) and rest[i] != '"':
                    i += 2 if rest[i] == "\\" else 1
            i += 1
        body = rest[body_start:i - 1]
        keys, depth = set(), 0
        for line in body.splitlines():
            if depth == 0:
                km = re.match(r"\s*([A-Za-z_][\w-]*)\s*=", line)
                if km:
                    keys.add(km.group(1))
            stripped = re.sub(r'"(?:[^"\\]|\\.)*"', '""', line)
            depth += stripped.count("{") + stripped.count("(") + stripped.count("[")
            depth -= stripped.count("}") + stripped.count(")") + stripped.count("]")
        return keys

    @staticmethod
    def template_identifiers(template: str) -> set[str]:
        """Top-level names a terraform template reads (not loop variables, functions, keywords)."""
        keywords = {"for", "in", "if", "else", "endif", "endfor", "true", "false", "null"}
        loop_vars: set[str] = set()
        names: set[str] = set()
        for m in re.finditer(r"(?<![$%])([$%])\{(~?)(.*?)(~?)\}", template, re.S):
            expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', m.group(3))
            fm = re.match(r"\s*for\s+([A-Za-z_]\w*)(?:\s*,\s*([A-Za-z_]\w*))?\s+in\s+", expr)
            if fm:
                loop_vars.update(v for v in fm.groups() if v)
            for im in re.finditer(r"(?<![\w.])([A-Za-z_]\w*)(\s*\()?", expr):
                name, call = im.group(1), im.group(2)
                if call or name in keywords:
                    continue
                names.add(name)
        return names - loop_vars

    def check_providers(self, config: Config) -> None:
        uses_aws = any(t.startswith("aws_") for t, _ in config.resources | config.data)
        if uses_aws and not any(p in ("hashicorp/aws", "aws") for p in config.required_providers):
            self.problem(config.path, "providers", "declares AWS resources but no required_providers entry for hashicorp/aws")

    def check_skips(self, config: Config) -> None:
        for tf in config.files:
            for number, text in enumerate(tf.read_text().splitlines(), 1):
                if "checkov:skip" not in text:
                    continue
                m = CHECKOV_SKIP.search(text)
                if not m or not re.match(r"CKV2?_[A-Z0-9]+_\d+$", m.group(1)):
                    self.problem(tf, "skips", "malformed checkov skip (expected #checkov:skip=CKV_..._N:reason)", number)
                elif len((m.group(2) or "").strip()) < 15:
                    self.problem(tf, "skips", f"checkov skip of {m.group(1)} has no written reason", number)

    def run(self) -> int:
        self.load()
        self.check_layout()
        for config in self.configs.values():
            self.check_declarations(config)
            self.check_references(config)
            self.check_module_calls(config)
            self.check_files(config)
            self.check_providers(config)
            self.check_skips(config)
        files = sum(len(c.files) for c in self.configs.values())
        calls = sum(len(c.modules) for c in self.configs.values())
        if self.problems:
            for p in self.problems:
                print(p)
            print(f"check_terraform: {len(self.problems)} problem(s) in {files} files of {len(self.configs)} configurations")
            return 1
        print(f"check_terraform: ok ({files} files, {len(self.configs)} configurations, {calls} module calls)")
        return 0


def parser_is_python_hcl2() -> bool:
    """checkov's fork (bc-python-hcl2) installs a module of the same name that wraps every value
    in a list; make sure the real python-hcl2 was imported."""
    probe = hcl2.loads('a = "b"\n')
    return not isinstance(probe.get("a"), list)


def main() -> int:
    if not parser_is_python_hcl2():
        print(f"check_terraform: {hcl2.__file__} is bc-python-hcl2 (checkov's fork), not python-hcl2; "
              "put python-hcl2 first on PYTHONPATH (terraform/checks/run.sh does)")
        return 2
    default = Path(__file__).resolve().parent.parent
    root = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else default
    if not root.is_dir():
        print(f"check_terraform: {root} is not a directory")
        return 2
    return Checker(root).run()


if __name__ == "__main__":
    sys.exit(main())
