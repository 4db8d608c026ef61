"""`kit bundle` and `kit notebook`: the folder a Kaggle notebook installs and infers from, proven by installing
the bundle's wheels into a fresh virtual environment without an index and running the generated script."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import error_line
from kaggle_image import image_env, image_venv

from kit.cli import main
from kit.data.spec import HPA
from kit.deploy.kaggle_image import canonical, image_closure
from kit.deploy.wheels import dependency_list

pytestmark = pytest.mark.usefixtures("one_thread")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="session")
def bundle_dir(tiny_blend, tmp_path_factory):
    """`kit bundle` of the tiny blend, kit's wheel only plus one local dependency wheel (no network)."""
    root = tmp_path_factory.mktemp("bundle")
    dep = root / "tinydep-1.0-py3-none-any.whl"
    with zipfile.ZipFile(dep, "w") as zf:
        zf.writestr("tinydep/__init__.py", "")
        zf.writestr("tinydep-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: tinydep\nVersion: 1.0\n")
        zf.writestr("tinydep-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr("tinydep-1.0.dist-info/RECORD", "")
    result = run("bundle", root / "out", "--blend", tiny_blend.json, "--dep", dep)
    assert result.exit_code == 0, result.output
    return root / "out", result.output


def test_bundle_holds_the_members_checkpoints_blend_spec_wheels_and_metadata(bundle_dir, tiny_blend):
    out, output = bundle_dir
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    models = [f for f in files if f.startswith("models/")]
    assert models == [f"models/{m}/fold{k}/{name}" for m in ("test_byobnet", "test_resnet") for k in (0, 1)
                      for name in ("best.pt", "config.yaml")]  # no last.pt, no predictions
    for member in ("test_byobnet", "test_resnet"):
        assert (out / "models" / member / "fold0" / "best.pt").read_bytes() == \
            (tiny_blend.runs / member / "fold0" / "best.pt").read_bytes()
    wheels = sorted(p.name for p in (out / "wheels").iterdir())
    assert len(wheels) == 2 and wheels[0].startswith("kit-") and wheels[1] == "tinydep-1.0-py3-none-any.whl"
    blend = json.loads((out / "blend.json").read_text())
    assert [m["path"] for m in blend["members"]] == ["models/test_byobnet", "models/test_resnet"]
    assert (out / "blend.npz").read_bytes() == (tiny_blend.json.parent / "blend.npz").read_bytes()
    metadata = json.loads((out / "dataset-metadata.json").read_text())
    assert set(metadata) == {"title", "id", "licenses"} and metadata["id"].endswith("/out")
    assert "human-protein-atlas-image-classification" in (out / "kit.yaml").read_text()
    assert re.search(r"wheel kit-\S+\.whl: [\d.]+ KB", output) and re.search(r"tinydep-\S+: \d+ B\n", output)
    assert "wheels " in output and "models " in output and "total " in output
    assert set(files) >= {"bundle.json", "dataset-metadata.json", "kit.yaml", "blend.json", "blend.npz"}


def test_infer_from_the_bundle_alone_equals_infer_from_the_runs(bundle_dir, tiny_blend, new_test_set, tmp_path):
    out, _ = bundle_dir
    moved = tmp_path / "elsewhere"
    shutil.copytree(out, moved)
    from_bundle = run("infer", moved / "blend.json", "--data", new_test_set, "--out", tmp_path / "a.csv",
                      "--workers", "0", "--device", "cpu")  # cpu: bit for bit on a GPU machine too
    from_runs = run("infer", tiny_blend.json, "--data", new_test_set, "--out", tmp_path / "b.csv", "--workers", "0",
                    "--device", "cpu")
    assert from_bundle.exit_code == 0 and from_runs.exit_code == 0, from_bundle.output + from_runs.output
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_dependency_list_is_overridable():
    assert dependency_list(("none",), Path("kit.whl")) == []
    assert dependency_list(("a", "b.whl"), Path("kit.whl")) == ["a", "b.whl"]


def test_bundling_again_replaces_a_bundle_but_not_another_folder(tiny_blend, tmp_path):
    other = tmp_path / "precious"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    assert "exists and is not a kit bundle" in error_line(run("bundle", other, "--blend", tiny_blend.json,
                                                              "--dep", "none"))
    assert (other / "notes.txt").read_text() == "keep me"
    (tmp_path / "file.txt").write_text("x")
    assert "not a kit bundle" in error_line(run("bundle", tmp_path / "file.txt", "--blend", tiny_blend.json))
    first = run("bundle", tmp_path / "b", "--blend", tiny_blend.json, "--dep", "none")
    (tmp_path / "b" / "stray.txt").write_text("from an older bundle")
    again = run("bundle", tmp_path / "b", "--blend", tiny_blend.json, "--dep", "none")
    assert first.exit_code == 0 and again.exit_code == 0, first.output + again.output
    assert not (tmp_path / "b" / "stray.txt").exists() and (tmp_path / "b" / "bundle.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "file.txt", "precious"]


def test_bundle_of_a_blend_with_a_missing_fold_is_one_line(tiny_blend, tmp_path):
    shutil.copytree(tiny_blend.runs, tmp_path / "runs")
    shutil.copytree(tiny_blend.json.parent, tmp_path / "submissions")
    report = json.loads((tmp_path / "submissions" / "blend.json").read_text())
    for member in report["members"]:
        member["path"] = str(tmp_path / "runs" / member["name"])
    (tmp_path / "submissions" / "blend.json").write_text(json.dumps(report))
    (tmp_path / "runs" / "test_byobnet" / "fold0" / "best.pt").unlink()
    result = run("bundle", tmp_path / "out", "--blend", tmp_path / "submissions" / "blend.json", "--dep", "none")
    assert "member test_byobnet: fold 0 has no best.pt" in error_line(result)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))


