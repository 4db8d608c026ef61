"""`kit bundle --upload`, `kit notebook --push` and `kit submit --kernel` through the real kaggle client against
the stand-in server (tests/kaggle_server.py): the requests it sends, the waits, and each fault as one line."""
from __future__ import annotations

import io
import json
import zipfile

import pytest
from click.testing import CliRunner
from helpers import error_line

from kit.cli import main
from kit.data.spec import HPA
from kit.kaggle.log import read_log

pytest_plugins = ["kaggle_server"]  # the stand-in server's fixtures: kaggle, stand_in


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def bundle(tiny_blend, tmp_path):
    """A bundle of the tiny blend (kit's wheel only), in a private folder."""
    result = run("bundle", tmp_path / "bundle", "--blend", tiny_blend.json, "--dep", "none")
    assert result.exit_code == 0, result.output
    return tmp_path / "bundle"


def test_upload_creates_the_dataset_then_a_new_version_and_waits_until_ready(kaggle, bundle):
    kaggle.polls_to_ready = 3
    result = run("bundle", bundle, "--upload", "tester/hpa-bundle")
    assert result.exit_code == 0, result.output
    create, = kaggle.calls("CreateDataset")
    assert create.path == "/api/v1/datasets.DatasetApiService/CreateDataset"
    body = create.json()
    assert (body["ownerSlug"], body["slug"], body["licenseName"], body["isPrivate"]) == \
        ("tester", "hpa-bundle", "CC0-1.0", True)
    files = kaggle.dataset_files("tester/hpa-bundle")
    assert {"blend.json", "bundle.json", "kit.yaml", "models.zip", "wheels.zip"} <= set(files)
    models = zipfile.ZipFile(io.BytesIO(files["models.zip"])).namelist()
    assert "test_resnet/fold1/best.pt" in models and not any(name.endswith("last.pt") for name in models)
    assert all(call.json()["type"] == "DATASET" for call in kaggle.calls("StartBlobUpload"))
    assert "dataset tester/hpa-bundle: blobs_received" in result.output and \
        "dataset tester/hpa-bundle: ready" in result.output
    assert json.loads((bundle / "dataset-metadata.json").read_text())["id"] == "tester/hpa-bundle"

    again = run("bundle", bundle, "--blend", bundle / "blend.json", "--dep", "none", "--upload", "tester/hpa-bundle",
                "--notes", "second blend")  # bundled again (from the bundle's own blend), then uploaded
    assert again.exit_code == 0, again.output
    version, = kaggle.calls("CreateDatasetVersion")
    assert version.json()["body"]["versionNotes"] == "second blend"
    assert len(kaggle.datasets["tester/hpa-bundle"]["versions"]) == 2 and "new version" in again.output


def test_upload_faults_are_one_line(kaggle, bundle):
    kaggle.taken_slugs.add("tester/taken-slug")
    result = run("bundle", bundle, "--upload", "tester/taken-slug")
    assert 'already in use by a dataset' in error_line(result)

    result = run("bundle", bundle, "--upload", "someone/else-slug")
    line = error_line(result)
    assert "403 Forbidden" in line and "may not write datasets of someone" in line

    kaggle.polls_to_ready = None
    result = run("bundle", bundle, "--upload", "tester/slow-one", "--wait", "0.05")
    assert "not ready after 0s (status blobs_received)" in error_line(result)
    assert "dataset tester/slow-one: blobs_received" in result.output
    assert len(kaggle.calls("GetDatasetStatus")) >= 3  # polled, then gave up


def test_uploading_a_folder_that_is_not_a_bundle_is_one_line(tmp_path):
    (tmp_path / "x").mkdir()
    assert "not a kit bundle" in error_line(run("bundle", tmp_path / "x", "--upload", "tester/some-slug"))
    assert "give --blend" in error_line(run("bundle", tmp_path / "x"))


def test_wrong_service_name_is_not_served(kaggle):
    import requests

    response = requests.post(f"{kaggle.url}/api/v1/kernels.KernelsApiService/CreateDataset", json={},
                             auth=("tester", "secret-key"))
    assert response.status_code == 404 and "no such service method" in response.json()["message"]


def kernel_writes(submission: bytes, log: str = "ok\n"):
    return lambda text: (True, log, {"submission.csv": submission})


