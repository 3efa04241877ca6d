#!/usr/bin/env bash
# CI checks of terraform/ (no terraform binary needed):
#   1. check_terraform.py: every .tf file parses with python-hcl2; module arguments, required
#      variables, var./local./module./resource references and templates are consistent;
#   2. checkov: zero failed checks (skips only inline, `#checkov:skip=CKV_..._N:reason`).
#
# Tools come from a separate virtualenv, .venv-tf at the repository root, created and filled here
# on first use (quietly; later runs only check a stamp). Override with
#   PYTHON=/path/to/python   an interpreter with python-hcl2 (>= 7)
#   CHECKOV=/path/to/checkov
# checkov depends on bc-python-hcl2, a fork that installs the same `hcl2` package as
# python-hcl2; so python-hcl2 lives in its own directory (.venv-tf/python-hcl2, put first on
# PYTHONPATH for step 1) and the two never overwrite each other.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=.venv-tf
HCL2_DIR="$VENV/python-hcl2"
CHECKOV_REQ="checkov>=3.2"
HCL2_REQ="python-hcl2>=7.0"
STAMP="$VENV/.fjord-terraform-checks"

tools_env() {
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
  fi
  if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$CHECKOV_REQ $HCL2_REQ" ]; then
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$CHECKOV_REQ"
    rm -rf "$HCL2_DIR"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --target "$HCL2_DIR" "$HCL2_REQ"
    echo "$CHECKOV_REQ $HCL2_REQ" > "$STAMP"
  fi
}

PYTHON="${PYTHON:-$VENV/bin/python}"
CHECKOV="${CHECKOV:-$VENV/bin/checkov}"
# Fill this repository's virtualenv whenever a tool is to come from it or is missing.
venv_dir=$(realpath -ms "$VENV")
for tool in "$PYTHON" "$CHECKOV"; do
  case "$(realpath -ms "$(command -v "$tool" || echo "$tool")")" in
    "$venv_dir"/*) tools_env; break ;;
  esac
  if ! command -v "$tool" >/dev/null; then tools_env; break; fi
done

echo "== terraform: parse and cross-check (python-hcl2)"
PYTHONPATH="$HCL2_DIR${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" terraform/checks/check_terraform.py terraform

echo "== terraform: checkov"
# --skip-download: no Prisma Cloud calls (offline CI); failures make checkov exit non-zero.
# PYTHONPATH is cleared so that python-hcl2 can never shadow checkov's own hcl2 fork.
env -u PYTHONPATH "$CHECKOV" -d terraform --quiet --compact --framework terraform --skip-download