def test_notebook_writes_the_kernel_metadata_and_script(tmp_path):
    result = run("notebook", tmp_path / "kernel", "--bundle", "me/hpa-bundle", "--gpu")
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "kernel" / "kernel-metadata.json").read_text())
    assert meta == {"id": "me/hpa-bundle-inference", "title": "hpa bundle inference", "code_file": "inference.py",
                    "language": "python", "kernel_type": "script", "is_private": True, "enable_gpu": True,
                    "enable_internet": False, "dataset_sources": ["me/hpa-bundle"],
                    "competition_sources": [HPA.slug]}
    script = (tmp_path / "kernel" / "inference.py").read_text()
    compile(script, "inference.py", "exec")
    assert "'/kaggle'" in script and "--no-index" in script and script.count("/kaggle") == 1


@pytest.mark.parametrize("args,message", [
    (["--bundle", "no-slash"], "--bundle 'no-slash': expected owner/slug"),
    (["--bundle", "me/b", "--id", "a/b/c"], "kernel 'a/b/c': expected owner/slug"),
])
def test_notebook_bad_references(tmp_path, args, message):
    assert message in error_line(run("notebook", tmp_path / "k", *args))


@pytest.fixture(scope="session")
def kaggle_bundle(tiny_blend, tmp_path_factory):
    """`kit bundle` of the tiny blend with its default dependency wheels (repacked from this environment)."""
    out = tmp_path_factory.mktemp("kaggle-bundle") / "out"
    result = run("bundle", out, "--blend", tiny_blend.json)
    assert result.exit_code == 0, result.output
    return out


def test_the_default_wheels_are_what_kit_needs_beyond_a_kaggle_image(kaggle_bundle):
    names = {canonical(p.name.split("-")[0]) for p in (kaggle_bundle / "wheels").glob("*.whl")}
    image = image_closure()
    assert "kit" in names and not names & set(image)  # nothing the image has travels
    assert {"iterative-stratification", "segmentation-models-pytorch", "imagehash", "tifffile"} <= names
    assert "kaggle" not in names  # the Kaggle client is an extra, not needed to infer


def install_kit(python, wheels, cwd):
    return subprocess.run([python, "-m", "pip", "install", "--no-index", "--find-links", str(wheels), "--quiet",
                           "kit"], env=image_env(), capture_output=True, text=True, cwd=cwd)


@pytest.mark.slow
def test_a_bundle_missing_a_wheel_does_not_install_in_the_kaggle_image(tiny_blend, tmp_path):
    made = run("bundle", tmp_path / "out", "--blend", tiny_blend.json, "--dep", "none")
    assert made.exit_code == 0, made.output
    python = image_venv(tmp_path / "image")
    done = install_kit(python, tmp_path / "out" / "wheels", tmp_path)
    assert done.returncode != 0 and "no matching distribution found" in (done.stdout + done.stderr).lower()


@pytest.mark.slow
def test_the_notebook_script_installs_offline_and_writes_the_infer_submission(kaggle_bundle, tiny_blend,
                                                                              new_test_set, tmp_path):
    out = kaggle_bundle
    python = image_venv(tmp_path / "image")  # only what a Kaggle image provides: no kit, no kaggle client
    root = tmp_path / "kaggle"
    shutil.copytree(out, root / "input" / "out")  # the bundle dataset, attached as input/<slug>
    shutil.copytree(new_test_set, root / "input" / HPA.slug)
    owner = json.loads((out / "bundle.json").read_text())["dataset"].split("/")[0]
    notebook = run("notebook", tmp_path / "kernel", "--bundle", f"{owner}/out")
    assert notebook.exit_code == 0, notebook.output
    env = image_env(KIT_KAGGLE_ROOT=str(root), OMP_NUM_THREADS="1",
                    CUDA_VISIBLE_DEVICES="")  # the kernel's infer on the CPU, like the expected one: bit for bit
    done = subprocess.run([python, tmp_path / "kernel" / "inference.py"], env=env, capture_output=True, text=True,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    where = subprocess.run([python, "-c", "import kit; print(kit.__file__)"], env=env, capture_output=True, text=True,
                           cwd=tmp_path)
    assert where.stdout.strip().startswith(str(tmp_path / "image" / "venv"))  # kit came from the bundle's wheel

    expected = tmp_path / "expected.csv"
    result = run("infer", tiny_blend.json, "--data", new_test_set, "--out", expected, "--workers", "0",
                 "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert (root / "working" / "submission.csv").read_bytes() == expected.read_bytes()