def test_push_runs_the_kernel_and_fetches_its_output(kaggle, tmp_path):
    kaggle.datasets["tester/hpa-bundle"] = {"versions": [], "polls": 0}
    kaggle.kernel_run = kernel_writes(b"Id,Predicted\na,0\n", "installing kit\nwrote submission.csv\n")
    kaggle.polls_to_finish = 3
    result = run("notebook", tmp_path / "kernel", "--bundle", "tester/hpa-bundle", "--push", "--gpu")
    assert result.exit_code == 0, result.output
    save, = kaggle.calls("SaveKernel")
    assert save.path == "/api/v1/kernels.KernelsApiService/SaveKernel"
    body = save.json()
    assert body["slug"] == "tester/hpa-bundle-inference" and body["enableGpu"] is True
    assert body["enableInternet"] is False and body["datasetDataSources"] == ["tester/hpa-bundle"]
    assert body["competitionDataSources"] == [HPA.slug] and body["kernelType"] == "script"
    assert body["text"] == (tmp_path / "kernel" / "inference.py").read_text()
    assert "kernel tester/hpa-bundle-inference: queued" in result.output
    assert "running" in result.output and "complete" in result.output
    output = tmp_path / "kernel" / "output"
    assert (output / "submission.csv").read_bytes() == b"Id,Predicted\na,0\n"
    assert (output / "hpa-bundle-inference.log").read_text() == "installing kit\nwrote submission.csv\n"


def test_a_kernel_that_fails_shows_its_log_tail_and_keeps_the_log(kaggle, tmp_path):
    kaggle.datasets["tester/hpa-bundle"] = {"versions": [], "polls": 0}
    log = "".join(f"step {i}\n" for i in range(20)) + "KitError: no kit wheel in the bundle\n"
    kaggle.kernel_run = lambda text: (False, log, {})
    result = run("notebook", tmp_path / "kernel", "--bundle", "tester/hpa-bundle", "--push")
    line = error_line(result)
    assert "ended in error" in line and "step 19 | KitError: no kit wheel in the bundle" in line
    assert "step 12" not in line and "hpa-bundle-inference.log" in line
    assert (tmp_path / "kernel" / "output" / "hpa-bundle-inference.log").read_text() == log


def test_push_without_the_bundle_dataset_is_one_line(kaggle, tmp_path):
    result = run("notebook", tmp_path / "kernel", "--bundle", "tester/never-uploaded", "--push")
    assert "cannot attach tester/never-uploaded" in error_line(result)


def test_submit_kernel_is_logged_and_waits_for_the_score(kaggle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    kaggle.kernels["tester/hpa-inference"] = {"versions": [{}, {}], "polls": 0}
    kaggle.polls_to_score = 2
    result = run("submit", "--kernel", "tester/hpa-inference", "--version", "2", "--wait")
    assert result.exit_code == 0, result.output
    call, = kaggle.calls("CreateCodeSubmission")
    assert call.path == "/api/v1/competitions.CompetitionApiService/CreateCodeSubmission"
    assert call.json() == {"competitionName": HPA.slug, "kernelOwner": "tester", "kernelSlug": "hpa-inference",
                           "kernelVersion": 2, "fileName": "submission.csv",
                           "submissionDescription": "kernel tester/hpa-inference v2 (submission.csv)"}
    assert "public score: 0.4321" in result.output
    row, = read_log(tmp_path / "submissions" / "log.csv")
    assert (row["file"], row["outcome"], row["score"], row["sha256"]) == \
        ("kernel tester/hpa-inference v2", "scored", "0.4321", "")


@pytest.mark.parametrize("args,message", [
    (["--kernel", "just-a-slug"], "--kernel 'just-a-slug': expected owner/slug"),
    (["--kernel", "tester/nope"], "kernel tester/nope or competition"),
    (["--kernel", "tester/hpa-inference", "--version", "7"], "version 7"),
])
def test_submit_kernel_bad_input_is_one_line_and_logged(kaggle, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    kaggle.kernels["tester/hpa-inference"] = {"versions": [{}], "polls": 0}
    assert message in error_line(run("submit", *args))
    row, = read_log(tmp_path / "submissions" / "log.csv")
    assert row["outcome"].startswith(("invalid", "failed"))


def test_submit_kernel_403_names_the_rules(kaggle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    kaggle.kernels["tester/hpa-inference"] = {"versions": [{}], "polls": 0}
    kaggle.rules_accepted = False
    line = error_line(run("submit", "--kernel", "tester/hpa-inference"))
    assert "403 Forbidden" in line and "/rules" in line


def test_submit_needs_a_file_or_a_kernel(tmp_path):
    assert "give a submission FILE, or --kernel" in error_line(run("submit"))
    assert "give a submission FILE, or --kernel" in error_line(run("submit", tmp_path / "x.csv", "--kernel", "a/b"))
